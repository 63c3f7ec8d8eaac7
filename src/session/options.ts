/**
 * What a session is asked for and what it tells: the options of offers and
 * answers, the progress events, the connected result, and the numbers a
 * call is built on (timeouts, offers per call). Shared by Session
 * (session.ts), the session hosts (remote.ts, host.ts) and the agent.
 */
import { PeerdialError } from '../errors.js';
import type { AnswerMedia, CandidatePair, Channel, IceConfig, MediaSpec } from './types.js';

export type SessionRole = 'offerer' | 'answerer';

/** Progress of a session, for the CLI and logs. */
export type SessionProgress =
  | { type: 'gathering'; role: SessionRole }
  | { type: 'gathered'; role: SessionRole; candidates: number; complete: boolean; ms: number }
  | { type: 'ice'; state: string }
  | { type: 'state'; state: string }
  | { type: 'connected'; pair: CandidatePair | undefined; ms: number }
  | { type: 'failed'; reason: string }
  | { type: 'closed'; reason: string }
  /**
   * The answerer replaced its connection to keep a mailed answer usable
   * (keepAnswerMs): `count` replacements so far; `same` is false when the new
   * connection's candidates differ from the answer's (a NAT gave its port a
   * new mapping; the host candidate still matches); `releaseMs`: how long the
   * replaced connection took to release the pinned port after close().
   */
  | { type: 'answer-kept'; count: number; same: boolean; releaseMs: number }
  /**
   * Offerer: the answer went to a fresh connection with the offer's identity
   * (see acceptAnswer); `releaseMs`: how long the offer's connection took to
   * release the pinned port; `samePort` false when it was still bound after
   * 2 s (a child process holding a copy of the socket) and another was taken.
   */
  | { type: 'fresh-agent'; releaseMs: number; samePort: boolean };

export interface SessionOptions {
  ice: IceConfig;
  signal?: AbortSignal;
  onProgress?: (e: SessionProgress) => void;
  /**
   * Longest wait for ICE gathering, default 15 s. When it runs out the
   * description carries the candidates gathered so far.
   */
  gatherTimeoutMs?: number;
  /**
   * DTLS certificate and key as PEM files (see certificate.ts) instead of a
   * fresh one made by libdatachannel for every connection. Use one per call:
   * the fingerprint identifies the call. The files are not removed by the
   * session.
   */
  certificate?: { certPemFile: string; keyPemFile: string };
}

export interface OfferOptions extends SessionOptions {
  /** The control channel the offerer opens before the offer is made. */
  control?: { label?: string; protocol?: string };
  /** Audio/video sections to offer (m=video, m=audio before the data channel). */
  media?: MediaSpec;
  /**
   * Take the answer on the connection that made the offer, not on a fresh
   * one (fresh-agent.ts). Only that connection's TURN allocation works: the
   * relay refuses a second one from the same UDP port while it stands (437
   * Allocation Mismatch), and the peer knows only the relayed address the
   * offer named. It costs the setRemoteDescription race (session-errors.ts)
   * when the peer's checks reach this side before the answer does, which
   * happens only where this side is reachable without its relay (a
   * full-cone NAT met it on 3 of 4 first offers in test/turn.test.ts).
   * Default: true when a TURN relay is configured (`ice.turn`) and the offer
   * shows this side behind NAT (a server-reflexive address no host candidate
   * has; a host with a public address needs no relay of its own); the
   * phone's second offer for a call says false. Either way an answer with a
   * relay candidate of its own goes to a fresh connection: the peer's relay
   * is then path enough.
   */
  keepOfferConnection?: boolean;
}

export interface AnswerOptions extends SessionOptions {
  /** Which of the offer's audio/video to accept, and in which direction; unlisted kinds are answered inactive. */
  media?: AnswerMedia;
  /**
   * Keep the answer usable for this many ms while it travels back by mail
   * (see acceptOffer): until connected, the connection is replaced every
   * keepAnswerRefreshMs by one with the same ICE credentials, DTLS
   * certificate and UDP port. Without `certificate` the session makes a
   * fresh one (certificate.ts) and removes it when it closes. Default 0: off.
   */
  keepAnswerMs?: number;
  /** How often a kept answer's connection is replaced; default 25 s (libjuice gives up ~39.5 s). */
  keepAnswerRefreshMs?: number;
  /**
   * Answer on the identity of a standing answer (one-mail call,
   * standing.ts): its ICE credentials, DTLS certificate and UDP port, which
   * the caller already holds. The answer made is not mailed; its identity
   * is checked against these.
   */
  standing?: StandingKept;
  /**
   * The answerer opens the control channel itself once connected (a peer
   * that opens none: Delta Chat's call app, which has only its negotiated
   * channel 1). Default: the offerer opens it.
   */
  opensControl?: boolean;
}

