/**
 * Public API of direct sessions: one node-datachannel PeerConnection per
 * call (session.ts), with non-trickle signalling for offers and answers that
 * travel by e-mail, run in this process or in a supervised session process
 * (remote.ts). This directory is the only place that imports
 * node-datachannel; the rest of peerdial sees the plain types of types.ts.
 *
 * Hazards handled (measured in ../shared/notes/webrtc.md and nat.md):
 *
 * - DTLS roles vs. slow mail: the offer is mailed with `a=setup:actpass`
 *   rewritten to `a=setup:active`, so the OFFERER is the DTLS client and the
 *   handshake only starts when the answer has arrived. With the default
 *   roles the answerer's hello races a libdatachannel 0.24.5 bug and its
 *   DTLS gives up after ~31 s. acceptOffer() applies the same rewrite to an
 *   actpass offer before setRemoteDescription, for offers from older peers.
 * - The peer's certificate is checked by the session itself (fingerprint.ts):
 *   every PeerConnection is made with `disableFingerprintVerification`, and
 *   at `connected` the certificate the peer used (`remoteFingerprint()`) is
 *   compared with the `a=fingerprint` of the signed remote description.
 *   Until that check has passed, every channel and track is held: nothing is
 *   sent, and what arrives is kept (channels) or dropped (RTP); on a
 *   mismatch the connection is closed, connected() fails with
 *   FINGERPRINT_MISMATCH, and the held messages are dropped unread.
 * - PR 1612 race: ICE may connect inside setRemoteDescription (libjuice gets
 *   the remote ICE credentials before the description is stored) and DTLS
 *   then reaches libdatachannel's checkFingerprint(), which refuses any
 *   certificate while no remote description is stored, even with
 *   `disableFingerprintVerification` (measured: the rate did not change, see
 *   bench/connect-race.mjs). Only a patched libdatachannel removes it.
 *   setRemoteDescription stays wrapped: the failure is
 *   PeerdialError('SESSION_FAILED') with a hint that a fresh offer is needed,
 *   and the phone makes that fresh offer by itself (agent/caller.ts).
 * - An exception inside a native callback aborts the process: every callback
 *   given to node-datachannel is wrapped (guarded()), and listener errors are
 *   rethrown on a later tick (deliver()).
 * - GC closes native objects: the module keeps every live Session
 *   (registry.ts), each Session its PeerConnection (connection.ts) and every
 *   DataChannel and track (carried.ts), until close().
 * - Remote candidates given before the remote description are queued.
 * - Closing: only PeerConnections are closed (closing DataChannels one by one
 *   made cleanup() segfault after 40+ cycles); cleanup() runs once when the
 *   last session has closed, so the process can exit. shutdownSessions()
 *   does it at once.
 * - Late answers behind NAT: see kept-answer.ts.
 */
export { Session } from './session.js';
export { shutdownSessions, liveSessionCount } from './registry.js';
export { freshOfferCures, isAnswerRace } from './session-errors.js';
export {
  CONTROL_LABEL,
  OFFERS_PER_CALL,
  type SessionRole,
  type SessionProgress,
  type SessionOptions,
  type OfferOptions,
  type AnswerOptions,
  type Connected,
  type ChannelOptions,
} from './options.js';
export { DEFAULT_LOW_WATER_MARK } from './channel.js';
export type { CallSession, SessionFactory } from './surface.js';
export { SessionHosts, type SessionCrash, type SessionHostsOptions } from './remote.js';
export { RemoteSession } from './remote-session.js';
export {
  forceOffererDtlsClient,
  dtlsSetups,
  countCandidates,
  candidateFamilies,
  noCommonFamily,
  parseCandidate,
  candidates,
  type Candidate,
  type DtlsSetup,
} from './sdp.js';
export { checkRemoteDescription, type DescriptionCheck } from './description-check.js';
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
export { defaultMediaSpec, randomSsrc, DEFAULT_VIDEO_PAYLOAD_TYPE, DEFAULT_AUDIO_PAYLOAD_TYPE } from './tracks.js';
export { mediaSections, type OfferedMedia } from './sdp.js';
export { parseRtp, isRtcp, startsH264Keyframe, isKeyframeRequest, withPayloadTypeAndSsrc, sequenceDelta, type RtpHeader } from './rtp.js';
export { prepareStanding, type PreparedStanding } from './standing.js';
export { answerFromStanding, answerableByStanding, standingFromDescription, type StandingIdentity } from './standing-sdp.js';
export type { StandingKept } from './options.js';
