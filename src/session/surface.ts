/**
 * What the rest of peerdial may do with a session, whichever process runs
 * it: `Session` (session.ts, in this process) and `RemoteSession`
 * (remote.ts, in a session host process) both have this surface, and
 * `Session` and `SessionHosts` both make them.
 */
import type { AnswerOptions, ChannelOptions, Connected, OfferOptions, SessionRole } from './options.js';
import type { CandidatePair, Channel, MediaKind, MediaTrack } from './types.js';

export interface CallSession {
  readonly role: SessionRole;
  readonly isClosed: boolean;
  /**
   * Caller side: apply the mailed answer, then await connected(). An answer
   * made from a standing answer is `provisional`: a mailed one may replace it.
   */
  acceptAnswer(answerSdp: string, opts?: { provisional?: boolean }): void;
  addRemoteCandidate(candidate: string, mid: string): void;
  connected(opts?: { signal?: AbortSignal; timeoutMs?: number }): Promise<Connected>;
  openChannel(label: string, opts?: ChannelOptions): Promise<Channel>;
  onChannel(cb: (channel: Channel) => void): void;
  tracks(): MediaTrack[];
  track(kind: MediaKind): MediaTrack | undefined;
  onTrack(cb: (track: MediaTrack) => void): void;
  onClose(cb: (reason: string) => void): void;
  selectedPair(): CandidatePair | undefined;
  close(reason?: string): void;
}

/** Makes sessions: `Session` itself (in this process) or `SessionHosts` (isolated). */
export interface SessionFactory {
  /** True when a native crash in a session cannot take this process down. */
  readonly isolated?: boolean;
  createOffer(opts: OfferOptions): Promise<{ session: CallSession; sdp: string }>;
  acceptOffer(offerSdp: string, opts: AnswerOptions): Promise<{ session: CallSession; sdp: string }>;
}