/**
 * The SCTP stream of the control channel an answerer opens itself
 * (AnswerOptions.opensControl): as the DTLS server this side's streams are
 * odd; 1 is left to the peer's negotiated channel (Delta Chat's call app
 * has `iceTrickling` there).
 */
export const ANSWERER_CONTROL_STREAM = 3;

/** What a callee keeps for a standing answer: the identity its answer will have. */
export interface StandingKept {
  iceUfrag: string;
  icePwd: string;
  port: number;
  certificate: { certPemFile: string; keyPemFile: string };
}

export interface Connected {
  /** The selected candidate pair (on the offerer libjuice's answer is sometimes wrong). */
  pair: CandidatePair;
  /** Milliseconds from applying the remote description on this side to "connected + first channel open". */
  ms: number;
  /** The first data channel: the control channel. */
  channel: Channel;
}

export interface ChannelOptions {
  protocol?: string;
  /** send() resolves once the channel's buffer is below this many bytes; default 1 MiB. */
  lowWaterMark?: number;
}

export const CONTROL_LABEL = 'control';

/**
 * Offers one call may make in all. The answer is applied on a fresh
 * connection (acceptAnswer), which removed libdatachannel 0.24.5's
 * fingerprint race (before: 5-20 % of connects on a busy 2-core machine;
 * after: 0 of 400, bench/connect-race.mjs --busy 2). One fresh offer is
 * kept for a connection that fails without timing out, for native failures
 * this side cannot rule out (the DTLS server taking a ClientHello before
 * its MTU is set, a check that reaches the fresh agent in the microseconds
 * before the answer is applied); the call log says "retrying" when it is
 * used. Tests never retry on top of it.
 */
export const OFFERS_PER_CALL = 2;

/**
 * How long the DTLS handshake may take once ICE is connected. libdatachannel
 * 0.24.5 can deadlock its own threads there: the DTLS server (the callee)
 * that already holds the caller's ClientHello when its ICE connects answers
 * it on a worker thread while libjuice's thread, which holds the agent lock,
 * starts the DTLS transport and waits for the same SSL lock; the answer goes
 * out through a TURN relay, which needs the agent lock (gdb: agent_send ->
 * pthread_mutex_lock vs. DtlsTransport::handleTimeout; 5 of 157 relayed calls
 * between port-restricted and symmetric sites in test/turn.test.ts's
 * harness). Nothing moves after it on that side, so on the caller (the DTLS
 * client, which sent its ClientHello as its ICE connected) a handshake not
 * done in this time is reported as stalled (a failure a fresh offer cures,
 * not a timeout), never waited out. DTLS retransmits after 1, 3 and 7 s: a
 * lost packet is not a stall.
 */
export const DTLS_STALL_MS = 12_000;

export const DEFAULT_GATHER_TIMEOUT_MS = 15_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
/**
 * libjuice's answering agent gives up ~39.5 s after the offer is applied when
 * no check gets through (nat.md, test/nat.test.ts); a kept answer's
 * connection is replaced well before that.
 */
export const ANSWER_REFRESH_MS = 25_000;
/** Longest wait for a replaced connection to release the kept answer's port. */
export const PORT_RELEASE_TIMEOUT_MS = 5_000;
/** How long the offerer waits for its port before taking the answer on another one. */
export const OFFERER_PORT_WAIT_MS = 2_000;

/** keepAnswerMs and keepAnswerRefreshMs of an answer, checked (USAGE when out of range). */
export function keepAnswerTimes(opts: AnswerOptions): { keepMs: number; refreshMs: number } {
  const keepMs = opts.keepAnswerMs ?? 0;
  const keep = keepMs > 0;
  if (!Number.isFinite(keepMs) || keepMs < 0) throw new PeerdialError('USAGE', `keepAnswerMs must be a number of ms >= 0, not ${keepMs}`);
  const refreshMs = opts.keepAnswerRefreshMs ?? ANSWER_REFRESH_MS;
  if (keep && !(refreshMs >= 1000 && refreshMs <= 35_000)) {
    throw new PeerdialError('USAGE', `keepAnswerRefreshMs must be 1000..35000 ms (libjuice gives up after ~39.5 s), not ${refreshMs}`);
  }
  return { keepMs, refreshMs };
}
