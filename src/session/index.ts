/** Public API of direct sessions. Only this directory imports node-datachannel. */
export {
  Session,
  shutdownSessions,
  liveSessionCount,
  CONTROL_LABEL,
  OFFERS_PER_CALL,
  isAnswerRace,
  type SessionRole,
  type SessionProgress,
  type SessionOptions,
  type OfferOptions,
  type AnswerOptions,
  type Connected,
  type ChannelOptions,
} from './session.js';
export { DEFAULT_LOW_WATER_MARK } from './channel.js';
export type { CallSession, SessionFactory } from './surface.js';
export { SessionHosts, RemoteSession, type SessionCrash, type SessionHostsOptions } from './remote.js';
export {
  forceOffererDtlsClient,
  dtlsSetups,
  countCandidates,
  checkRemoteDescription,
  candidateFamilies,
  noCommonFamily,
  type DtlsSetup,
} from './sdp.js';
export { relayIceServers, callPath, describePath, type CallPath, type RelayIceServer } from './relay.js';
export { createCallCertificate, type CallCertificate, type CertificateOptions } from './certificate.js';
export type {
  Channel,
  CandidatePair,
  IceConfig,
  TurnRelay,
  MediaKind,
  MediaDirection,
  MediaSpec,
  VideoSpec,
  AudioSpec,
  AnswerMedia,
  MediaTrack,
  TrackStats,
} from './types.js';
export { defaultMediaSpec, randomSsrc, DEFAULT_VIDEO_PAYLOAD_TYPE, DEFAULT_AUDIO_PAYLOAD_TYPE } from './media.js';
export { mediaSections, type OfferedMedia } from './sdp.js';
export { parseRtp, isRtcp, startsH264Keyframe, isKeyframeRequest, withPayloadTypeAndSsrc, sequenceDelta, type RtpHeader } from './rtp.js';
