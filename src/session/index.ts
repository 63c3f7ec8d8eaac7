/** Public API of direct sessions. Only this directory imports node-datachannel. */
export {
  Session,
  shutdownSessions,
  liveSessionCount,
  CONTROL_LABEL,
  type SessionRole,
  type SessionProgress,
  type SessionOptions,
  type OfferOptions,
  type Connected,
  type ChannelOptions,
} from './session.js';
export { DEFAULT_LOW_WATER_MARK } from './channel.js';
export { forceOffererDtlsClient, dtlsSetups, countCandidates, checkRemoteDescription, type DtlsSetup } from './sdp.js';
export type { Channel, CandidatePair, IceConfig } from './types.js';
