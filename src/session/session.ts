/**
 * A direct session: one node-datachannel PeerConnection with non-trickle
 * signalling, for offers and answers that travel by e-mail. This directory is
 * the only place that imports node-datachannel; the rest of peerdial sees the
 * plain types of types.ts.
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
 * - GC closes native objects: the module keeps every live Session, each
 *   Session its PeerConnection and every DataChannel, until close().
 * - Remote candidates given before the remote description are queued.
 * - Closing: only PeerConnections are closed (closing DataChannels one by one
 *   made cleanup() segfault after 40+ cycles); cleanup() runs once when the
 *   last session has closed, so the process can exit. shutdownSessions()
 *   does it at once.
 * - Late answers behind NAT: see the note at Session.acceptOffer.
 */
import { PeerConnection, cleanup as nativeCleanup } from 'node-datachannel';
import type { DataChannel, RtcConfig, Track } from 'node-datachannel';
import { relayIceServers } from './relay.js';
import { PeerdialError, isPeerdialError } from '../errors.js';
import { SessionChannel, deliver, errorText, guarded } from './channel.js';
import { type CallCertificate, createCallCertificate } from './certificate.js';
import { type Fingerprint, checkPeerFingerprint, descriptionFingerprints, normalizeFingerprint } from './fingerprint.js';
import { type SessionTrack, addNativeTrack, adoptNativeTrack, negotiatedDirection, planAnswer, planOffer } from './media.js';
import type { TrackPlan } from './media.js';
import {
  candidateAddresses,
  checkRemoteDescription,
  countCandidates,
  dtlsSetups,
  forceOffererDtlsClient,
  iceIdentity,
  noCommonFamily,
  sectionMids,
} from './sdp.js';
import type { AnswerMedia, CandidatePair, Channel, IceConfig, MediaKind, MediaSpec, MediaTrack } from './types.js';
import { isLoopbackOnly } from '../wire/peer-ip.js';
import { candidateProblem } from './candidates.js';
import { freeUdpPort, pinPort } from './ports.js';

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

/** Did this failure come from that race (and so call for a fresh offer)? */
export function isAnswerRace(err: unknown): boolean {
  return err instanceof Error && /libdatachannel race/.test(err.message);
}
const DEFAULT_GATHER_TIMEOUT_MS = 15_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
/**
 * libjuice's answering agent gives up ~39.5 s after the offer is applied when
 * no check gets through (nat.md, test/nat.test.ts); a kept answer's
 * connection is replaced well before that.
 */
const ANSWER_REFRESH_MS = 25_000;
/** Longest wait for a replaced connection to release the kept answer's port. */
const PORT_RELEASE_TIMEOUT_MS = 5_000;
/** How long the offerer waits for its port before taking the answer on another one. */
const OFFERER_PORT_WAIT_MS = 2_000;
const FRESH_OFFER_HINT =
  'the direct connection could not be set up; call again so that a fresh offer is sent ' +
  '(an answer can only be used once, with the offer it answers)';

// ---------------------------------------------------------------------------
// Module registry: strong references to live sessions, and cleanup().

const live = new Set<Session>();
let nativeInUse = false;
let cleanupTimer: NodeJS.Timeout | undefined;

function register(session: Session): void {
  live.add(session);
  nativeInUse = true;
  if (cleanupTimer !== undefined) {
    clearTimeout(cleanupTimer);
    cleanupTimer = undefined;
  }
}

function unregister(session: Session): void {
  live.delete(session);
  if (live.size === 0 && nativeInUse && cleanupTimer === undefined) {
    // On a later tick, so that the close in progress settles first; a session
    // created in between cancels it.
    cleanupTimer = setTimeout(runCleanup, 0);
  }
}

function runCleanup(): void {
  cleanupTimer = undefined;
  if (live.size > 0 || !nativeInUse) return;
  nativeInUse = false;
  try {
    nativeCleanup();
  } catch {
    // "cleanup timeout": nothing more can be done; the process may not exit.
  }
}

/** Close every live session and release node-datachannel now, so the process can exit. */
export function shutdownSessions(): void {
  for (const session of [...live]) session.close('shut down');
  if (cleanupTimer !== undefined) clearTimeout(cleanupTimer);
  runCleanup();
}

/** Number of sessions not yet closed (for tests and diagnostics). */
export function liveSessionCount(): number {
  return live.size;
}

// ---------------------------------------------------------------------------

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
  settled: boolean;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const d: Deferred<T> = {
    promise: new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    }),
    resolve: (v) => {
      if (d.settled) return;
      d.settled = true;
      resolve(v);
    },
    reject: (e) => {
      if (d.settled) return;
      d.settled = true;
      reject(e);
    },
    settled: false,
  };
  d.promise.catch(() => undefined); // observed through connected(); never unhandled
  return d;
}

function abortedError(signal: AbortSignal): PeerdialError {
  return new PeerdialError('ABORTED', 'cancelled', { cause: signal.reason });
}

