/**
 * A direct session: one node-datachannel PeerConnection with non-trickle
 * signalling, for offers and answers that travel by e-mail. This directory is
 * the only place that imports node-datachannel; the rest of peerdial sees the
 * plain types of types.ts.
 *
 * Hazards handled (measured in /work/shared/notes/webrtc.md and nat.md):
 *
 * - DTLS roles vs. slow mail: the offer is mailed with `a=setup:actpass`
 *   rewritten to `a=setup:active`, so the OFFERER is the DTLS client and the
 *   handshake only starts when the answer has arrived. With the default
 *   roles the answerer's hello races a libdatachannel 0.24.5 bug and its
 *   DTLS gives up after ~31 s. acceptOffer() applies the same rewrite to an
 *   actpass offer before setRemoteDescription, for offers from older peers.
 * - PR 1612 race: ICE may connect inside setRemoteDescription before the
 *   remote fingerprint is stored; the connection then fails. Every
 *   setRemoteDescription is wrapped, and any failure is reported as
 *   PeerdialError('SESSION_FAILED') with a hint that a fresh offer is needed.
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
import { PeerdialError, isPeerdialError } from '../errors.js';
import { SessionChannel, deliver, errorText, guarded } from './channel.js';
import { type SessionTrack, addNativeTrack, adoptNativeTrack, negotiatedDirection, planAnswer, planOffer } from './media.js';
import type { TrackPlan } from './media.js';
import { checkRemoteDescription, countCandidates, dtlsSetups, forceOffererDtlsClient } from './sdp.js';
import type { AnswerMedia, CandidatePair, Channel, IceConfig, MediaKind, MediaSpec, MediaTrack } from './types.js';

export type SessionRole = 'offerer' | 'answerer';

/** Progress of a session, for the CLI and logs. */
export type SessionProgress =
  | { type: 'gathering'; role: SessionRole }
  | { type: 'gathered'; role: SessionRole; candidates: number; complete: boolean; ms: number }
  | { type: 'ice'; state: string }
  | { type: 'state'; state: string }
  | { type: 'connected'; pair: CandidatePair | undefined; ms: number }
  | { type: 'failed'; reason: string }
  | { type: 'closed'; reason: string };

export interface SessionOptions {
  ice: IceConfig;
  signal?: AbortSignal;
  onProgress?: (e: SessionProgress) => void;
  /**
   * Longest wait for ICE gathering, default 15 s. When it runs out the
   * description carries the candidates gathered so far.
   */
  gatherTimeoutMs?: number;
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
const DEFAULT_GATHER_TIMEOUT_MS = 15_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
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
  const config: RtcConfig = { iceServers: [...ice.iceServers] };
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

export class Session {
  readonly role: SessionRole;
  readonly #pc: PeerConnection;
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
  #firstChannel: SessionChannel | undefined;
  #firstOpen = false;
  #remoteSetAt: number | undefined;
  #pendingCandidates: Array<{ candidate: string; mid: string }> = [];
  #gatherWaiters: Array<() => void> = [];
  #closeWaiters: Array<(err: PeerdialError) => void> = [];
  readonly #ready = deferred<Connected>();