function rtcConfig(ice: IceConfig): RtcConfig {
  // The session checks the peer's certificate itself, at `connected` (see the top of this file).
  const config: RtcConfig = { iceServers: [...ice.iceServers, ...relayIceServers(ice.turn)], disableFingerprintVerification: true };
  if (ice.bindAddress !== undefined) config.bindAddress = ice.bindAddress;
  if (ice.portRangeBegin !== undefined) config.portRangeBegin = ice.portRangeBegin;
  if (ice.portRangeEnd !== undefined) config.portRangeEnd = ice.portRangeEnd;
  return config;
}

function formatCandidate(c: { type: string; address: string; port: number; transportType: string }): string {
  const host = c.address.includes(':') ? `[${c.address}]` : c.address;
  return `${c.type} ${host}:${c.port}/${c.transportType.toLowerCase()}`;
}

let sessionCounter = 0;

type OfferIdentity = NonNullable<ReturnType<typeof iceIdentity>>;


/** What a kept answer's replacing connections must reproduce. */
interface KeptAnswer {
  offer: string;
  ufrag: string;
  pwd: string;
  fingerprint: string;
  /** "address port type" of the answer's candidates, sorted. */
  candidates: string[];
  until: number;
  refreshMs: number;
  count: number;
  timer: NodeJS.Timeout | undefined;
}

export class Session {
  readonly role: SessionRole;
  #pc: PeerConnection;
  readonly #rtc: RtcConfig;
  /** The port range of the configuration, before a port was pinned. */
  #configuredPorts: { begin: number | undefined; end: number | undefined };
  /** PeerConnections replaced by a kept answer: their callbacks count no more. */
  readonly #retired = new WeakSet<PeerConnection>();
  #iceState = 'new';
  /** A kept answer (acceptOffer with keepAnswerMs). */
  #kept: KeptAnswer | undefined;
  /** The offer as mailed: what the connection that takes the answer must reproduce. */
  #offered: (OfferIdentity & { mids: string; control: { label: string; protocol: string } }) | undefined;
  #replacing = false;
  /** A certificate the session made itself, removed when it closes. */
  #ownCertificate: CallCertificate | undefined;
  readonly #onProgress: ((e: SessionProgress) => void) | undefined;
  /** Every channel of this session, held for the session's life. */
  readonly #channels = new Set<SessionChannel>();
  /** Every channel the peer opened, replayed to each listener added later. */
  #remote: SessionChannel[] = [];
  #channelCbs: Array<(ch: Channel) => void> = [];
  /** Every media track of this session, held for the session's life. */
  #tracks: SessionTrack[] = [];
  #trackCbs: Array<(track: MediaTrack) => void> = [];
  #closeCbs: Array<(reason: string) => void> = [];
  #closed = false;
  #closeReason = '';
  #pcConnected = false;
  /** The peer's DTLS certificate matched the remote description: channels and tracks are released. */
  #verified = false;
  /** The `a=fingerprint` lines of the remote description, normalised. */
  #remoteFingerprints: Fingerprint[] = [];
  #firstChannel: SessionChannel | undefined;
  #firstOpen = false;
  #remoteSetAt: number | undefined;
  #pendingCandidates: Array<{ candidate: string; mid: string }> = [];
  #gatherWaiters: Array<() => void> = [];
  #closeWaiters: Array<(err: PeerdialError) => void> = [];
  readonly #ready = deferred<Connected>();

  private constructor(role: SessionRole, opts: SessionOptions, manualAnswer = false) {
    this.role = role;
    this.#onProgress = opts.onProgress;
    this.#rtc = rtcConfig(opts.ice);
    this.#configuredPorts = { begin: opts.ice.portRangeBegin, end: opts.ice.portRangeEnd };
    if (opts.certificate) {
      this.#rtc.certificatePemFile = opts.certificate.certPemFile;
      this.#rtc.keyPemFile = opts.certificate.keyPemFile;
    }
    // A kept answer is made with setLocalDescription (its ICE credentials are given).
    if (manualAnswer) this.#rtc.disableAutoNegotiation = true;
    register(this);
    try {
      this.#pc = this.#openPeerConnection();
    } catch (err) {
      this.#closed = true;
      unregister(this);
      throw new PeerdialError('SESSION_FAILED', `could not start a peer connection: ${errorText(err)}`, {
        hint: 'check the ICE settings (iceServers, bindAddress, port range) and the certificate files in the configuration',
        cause: err,
      });
    }
  }