  private constructor(role: SessionRole, opts: SessionOptions) {
    this.role = role;
    this.#onProgress = opts.onProgress;
    register(this);
    let pc: PeerConnection;
    try {
      pc = new PeerConnection(`peerdial-${role}-${++sessionCounter}`, rtcConfig(opts.ice));
    } catch (err) {
      this.#closed = true;
      unregister(this);
      throw new PeerdialError('SESSION_FAILED', `could not start a peer connection: ${errorText(err)}`, {
        hint: 'check the ICE settings (iceServers, bindAddress, port range) in the configuration',
        cause: err,
      });
    }
    this.#pc = pc;
    const internal = (err: unknown) => this.#fail(`internal error: ${errorText(err)}`);
    pc.onStateChange(guarded((state: string) => this.#onState(state), internal));
    pc.onIceStateChange(guarded((state: string) => this.#progress({ type: 'ice', state }), internal));
    pc.onGatheringStateChange(
      guarded((state: string) => {
        if (state === 'complete') for (const w of this.#gatherWaiters.splice(0)) w();
      }, internal),
    );
    pc.onDataChannel(guarded((dc: DataChannel) => this.#onRemoteChannel(dc), internal));
    pc.onTrack(guarded((track: Track) => this.#onRemoteTrack(track), internal));
  }

  /**
   * Caller side: make a session and its complete offer (all candidates, no
   * trickle), with the offerer as DTLS client. Mail `sdp` to the callee,
   * then give the answer to acceptAnswer().
   */
  static async createOffer(opts: OfferOptions): Promise<{ session: Session; sdp: string }> {
    if (opts.signal?.aborted) throw abortedError(opts.signal);
    const plans = planOffer(opts.media);
    const session = new Session('offerer', opts);
    try {
      // Tracks first: negotiation starts by itself once the data channel
      // exists, and the offer must already carry the media sections.
      for (const plan of plans) session.#addTrack(plan);
      const dc = session.#pc.createDataChannel(opts.control?.label ?? CONTROL_LABEL, {
        protocol: opts.control?.protocol ?? '',
      });
      const control = session.#adopt(dc, false);
      session.#firstChannel = control;
      control.whenOpen().then(
        () => {
          session.#firstOpen = true;
          session.#maybeReady();
        },
        () => undefined,
      );
      await session.#gathered(opts);
      const local = session.#pc.localDescription();
      if (!local || local.type !== 'offer') throw new Error('no local offer after gathering');
      return { session, sdp: forceOffererDtlsClient(local.sdp) };
    } catch (err) {
      session.close('offer not made');
      throw toSessionError(err, 'could not make an offer');
    }
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
   * after ~39.5 s (nat.md); that is not reproducible on loopback and needs
   * the protocol above this module (a fresh offer, or ICE restart) to
   * survive.
   */
  static async acceptOffer(offerSdp: string, opts: AnswerOptions): Promise<{ session: Session; sdp: string }> {
    if (opts.signal?.aborted) throw abortedError(opts.signal);
    const check = checkRemoteDescription(offerSdp, 'offer');
    if (!check.ok) throw new PeerdialError('SESSION_FAILED', `unusable offer: ${check.reason}`, { hint: FRESH_OFFER_HINT });
    const offer = forceOffererDtlsClient(offerSdp);
    const plans = planAnswer(offer, opts.media);
    const session = new Session('answerer', opts);
    try {
      // Tracks with the offer's mids before the offer is applied: the answer
      // then carries our directions and SSRCs instead of a plain mirror.
      for (const plan of plans) session.#addTrack(plan);
      session.#applyRemote(offer, 'offer');
      await session.#gathered(opts);
      const local = session.#pc.localDescription();
      if (!local || local.type !== 'answer') throw new Error('no local answer after gathering');
      return { session, sdp: local.sdp };
    } catch (err) {
      session.close('answer not made');
      throw toSessionError(err, 'could not answer the offer');
    }
  }

  /** Caller side: apply the mailed answer. Then await connected(). */
  acceptAnswer(answerSdp: string): void {
    if (this.role !== 'offerer') throw new PeerdialError('USAGE', 'acceptAnswer() is for the offering side');
    if (this.#closed) throw this.#closedError();
    if (this.#remoteSetAt !== undefined) {
      throw new PeerdialError('SESSION_FAILED', 'this offer has already been answered', { hint: FRESH_OFFER_HINT });
    }
    const check = checkRemoteDescription(answerSdp, 'answer');
    if (!check.ok) throw new PeerdialError('SESSION_FAILED', `unusable answer: ${check.reason}`, { hint: FRESH_OFFER_HINT });
    if (dtlsSetups(answerSdp).includes('active')) {
      // Our offer went out as active; an active answer would make both sides DTLS clients.
      throw new PeerdialError('SESSION_FAILED', 'the answer also wants to be the DTLS client (a=setup:active)', {
        hint: FRESH_OFFER_HINT,
      });
    }
    this.#applyRemote(answerSdp, 'answer');
    for (const track of this.#tracks) track.setNegotiatedDirection(negotiatedDirection(track.direction, answerSdp, track.mid));
  }

  /**
   * Add a remote candidate (trickle). Queued until the remote description is
   * set; non-trickle signalling never needs it.
   */
  addRemoteCandidate(candidate: string, mid: string): void {
    if (this.#closed) return;
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
        reject(
          new PeerdialError('SESSION_FAILED', `no direct connection within ${Math.round(timeoutMs / 1000)} s`, {
            hint:
              'the peer may be unreachable from here (NAT or firewall); check the STUN/TURN settings, ' +
              'then call again so that a fresh offer is sent',
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
    for (const ch of this.#remote) deliver(cb, ch);
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
    this.#progress({ type: 'closed', reason });
    for (const cb of this.#closeCbs.splice(0)) deliver(cb, reason);
    unregister(this);
  }

  // -------------------------------------------------------------------------

  #applyRemote(sdp: string, type: 'offer' | 'answer'): void {
    try {
      this.#pc.setRemoteDescription(sdp, type);
    } catch (err) {
      // PR 1612 race: ICE can connect (on the peer's checks) inside
      // setRemoteDescription, before the remote fingerprint is stored; DTLS
      // then rejects the peer's certificate ("unknown CA"), the transports
      // close, and adding the description's candidates throws "without ICE
      // transport". Both sides fail; only a fresh offer helps. Measured on
      // loopback: ~0.5-3% of calls whose answer is applied at once, with
      // several calls alive in the process; none of 1100 sequential calls.
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
    const channel = new SessionChannel(dc, lowWaterMark === undefined ? { open } : { open, lowWaterMark });
    this.#channels.add(channel);
    return channel;
  }

  #addTrack(plan: TrackPlan): void {
    this.#tracks.push(addNativeTrack(this.#pc, plan));
  }

  /** A media section of the peer's description that no plan covered. */
  #onRemoteTrack(native: Track): void {
    if (this.#closed) return;
    const track = adoptNativeTrack(native);
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
    for (const cb of this.#channelCbs) deliver(cb, channel);
    this.#maybeReady();
  }

  #onState(state: string): void {
    if (this.#closed) return;
    this.#progress({ type: 'state', state });
    if (state === 'connected') {
      this.#pcConnected = true;
      this.#maybeReady();
    } else if (state === 'failed') {
      this.#fail(this.#pcConnected ? 'the direct connection was lost' : 'the direct connection failed');
    } else if (state === 'closed') {
      this.close('the connection closed');
    }
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