  /** A new PeerConnection whose callbacks count only while it is this session's current one. */
  #openPeerConnection(): PeerConnection {
    const pc = new PeerConnection(`peerdial-${this.role}-${++sessionCounter}`, this.#rtc);
    const isCurrent = () => pc === this.#pc && !this.#retired.has(pc);
    const internal = (err: unknown) => {
      if (isCurrent()) this.#fail(`internal error: ${errorText(err)}`);
    };
    const current = <A extends unknown[]>(fn: (...a: A) => void) =>
      guarded((...a: A) => {
        if (isCurrent()) fn(...a);
      }, internal);
    pc.onStateChange(current((state: string) => this.#onState(state)));
    pc.onIceStateChange(
      current((state: string) => {
        this.#iceState = state;
        this.#progress({ type: 'ice', state });
      }),
    );
    pc.onGatheringStateChange(
      current((state: string) => {
        if (state === 'complete') for (const w of this.#gatherWaiters.splice(0)) w();
      }),
    );
    pc.onDataChannel(current((dc: DataChannel) => this.#onRemoteChannel(dc)));
    pc.onTrack(current((track: Track) => this.#onRemoteTrack(track)));
    return pc;
  }

  /**
   * Caller side: make a session and its complete offer (all candidates, no
   * trickle), with the offerer as DTLS client. Mail `sdp` to the callee,
   * then give the answer to acceptAnswer().
   */
  static async createOffer(opts: OfferOptions): Promise<{ session: Session; sdp: string }> {
    if (opts.signal?.aborted) throw abortedError(opts.signal);
    const plans = planOffer(opts.media);
    // The answer is applied on a fresh connection with the offer's identity
    // (see acceptAnswer): its UDP port is pinned and its certificate kept.
    const ice = await pinPort(opts.ice);
    const ownCertificate = opts.certificate ? undefined : await createCallCertificate();
    const certificate = opts.certificate ?? ownCertificate!;
    let session: Session;
    try {
      session = new Session('offerer', { ...opts, ice, certificate }, true);
    } catch (err) {
      ownCertificate?.remove();
      throw err;
    }
    session.#ownCertificate = ownCertificate;
    session.#configuredPorts = { begin: opts.ice.portRangeBegin, end: opts.ice.portRangeEnd };
    const control = { label: opts.control?.label ?? CONTROL_LABEL, protocol: opts.control?.protocol ?? '' };
    try {
      for (const plan of plans) session.#addTrack(plan);
      session.#openControl(control);
      session.#pc.setLocalDescription('offer');
      await session.#gathered(opts);
      const local = session.#pc.localDescription();
      if (!local || local.type !== 'offer') throw new Error('no local offer after gathering');
      const id = iceIdentity(local.sdp);
      if (!id) throw new Error('the offer lacks ICE credentials or a fingerprint');
      session.#offered = { ...id, mids: sectionMids(local.sdp), control };
      return { session, sdp: forceOffererDtlsClient(local.sdp) };
    } catch (err) {
      session.close('offer not made');
      throw toSessionError(err, 'could not make an offer');
    }
  }

  /** The offerer's control channel on the current connection; the session is ready once it opens. */
  #openControl(control: { label: string; protocol: string }): void {
    const dc = this.#pc.createDataChannel(control.label, { protocol: control.protocol });
    const channel = this.#adopt(dc, false);
    this.#firstChannel = channel;
    this.#firstOpen = false;
    channel.whenOpen().then(
      () => {
        if (this.#firstChannel !== channel) return;
        this.#firstOpen = true;
        this.#maybeReady();
      },
      () => undefined,
    );
  }

  /**
   * Callee side: apply a mailed offer and make the complete answer to mail
   * back. An actpass offer is made active first (the offerer becomes the DTLS
   * client), so the answer may come back to the caller minutes later.
   *
   * Late answers: on a reachable path (loopback, or a caller that accepts
   * unsolicited packets) the callee's ICE stays connected to the caller's
   * agent while the answer is in the mail, and with the offerer as DTLS
   * client nothing times out: answers applied 90 s late connect (see
   * test/session). Behind a filtering NAT on the caller's side the callee's
   * checks are dropped until the caller has the answer, and libjuice gives up
   * after ~39.5 s (nat.md, measured again in test/nat.test.ts), however
   * long the connect timeout.
   *
   * With `keepAnswerMs` the answer stays usable that long: its ICE
   * credentials, DTLS certificate (`certificate`, or one the session makes)
   * and UDP port (a free port picked up front and pinned) are kept, and every
   * keepAnswerRefreshMs (25 s) until connected the connection is replaced by
   * a fresh one with the same identity and so the same host and srflx
   * candidates; media tracks move to each new connection (SessionTrack.moveTo:
   * the replaced native tracks and their handlers stay referenced, dropping
   * them is what crashed node-datachannel before). Whenever the
   * caller applies the answer, a live agent matching it is listening. A
   * progress event 'answer-kept' tells each replacement. Measured: answers
   * applied 90 s late connect behind a port-restricted caller, where a plain
   * session fails at ~39.5 s (test/nat.test.ts).
   */
  static async acceptOffer(offerSdp: string, opts: AnswerOptions): Promise<{ session: Session; sdp: string }> {
    if (opts.signal?.aborted) throw abortedError(opts.signal);
    const check = checkRemoteDescription(offerSdp, 'offer', { loopback: isLoopbackOnly(opts.ice.bindAddress) });
    if (!check.ok) throw new PeerdialError('SESSION_FAILED', `unusable offer: ${check.reason}`, { hint: FRESH_OFFER_HINT });
    const keepMs = opts.keepAnswerMs ?? 0;
    const keep = keepMs > 0;
    if (!Number.isFinite(keepMs) || keepMs < 0) throw new PeerdialError('USAGE', `keepAnswerMs must be a number of ms >= 0, not ${keepMs}`);
    const refreshMs = opts.keepAnswerRefreshMs ?? ANSWER_REFRESH_MS;
    if (keep && !(refreshMs >= 1000 && refreshMs <= 35_000)) {
      throw new PeerdialError('USAGE', `keepAnswerRefreshMs must be 1000..35000 ms (libjuice gives up after ~39.5 s), not ${refreshMs}`);
    }
    const offer = forceOffererDtlsClient(check.sdp);
    const plans = planAnswer(offer, opts.media);
    let ownCertificate: CallCertificate | undefined;
    let sessionOpts: SessionOptions = opts;
    if (keep) {
      const ice = await pinPort(opts.ice);
      let certificate = opts.certificate;
      if (!certificate) certificate = ownCertificate = await createCallCertificate();
      sessionOpts = { ...opts, ice, certificate };
    }
    let session: Session;
    try {
      session = new Session('answerer', sessionOpts, keep);
    } catch (err) {
      ownCertificate?.remove();
      throw err;
    }
    session.#ownCertificate = ownCertificate;
    try {
      // Tracks with the offer's mids before the offer is applied: the answer
      // then carries our directions and SSRCs instead of a plain mirror.
      for (const plan of plans) session.#addTrack(plan);
      session.#applyRemote(offer, 'offer');
      if (keep) session.#pc.setLocalDescription('answer');
      await session.#gathered(opts);
      const local = session.#pc.localDescription();
      if (!local || local.type !== 'answer') throw new Error('no local answer after gathering');
      if (keep) session.#keepAnswer(offer, local.sdp, keepMs, refreshMs);
      return { session, sdp: local.sdp };
    } catch (err) {
      session.close('answer not made');
      throw toSessionError(err, 'could not answer the offer');
    }
  }

  /**
   * Caller side: apply the mailed answer. Then await connected().
   *
   * The answer goes to a fresh connection with the offer's identity (ICE
   * credentials, certificate, UDP port, sections), made for it at once,
   * never to the connection that made the offer. That one has been
   * answering the callee's checks while the answer was in the mail, so its
   * ICE agent knows the callee's address already and connects inside
   * libdatachannel 0.24.5's setRemoteDescription, before the description
   * (and its fingerprint) is stored; DTLS then refuses the callee's
   * certificate and the call fails (5-20 % of calls on a busy machine,
   * bench/connect-race.mjs). A fresh agent knows no address until the
   * description's candidates are added, which libdatachannel does after
   * storing it, so the handshake always finds the fingerprint.
   */
  acceptAnswer(answerSdp: string): void {
    if (this.role !== 'offerer') throw new PeerdialError('USAGE', 'acceptAnswer() is for the offering side');
    if (this.#closed) throw this.#closedError();
    if (this.#remoteSetAt !== undefined) {
      throw new PeerdialError('SESSION_FAILED', 'this offer has already been answered', { hint: FRESH_OFFER_HINT });
    }
    const check = checkRemoteDescription(answerSdp, 'answer', { loopback: isLoopbackOnly(this.#rtc.bindAddress) });
    if (!check.ok) throw new PeerdialError('SESSION_FAILED', `unusable answer: ${check.reason}`, { hint: FRESH_OFFER_HINT });
    if (dtlsSetups(answerSdp).includes('active')) {
      // Our offer went out as active; an active answer would make both sides DTLS clients.
      throw new PeerdialError('SESSION_FAILED', 'the answer also wants to be the DTLS client (a=setup:active)', {
        hint: FRESH_OFFER_HINT,
      });
    }
    this.#remoteSetAt = performance.now();
    void this.#applyAnswerFresh(check.sdp, answerSdp).catch((err) => this.#fail(errorText(err), isPeerdialError(err) ? err : undefined));
  }

  async #applyAnswerFresh(answer: string, original: string): Promise<void> {
    const offered = this.#offered;
    if (!offered) throw new Error('no offer was made on this session');
    for (const track of this.#tracks) track.detach();
    for (const ch of this.#channels) {
      ch.markClosed('replaced before the call connected');
      this.#channels.delete(ch);
    }
    const released = await this.#releaseConnection(OFFERER_PORT_WAIT_MS);
    if (this.#closed) return;
    if (!released.free) {
      // Still bound after the wait: most likely a child process started
      // during the call (ffmpeg, a hook) holds a copy of the socket
      // (inherited.ts). A fresh connection on another port still connects
      // wherever the callee accepts packets from a new port (all but a
      // port-restricted NAT on the callee's side).
      const { begin, end } = this.#configuredPorts;
      if (begin === undefined) delete this.#rtc.portRangeBegin;
      else this.#rtc.portRangeBegin = begin;
      if (end === undefined) delete this.#rtc.portRangeEnd;
      else this.#rtc.portRangeEnd = end;
    }
    const pc = this.#openPeerConnection();
    this.#pc = pc;
    this.#iceState = 'new';
    for (const track of this.#tracks) track.moveTo(pc);
    this.#openControl(offered.control);
    pc.setLocalDescription('offer', { iceUfrag: offered.ufrag, icePwd: offered.pwd });
    const local = pc.localDescription()?.sdp ?? '';
    const id = iceIdentity(local);
    if (!id || id.fingerprint !== offered.fingerprint || id.ufrag !== offered.ufrag || id.pwd !== offered.pwd || sectionMids(local) !== offered.mids) {
      throw new PeerdialError('SESSION_FAILED', 'could not apply the answer: a fresh connection does not match the offer (certificate, ICE credentials or sections differ)', {
        hint: FRESH_OFFER_HINT,
      });
    }
    this.#progress({ type: 'fresh-agent', releaseMs: released.ms, samePort: released.free });
    this.#applyRemote(answer, 'answer');
    for (const track of this.#tracks) track.setNegotiatedDirection(negotiatedDirection(track.direction, original, track.mid));
  }

  /**
   * Close the current connection and wait until its pinned UDP port is free
   * again (libdatachannel releases it on its own threads some time after
   * close(); an agent that cannot bind its port aborts the whole process,
   * "Failed to gather local ICE candidates" thrown on a native thread).
   * Resolves with the wait in ms.
   */
  async #releaseConnection(timeoutMs = PORT_RELEASE_TIMEOUT_MS): Promise<{ ms: number; free: boolean }> {
    const old = this.#pc;
    this.#retired.add(old);
    try {
      old.close();
    } catch {
      // already closed
    }
    const t0 = performance.now();
    const port = this.#rtc.portRangeBegin ?? 0;
    const ms = () => Math.round(performance.now() - t0);
    for (let wait = 5; performance.now() - t0 < timeoutMs; wait = Math.min(wait * 2, 100)) {
      if (this.#closed || (await freeUdpPort(port, this.#rtc.bindAddress)) === port) return { ms: ms(), free: true };
      await new Promise((r) => setTimeout(r, wait));
    }
    return { ms: ms(), free: false };
  }

  /**
   * Add a remote candidate (trickle). Queued until the remote description is
   * set; non-trickle signalling never needs it.
   */
  addRemoteCandidate(candidate: string, mid: string): void {
    if (this.#closed) return;
    // the same candidate policy as for a whole description (session/candidates.ts)
    if (candidateProblem(candidate, { loopback: isLoopbackOnly(this.#rtc.bindAddress) })) return;
    if (this.#remoteSetAt === undefined) this.#pendingCandidates.push({ candidate, mid });
    else this.#addCandidate(candidate, mid);
  }

  /**
   * Resolves when the peer connection is connected and the first data
   * channel (the control channel) is usable. Rejects with
   * PeerdialError('SESSION_FAILED') on failure or timeout (default 30 s; on
   * the callee, count the mail round trip in), 'SESSION_CLOSED' when the
   * session is closed first, 'ABORTED' on the signal. A timeout does not
   * close the session.
   */
  connected(opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Connected> {
    if (this.#ready.settled) return this.#ready.promise;
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(abortedError(signal));
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    return new Promise<Connected>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        done();
        reject(abortedError(signal!));
      };
      const timer = setTimeout(() => {
        done();
        const families = this.#noCommonFamily();
        reject(
          families
            ? new PeerdialError('SESSION_FAILED', `no direct connection: ${families}`, {
                hint: 'give one side the missing address family (dual-stack), or configure a TURN relay reachable over both',
              })
            : new PeerdialError('SESSION_FAILED', `no direct connection within ${Math.round(timeoutMs / 1000)} s`, {
                hint:
                  'the peer may be unreachable from here (NAT or firewall: symmetric NAT on both sides, or symmetric ' +
                  'and port-restricted); check the STUN/TURN settings or configure a TURN relay, or a port mapping ' +
                  '(UPnP/NAT-PMP) on one side, then call again so that a fresh offer is sent',
              }),
        );
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#ready.promise.then(
        (v) => {
          done();
          resolve(v);
        },
        (e) => {
          done();
          reject(e);
        },
      );
    });
  }

  /** Open another channel; resolves once it is open. */
  async openChannel(label: string, opts: ChannelOptions = {}): Promise<Channel> {
    if (this.#closed) throw this.#closedError();
    // The connection may still be replaced (a kept answer; the offerer's
    // fresh connection for the answer): open on the one that connects.
    if (!this.#pcConnected) await this.#ready.promise;
    if (this.#closed) throw this.#closedError();
    let dc: DataChannel;
    try {
      dc = this.#pc.createDataChannel(label, { protocol: opts.protocol ?? '' });
    } catch (err) {
      throw toSessionError(err, `could not open channel "${label}"`);
    }
    const channel = this.#adopt(dc, false, opts.lowWaterMark);
    await channel.whenOpen();
    return channel;
  }

  /**
   * Called for every channel the peer opens (on the callee this includes the
   * control channel). Channels that arrived earlier are
   * handed to every listener added later, too.
   */
  onChannel(cb: (channel: Channel) => void): void {
    this.#channelCbs.push(cb);
    if (this.#verified) for (const ch of this.#remote) deliver(cb, ch);
  }

  /** The session's media tracks (negotiated audio/video sections), in m-line order. */
  tracks(): MediaTrack[] {
    return [...this.#tracks];
  }

  /** The first track of a kind, if the session has one. */
  track(kind: MediaKind): MediaTrack | undefined {
    return this.#tracks.find((t) => t.kind === kind);
  }

  /**
   * Called for every media track of the session (those this side planned and
   * any the peer's description added); tracks that exist already are handed
   * to every listener added later, too. A track delivers RTP once it is open.
   */
  onTrack(cb: (track: MediaTrack) => void): void {
    this.#trackCbs.push(cb);
    for (const t of this.#tracks) deliver(cb, t);
  }

  /** Called once when the session closes, with the reason. */
  onClose(cb: (reason: string) => void): void {
    if (this.#closed) queueMicrotask(() => deliver(cb, this.#closeReason));
    else this.#closeCbs.push(cb);
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** The selected candidate pair, if any. */
  selectedPair(): CandidatePair | undefined {
    if (this.#closed) return undefined;
    try {
      const p = this.#pc.getSelectedCandidatePair();
      if (!p) return undefined;
      return { local: formatCandidate(p.local), remote: formatCandidate(p.remote) };
    } catch {
      return undefined;
    }
  }

  /**
   * End the session: closes the PeerConnection (which closes every channel)
   * and, when it was the last session, releases node-datachannel.
   */
  close(reason = 'closed'): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    clearTimeout(this.#kept?.timer);
    const err = this.#closedError();
    this.#ready.reject(err);
    for (const w of this.#closeWaiters.splice(0)) w(err);
    this.#gatherWaiters = [];
    for (const ch of this.#channels) ch.markClosed(`the session was closed (${reason})`);
    for (const t of this.#tracks) t.markClosed(`the session was closed (${reason})`);
    this.#remote = [];
    try {
      this.#pc.close();
    } catch {
      // already closed
    }
    this.#ownCertificate?.remove();
    this.#progress({ type: 'closed', reason });
    for (const cb of this.#closeCbs.splice(0)) deliver(cb, reason);
    unregister(this);
  }

  // -------------------------------------------------------------------------

  #applyRemote(sdp: string, type: 'offer' | 'answer'): void {
    this.#remoteFingerprints = descriptionFingerprints(sdp);
    try {
      this.#pc.setRemoteDescription(sdp, type);
    } catch (err) {
      // PR 1612 race: ICE can connect (on the peer's checks) inside
      // setRemoteDescription, before the remote description is stored; DTLS
      // then rejects the peer's certificate ("unknown CA": libdatachannel
      // refuses every certificate while it has no remote description, with or
      // without disableFingerprintVerification), the transports close, and
      // adding the description's candidates throws "without ICE transport".
      // Both sides fail; only a fresh offer helps. Measured with
      // bench/connect-race.mjs (two processes, mail-like delays, a busy
      // machine): 5-20% of calls.
      const raced = /without ICE transport/i.test(errorText(err)) || this.#nativeState() === 'failed';
      const message = raced
        ? `the connection failed while the ${type} was applied (libdatachannel race: DTLS checked the peer's certificate before the ${type}'s fingerprint was stored)`
        : `the ${type} was refused: ${errorText(err)}`;
      const e = new PeerdialError('SESSION_FAILED', message, { hint: FRESH_OFFER_HINT, cause: err });
      this.#fail(e.message, e);
      throw e;
    }
    this.#remoteSetAt = performance.now();
    for (const c of this.#pendingCandidates.splice(0)) this.#addCandidate(c.candidate, c.mid);
  }

  #nativeState(): string {
    try {
      return this.#pc.state();
    } catch {
      return 'closed';
    }
  }

  #addCandidate(candidate: string, mid: string): void {
    try {
      this.#pc.addRemoteCandidate(candidate, mid);
    } catch {
      // A refused candidate is not fatal: others may work.
    }
  }

  async #gathered(opts: SessionOptions): Promise<void> {
    const t0 = performance.now();
    this.#progress({ type: 'gathering', role: this.role });
    const complete = await new Promise<boolean>((resolve, reject) => {
      const { signal } = opts;
      let timer: NodeJS.Timeout | undefined;
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(ok);
      };
      const onAbort = () => {
        clearTimeout(timer);
        reject(abortedError(signal!));
      };
      if (this.#pc.gatheringState() === 'complete') return finish(true);
      this.#gatherWaiters.push(() => finish(true));
      this.#closeWaiters.push((err) => {
        clearTimeout(timer);
        reject(err);
      });
      timer = setTimeout(() => finish(false), opts.gatherTimeoutMs ?? DEFAULT_GATHER_TIMEOUT_MS);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    const sdp = this.#pc.localDescription()?.sdp ?? '';
    this.#progress({
      type: 'gathered',
      role: this.role,
      candidates: countCandidates(sdp),
      complete,
      ms: Math.round(performance.now() - t0),
    });
  }

  #adopt(dc: DataChannel, open: boolean, lowWaterMark?: number): SessionChannel {
    const held = !this.#verified;
    const channel = new SessionChannel(dc, lowWaterMark === undefined ? { open, held } : { open, held, lowWaterMark });
    this.#channels.add(channel);
    return channel;
  }

  #addTrack(plan: TrackPlan): void {
    this.#tracks.push(addNativeTrack(this.#pc, plan, !this.#verified));
  }

  /** A media section of the peer's description that no plan covered. */
  #onRemoteTrack(native: Track): void {
    if (this.#closed) return;
    const track = adoptNativeTrack(native, !this.#verified);
    this.#tracks.push(track);
    for (const cb of this.#trackCbs) deliver(cb, track);
  }

  #onRemoteChannel(dc: DataChannel): void {
    if (this.#closed) return;
    const channel = this.#adopt(dc, true);
    if (this.#firstChannel === undefined) {
      this.#firstChannel = channel;
      this.#firstOpen = true;
    }
    this.#remote.push(channel);
    // Listeners see the peer's channels only once the peer is checked (#verifyPeer).
    if (this.#verified) for (const cb of this.#channelCbs) deliver(cb, channel);
    this.#maybeReady();
  }

  #onState(state: string): void {
    if (this.#closed) return;
    this.#progress({ type: 'state', state });
    if (state === 'connected') {
      if (!this.#verified && !this.#verifyPeer()) return;
      this.#pcConnected = true;
      this.#maybeReady();
    } else if (state === 'failed' && !this.#pcConnected && this.#keeping()) {
      // The agent gave up before the caller had the answer: replace it now
      // (on a later tick, outside the native callback).
      setTimeout(() => void this.#replaceKept('the agent gave up'), 0);
    } else if (state === 'failed') {
      this.#fail(this.#pcConnected ? 'the direct connection was lost' : 'the direct connection failed');
    } else if (state === 'closed') {
      this.close('the connection closed');
    }
  }

  /**
   * At `connected`, before any channel, track or byte is used: is the
   * certificate the peer used the one its signed description names? On a
   * match every held channel and track is released (and the peer's channels
   * handed to the listeners); otherwise the session fails with
   * FINGERPRINT_MISMATCH and closes, dropping whatever the channels held.
   */
  #verifyPeer(): boolean {
    let actual: Fingerprint | undefined;
    let why = '';
    try {
      const fp = this.#pc.remoteFingerprint();
      if (fp && typeof fp.value === 'string' && typeof fp.algorithm === 'string') actual = normalizeFingerprint(fp.algorithm, fp.value);
    } catch (err) {
      why = errorText(err);
    }
    const check = checkPeerFingerprint(this.#remoteFingerprints, actual);
    if (!check.ok) {
      const reason = why ? `${check.reason} (${why})` : check.reason;
      const err = new PeerdialError('FINGERPRINT_MISMATCH', `the direct connection was closed before any data was exchanged: ${reason}`, {
        hint:
          'the connection did not come from the peer that signed the call (someone on the path may be interfering, ' +
          'or the peer runs a broken client); nothing was sent or received. See "The peer certificate" in the README',
      });
      this.#fail(err.message, err);
      return false;
    }
    this.#verified = true;
    for (const ch of this.#channels) ch.release();
    for (const t of this.#tracks) t.release();
    for (const ch of this.#remote) for (const cb of this.#channelCbs) deliver(cb, ch);
    return true;
  }

  #noCommonFamily(): string | undefined {
    try {
      const local = this.#pc.localDescription()?.sdp;
      const remote = this.#pc.remoteDescription()?.sdp;
      return local && remote ? noCommonFamily(local, remote) : undefined;
    } catch {
      return undefined;
    }
  }

  #keeping(): boolean {
    return this.#kept !== undefined && !this.#closed && !this.#pcConnected && performance.now() < this.#kept.until;
  }

  #keepAnswer(offer: string, answer: string, keepMs: number, refreshMs: number): void {
    const id = iceIdentity(answer);
    if (!id) throw new Error('the answer lacks ICE credentials or a fingerprint');
    this.#kept = {
      offer,
      ...id,
      candidates: candidateAddresses(answer),
      until: performance.now() + keepMs,
      refreshMs,
      count: 0,
      timer: undefined,
    };
    this.#scheduleKeep();
  }

  #scheduleKeep(): void {
    const kept = this.#kept;
    if (!kept || this.#closed || this.#pcConnected) return;
    clearTimeout(kept.timer);
    kept.timer = setTimeout(() => {
      // A connected ICE agent (the caller's agent answers our checks) does not time out.
      if (this.#iceState === 'connected' || this.#iceState === 'completed') this.#scheduleKeep();
      else void this.#replaceKept('refresh');
    }, kept.refreshMs);
  }

  /** Replace the connection by one with the same ICE credentials, certificate and port. */
  async #replaceKept(_why: string): Promise<void> {
    const kept = this.#kept;
    if (!kept || this.#closed || this.#pcConnected || this.#replacing) return;
    if (performance.now() >= kept.until) {
      this.#fail('the answer was not used in time (keepAnswerMs ran out before the caller connected)');
      return;
    }
    this.#replacing = true;
    try {
      await this.#replaceKeptNow(kept);
    } finally {
      this.#replacing = false;
    }
  }

  async #replaceKeptNow(kept: KeptAnswer): Promise<void> {
    for (const track of this.#tracks) track.detach();
    const released = await this.#releaseConnection();
    const releaseMs = released.ms;
    if (this.#closed || this.#pcConnected) return;
    if (!released.free) {
      this.#fail(`could not keep the answer usable: UDP port ${this.#rtc.portRangeBegin} was not released within ${PORT_RELEASE_TIMEOUT_MS / 1000} s`);
      return;
    }
    let sdp: string;
    try {
      const pc = this.#openPeerConnection();
      this.#pc = pc;
      this.#iceState = 'new';
      for (const track of this.#tracks) track.moveTo(pc);
      pc.setRemoteDescription(kept.offer, 'offer');
      pc.setLocalDescription('answer', { iceUfrag: kept.ufrag, icePwd: kept.pwd });
      sdp = pc.localDescription()?.sdp ?? '';
      const id = iceIdentity(sdp);
      if (!id || id.fingerprint !== kept.fingerprint || id.ufrag !== kept.ufrag || id.pwd !== kept.pwd) {
        throw new Error('the new connection does not match the answer (certificate or ICE credentials differ)');
      }
    } catch (err) {
      this.#fail(`could not keep the answer usable: ${errorText(err)}`);
      return;
    }
    const count = ++kept.count;
    const pc = this.#pc;
    const report = () => {
      if (this.#closed || pc !== this.#pc) return;
      const now = candidateAddresses(pc.localDescription()?.sdp ?? sdp);
      const host = (list: string[]) => list.filter((c) => c.endsWith(' host')).join(',');
      if (host(now) !== host(kept.candidates) && !this.#pcConnected) {
        this.#fail(`could not keep the answer usable: the new connection has other host candidates (${host(now)}; the answer has ${host(kept.candidates)})`);
        return;
      }
      this.#progress({ type: 'answer-kept', count, same: now.join(',') === kept.candidates.join(','), releaseMs });
    };
    if (pc.gatheringState() === 'complete') report();
    else this.#gatherWaiters.push(report);
    this.#scheduleKeep();
  }

  #maybeReady(): void {
    if (this.#ready.settled || this.#closed) return;
    if (!this.#pcConnected || !this.#firstOpen || this.#firstChannel === undefined) return;
    const ms = this.#remoteSetAt === undefined ? 0 : Math.round(performance.now() - this.#remoteSetAt);
    const pair = this.selectedPair();
    this.#progress({ type: 'connected', pair, ms });
    this.#ready.resolve({ pair: pair ?? { local: 'unknown', remote: 'unknown' }, ms, channel: this.#firstChannel });
  }

  /** A failure: reject connected() with SESSION_FAILED and close. */
  #fail(reason: string, error?: PeerdialError): void {
    if (this.#closed) return;
    this.#progress({ type: 'failed', reason });
    this.#ready.reject(error ?? new PeerdialError('SESSION_FAILED', reason, { hint: FRESH_OFFER_HINT }));
    this.close(reason);
  }

  #progress(e: SessionProgress): void {
    if (this.#onProgress) deliver(this.#onProgress, e);
  }

  #closedError(): PeerdialError {
    return new PeerdialError('SESSION_CLOSED', `the session is closed (${this.#closeReason || 'closed'})`);
  }
}

function toSessionError(err: unknown, what: string): PeerdialError {
  if (isPeerdialError(err)) return err;
  return new PeerdialError('SESSION_FAILED', `${what}: ${errorText(err)}`, { hint: FRESH_OFFER_HINT, cause: err });
}
