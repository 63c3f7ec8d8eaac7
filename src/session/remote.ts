/**
 * Sessions in a supervised child process, so that a session cannot take the
 * agent down (issue 12).
 *
 * node-datachannel crashes natively in some paths (a kept answer with media
 * tracks crashed in about half of the runs; cleanup() segfaulted after many
 * connect/close cycles), an exception in a native callback aborts the whole
 * process, and a process that used it does not exit until cleanup(). None of
 * that can be caught in JavaScript, so the agent does not run
 * node-datachannel itself:
 *
 * - `SessionHosts` (the factory the agent's Phone uses) starts a session
 *   host (host.ts) with child_process.fork, IPC with `serialization:
 *   'advanced'` (Buffers cross as Buffers), and asks it for offers and
 *   answers. The host runs the real `Session` of session.ts, unchanged.
 * - `RemoteSession`, `RemoteChannel` and `RemoteTrack` have the same surface
 *   as Session, Channel and MediaTrack (surface.ts, types.ts); the agent,
 *   the carriers and the media code cannot tell them apart.
 * - One host process per call (`sessionsPerProcess`, default 1). Measured
 *   (bench/isolate.ts, 2 busy cores): a host costs 0.15-0.4 s to start on
 *   an idle machine, ~1 s under load, and ~54 MiB while the call lasts;
 *   10 calls up at once took 20 processes, 1077 MiB, against 1 process,
 *   61 MiB, when one process carries all. One process for all is cheaper;
 *   a process per call is safer, and chosen: a crash ends only the call it
 *   carried (a camera node's other viewers keep watching), no process lives
 *   through more than one call's connect/close cycles (the cleanup()
 *   segfault came after 40+), a finished call's process exits and releases
 *   its UDP ports and threads, and next to a mail round trip of seconds the
 *   start is noise. The agent usually carries one call at a time. With
 *   N > 1 one process carries up to N calls that overlap; it still exits as
 *   soon as it carries none.
 * - Crash: when a host exits while it carries sessions (a signal such as
 *   SIGSEGV/SIGABRT, or any exit it was not asked for), each of its sessions
 *   ends with a `SESSION_FAILED` "the session process crashed (SIGSEGV)":
 *   pending connected() calls reject, channels and tracks close, onClose
 *   fires with that reason, and `onCrash` tells the owner (the agent logs
 *   it). The next call starts a fresh host.
 * - End: when a host carries no session any more it is told to exit
 *   (cleanup() runs there, where a crash or hang harms nobody) and is
 *   killed if it has not gone within HOST_EXIT_GRACE_MS. A host kills
 *   itself when its IPC channel closes, so it dies with the agent (also on
 *   SIGKILL of the agent): no orphans.
 * - Backpressure: Channel.send() resolves while the bytes sent to the host
 *   and not yet acknowledged are at most the channel's low-water mark; the
 *   host acknowledges a message when the real channel's send() resolves
 *   (its buffer is below the same mark). So at most about twice the mark is
 *   buffered in all, and a sender that awaits send() in a loop runs at the
 *   channel's pace (bench/isolate.ts measures a 256 MiB send both ways).
 * - Media: RTP crosses as one IPC message per packet each way; a track's
 *   counters (stats()) are kept here from what crosses.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PeerdialError } from '../errors.js';
import { DEFAULT_LOW_WATER_MARK, deliver } from './channel.js';
import { isRtcp } from './rtp.js';
import { TrackBase } from './track-base.js';
import type { AnswerOptions, ChannelOptions, Connected, OfferOptions, SessionOptions, SessionProgress, SessionRole } from './session.js';
import type { CallSession, SessionFactory } from './surface.js';
import type { CandidatePair, Channel, MediaDirection, MediaKind, MediaTrack } from './types.js';
import { fromWireError, type ChannelInfo, type FromHost, type PlainSessionOptions, type ToHost, type TrackInfo, type WireError } from './host-protocol.js';

/** How long a host that was told to exit may take before it is killed. */
const HOST_EXIT_GRACE_MS = 5_000;
/** How long a new host may take to load node-datachannel and say ready. */
const HOST_START_TIMEOUT_MS = 30_000;

const CRASH_HINT = 'the WebRTC library crashed in the session process; the agent goes on, and the next call starts a fresh session process: call again';

/** A host process ended while it carried sessions. */
export interface SessionCrash {
  pid: number;
  /** The signal that ended it (SIGSEGV, SIGABRT, SIGKILL...), if any. */
  signal: NodeJS.Signals | null;
  code: number | null;
  /** How many sessions it carried. */
  sessions: number;
  /** "the session process (pid N) crashed (SIGSEGV)". */
  reason: string;
}

export interface SessionHostsOptions {
  /** Sessions one host process carries at most; 1 (the default) is a process per call. */
  sessionsPerProcess?: number;
  /** A host process crashed; its sessions have ended. */
  onCrash?: (crash: SessionCrash) => void;
  /** The host entry point; default: host.js beside this module (or the built copy when running from sources). */
  entry?: string;
}

/** Where host.js is: beside this module, or (running from the TypeScript sources in tests) in dist/. */
function defaultEntry(): string {
  const beside = fileURLToPath(new URL('./host.js', import.meta.url));
  if (existsSync(beside)) return beside;
  const built = fileURLToPath(new URL('../../dist/session/host.js', import.meta.url));
  if (existsSync(built)) return built;
  throw new PeerdialError('SESSION_FAILED', `the session host program is missing (${beside})`, {
    hint: 'build peerdial (npm run build), or reinstall it',
  });
}

function plainOptions(opts: SessionOptions & Record<string, unknown>): PlainSessionOptions {
  const { signal: _signal, onProgress: _onProgress, ...rest } = opts;
  return rest as PlainSessionOptions;
}

interface Pending {
  resolve: (m: FromHost) => void;
  reject: (e: PeerdialError) => void;
}

/** One host process and what it carries. */
class Host {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  pid = 0;
  /** Sessions this process was given, ever. */
  given = 0;
  retiring = false;
  gone = false;
  readonly sessions = new Map<number, RemoteSession>();
  readonly channels = new Map<number, RemoteChannel>();
  readonly tracks = new Map<number, RemoteTrack>();
  readonly #pending = new Map<number, Pending>();
  readonly #queue: ToHost[] = [];
  #isReady = false;
  #startTimedOut = false;
  #nextReq = 0;
  #killTimer: NodeJS.Timeout | undefined;

  constructor(
    entry: string,
    private readonly onCrash: (host: Host, reason: string, code: number | null, signal: NodeJS.Signals | null) => void,
  ) {
    this.child = fork(entry, [], {
      serialization: 'advanced',
      // the host's native messages (an abort's "terminate called...") go to the agent's log
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [],
    });
    this.pid = this.child.pid ?? 0;
    const startTimer = setTimeout(() => {
      this.#startTimedOut = true;
      this.child.kill('SIGKILL');
    }, HOST_START_TIMEOUT_MS);
    this.exited = new Promise<void>((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null, failure?: string) => {
        if (this.gone) return;
        clearTimeout(startTimer);
        clearTimeout(this.#killTimer);
        this.gone = true;
        this.#ended(code, signal, failure);
        resolve();
      };
      this.child.once('exit', (code, signal) => finish(code, signal));
      // A process that could not be started has no 'exit'; send errors are handled by send().
      this.child.on('error', (err) => {
        if (this.child.pid === undefined) finish(null, null, `could not start a session process: ${err.message}`);
      });
    });
    this.child.on('message', (m: FromHost) => {
      if (m.ev === 'ready') {
        clearTimeout(startTimer);
        this.pid = m.pid;
        this.#isReady = true;
        for (const q of this.#queue.splice(0)) this.send(q);
        return;
      }
      this.#message(m);
    });
  }

  send(m: ToHost): void {
    if (this.gone) return;
    if (!this.#isReady) {
      this.#queue.push(m);
      return;
    }
    try {
      this.child.send(m, (err) => {
        if (err) this.child.kill('SIGKILL'); // a broken channel: 'exit' ends what it carried
      });
    } catch {
      this.child.kill('SIGKILL');
    }
  }

  request(m: ToHost & { req: number }): Promise<FromHost> {
    if (this.gone) return Promise.reject(new PeerdialError('SESSION_CLOSED', 'the session process has ended'));
    return new Promise<FromHost>((resolve, reject) => {
      this.#pending.set(m.req, { resolve, reject });
      this.send(m);
    });
  }

  nextReq(): number {
    return ++this.#nextReq;
  }

  /** A session of this host ended: with none left, the process is told to go. */
  release(session: RemoteSession): void {
    this.sessions.delete(session.sid);
    if (this.sessions.size === 0) this.retire();
  }

  retire(): void {
    if (this.retiring || this.gone) return;
    this.retiring = true;
    this.send({ op: 'exit' });
    this.#killTimer = setTimeout(() => this.child.kill('SIGKILL'), HOST_EXIT_GRACE_MS);
    this.#killTimer.unref();
  }

  #ended(code: number | null, signal: NodeJS.Signals | null, failure?: string): void {
    const carried = [...this.sessions.values()];
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    const expected = this.retiring && carried.length === 0;
    if (expected) {
      for (const p of pending) p.reject(new PeerdialError('SESSION_CLOSED', 'the session process has ended'));
      return;
    }
    let reason = crashReason(this.pid, code, signal);
    if (failure) reason = failure;
    else if (this.#startTimedOut) reason = `the session process (pid ${this.pid}) did not start within ${HOST_START_TIMEOUT_MS / 1000} s`;
    else if (!this.#isReady) reason = `the session process (pid ${this.pid}) ended before it was ready (${signal ?? `exit code ${code}`})`;
    this.onCrash(this, reason, code, signal);
    const err = new PeerdialError('SESSION_FAILED', reason, { hint: CRASH_HINT });
    for (const p of pending) p.reject(err);
    for (const s of carried) s.crashed(reason, err);
    this.sessions.clear();
  }

  #message(m: FromHost): void {
    switch (m.ev) {
      case 'made':
      case 'make-failed':
        this.sessions.get(m.sid)?.made(m);
        return;
      case 'progress':
        this.sessions.get(m.sid)?.progress(m.progress);
        return;
      case 'answer-failed':
        this.sessions.get(m.sid)?.answerFailed(m.error);
        return;
      case 'direction':
        this.tracks.get(m.tid)?.setDirection(m.direction);
        return;
      case 'connected':
      case 'connect-failed':
      case 'channel-opened':
      case 'channel-failed': {
        const p = this.#pending.get(m.req);
        this.#pending.delete(m.req);
        if (!p) return;
        if (m.ev === 'connect-failed' || m.ev === 'channel-failed') p.reject(fromWireError(m.error));
        else p.resolve(m);
        return;
      }
      case 'closed':
        this.sessions.get(m.sid)?.closedByHost(m.reason);
        return;
      case 'channel':
        this.sessions.get(m.sid)?.remoteChannel(m.channel);
        return;
      case 'message':
        this.channels.get(m.cid)?.received(m.data);
        return;
      case 'sent':
        this.channels.get(m.cid)?.acked(m.seq);
        return;
      case 'send-failed':
        this.channels.get(m.cid)?.ackFailed(m.seq, m.error);
        return;
      case 'channel-closed':
        this.channels.get(m.cid)?.markClosed(m.reason);
        this.channels.delete(m.cid);
        return;
      case 'track':
        this.sessions.get(m.sid)?.addTrack(m.track);
        return;
      case 'track-open':
        this.tracks.get(m.tid)?.opened();
        return;
      case 'track-closed':
        this.tracks.get(m.tid)?.markClosed(m.reason);
        this.tracks.delete(m.tid);
        return;
      case 'rtp':
        this.tracks.get(m.tid)?.rtp(m.packet);
        return;
      case 'rtcp':
        this.tracks.get(m.tid)?.rtcp(m.packet);
        return;
    }
  }
}

function crashReason(pid: number, code: number | null, signal: NodeJS.Signals | null): string {
  return `the session process (pid ${pid}) crashed (${signal ?? `exit code ${code}`})`;
}

/** The factory of isolated sessions: the agent's Phone uses it in place of `Session`. */
export class SessionHosts implements SessionFactory {
  readonly isolated = true;
  readonly #hosts = new Set<Host>();
  readonly #perProcess: number;
  readonly #entry: string | undefined;
  readonly #onCrash: ((c: SessionCrash) => void) | undefined;
  #nextSid = 0;
  #shut = false;

  constructor(opts: SessionHostsOptions = {}) {
    const n = opts.sessionsPerProcess ?? 1;
    if (!(Number.isInteger(n) && n >= 1)) throw new PeerdialError('USAGE', `sessionsPerProcess must be a whole number >= 1, not ${n}`);
    this.#perProcess = n;
    this.#entry = opts.entry;
    this.#onCrash = opts.onCrash;
  }

  /** Process ids of the session hosts alive now (for tests and `status`). */
  pids(): number[] {
    return [...this.#hosts].filter((h) => !h.gone).map((h) => h.pid);
  }

  createOffer(opts: OfferOptions): Promise<{ session: RemoteSession; sdp: string }> {
    return this.#make('offerer', opts, undefined);
  }

  acceptOffer(offerSdp: string, opts: AnswerOptions): Promise<{ session: RemoteSession; sdp: string }> {
    return this.#make('answerer', opts, offerSdp);
  }

  /** Close every session and wait until every host process has exited (killed after a grace period). */
  async shutdown(): Promise<void> {
    this.#shut = true;
    for (const h of this.#hosts) {
      for (const s of [...h.sessions.values()]) s.close('shut down');
      h.retire();
    }
    await Promise.all([...this.#hosts].map((h) => h.exited));
  }

  async #make(role: SessionRole, opts: SessionOptions, offer: string | undefined): Promise<{ session: RemoteSession; sdp: string }> {
    if (opts.signal?.aborted) throw new PeerdialError('ABORTED', 'cancelled', { cause: opts.signal.reason });
    if (this.#shut) throw new PeerdialError('SESSION_CLOSED', 'the agent is shutting down');
    const host = this.#host();
    const sid = ++this.#nextSid;
    host.given++;
    const session = new RemoteSession(host, sid, role, opts);
    host.sessions.set(sid, session);
    const plain = plainOptions(opts as SessionOptions & Record<string, unknown>);
    host.send(offer === undefined ? { op: 'offer', sid, opts: plain } : { op: 'answer', sid, offer, opts: plain });
    const onAbort = () => host.send({ op: 'abort', sid });
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const sdp = await session.whenMade();
      return { session, sdp };
    } catch (err) {
      session.close('not made');
      throw err;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  #host(): Host {
    for (const h of this.#hosts) {
      if (!h.gone && !h.retiring && h.given < this.#perProcess) return h;
    }
    const host = new Host(this.#entry ?? defaultEntry(), (h, reason, code, signal) => {
      this.#onCrash?.({ pid: h.pid, code, signal, sessions: h.sessions.size, reason });
    });
    this.#hosts.add(host);
    void host.exited.then(() => this.#hosts.delete(host));
    return host;
  }
}

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
  d.promise.catch(() => undefined);
  return d;
}

/** A Session that runs in a session host process. */
export class RemoteSession implements CallSession {
  readonly role: SessionRole;
  readonly sid: number;
  readonly #host: Host;
  readonly #onProgress: ((e: SessionProgress) => void) | undefined;
  readonly #made = deferred<string>();
  #answered = false;
  #answerError: PeerdialError | undefined;
  #crash: PeerdialError | undefined;
  #closed = false;
  #closeReason = '';
  #pair: CandidatePair | undefined;
  readonly #waiting = new Set<(e: PeerdialError) => void>();
  #remote: RemoteChannel[] = [];
  #channelCbs: Array<(ch: Channel) => void> = [];
  #tracks: RemoteTrack[] = [];
  #trackCbs: Array<(t: MediaTrack) => void> = [];
  #closeCbs: Array<(reason: string) => void> = [];

  constructor(host: Host, sid: number, role: SessionRole, opts: SessionOptions) {
    this.#host = host;
    this.sid = sid;
    this.role = role;
    this.#onProgress = opts.onProgress;
  }

  /** Process id of the session host carrying this session. */
  get hostPid(): number {
    return this.#host.pid;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** The crash that ended this session, if one did. */
  get crash(): PeerdialError | undefined {
    return this.#crash;
  }

  whenMade(): Promise<string> {
    return this.#made.promise;
  }

  acceptAnswer(answerSdp: string): void {
    if (this.role !== 'offerer') throw new PeerdialError('USAGE', 'acceptAnswer() is for the offering side');
    if (this.#closed) throw this.#closedError();
    if (this.#answered) throw new PeerdialError('SESSION_FAILED', 'this offer has already been answered', { hint: 'call again so that a fresh offer is sent' });
    this.#answered = true;
    // Checked and applied in the host; a refusal there rejects connected().
    this.#host.send({ op: 'accept-answer', sid: this.sid, sdp: answerSdp });
  }

  addRemoteCandidate(candidate: string, mid: string): void {
    if (this.#closed) return;
    this.#host.send({ op: 'candidate', sid: this.sid, candidate, mid });
  }

  connected(opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Connected> {
    if (this.#answerError) return Promise.reject(this.#answerError);
    if (this.#crash) return Promise.reject(this.#crash);
    if (this.#closed) return Promise.reject(this.#closedError());
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(new PeerdialError('ABORTED', 'cancelled', { cause: signal.reason }));
    const req = this.#host.nextReq();
    return new Promise<Connected>((resolve, reject) => {
      const fail = (e: PeerdialError) => {
        done();
        reject(e);
      };
      const onAbort = () => fail(new PeerdialError('ABORTED', 'cancelled', { cause: signal!.reason }));
      const done = () => {
        this.#waiting.delete(fail);
        signal?.removeEventListener('abort', onAbort);
      };
      this.#waiting.add(fail);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#host.request({ op: 'connected', sid: this.sid, req, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) }).then(
        (m) => {
          done();
          if (m.ev !== 'connected') return;
          this.#pair = m.pair;
          resolve({ pair: m.pair, ms: m.ms, channel: this.#channel(m.channel) });
        },
        (e: PeerdialError) => fail(e),
      );
    });
  }

  async openChannel(label: string, opts: ChannelOptions = {}): Promise<Channel> {
    if (this.#closed) throw this.#closedError();
    const m = await this.#host.request({
      op: 'open-channel',
      sid: this.sid,
      req: this.#host.nextReq(),
      label,
      ...(opts.protocol !== undefined ? { protocol: opts.protocol } : {}),
      ...(opts.lowWaterMark !== undefined ? { lowWaterMark: opts.lowWaterMark } : {}),
    });
    if (m.ev !== 'channel-opened') throw new PeerdialError('SESSION_FAILED', `could not open channel "${label}"`);
    if (this.#closed) throw this.#closedError();
    return this.#channel(m.channel, opts.lowWaterMark);
  }

  onChannel(cb: (channel: Channel) => void): void {
    this.#channelCbs.push(cb);
    for (const ch of this.#remote) deliver(cb, ch);
  }

  tracks(): MediaTrack[] {
    return [...this.#tracks];
  }

  track(kind: MediaKind): MediaTrack | undefined {
    return this.#tracks.find((t) => t.kind === kind);
  }

  onTrack(cb: (track: MediaTrack) => void): void {
    this.#trackCbs.push(cb);
    for (const t of this.#tracks) deliver(cb, t);
  }

  onClose(cb: (reason: string) => void): void {
    if (this.#closed) queueMicrotask(() => deliver(cb, this.#closeReason));
    else this.#closeCbs.push(cb);
  }

  selectedPair(): CandidatePair | undefined {
    return this.#closed ? undefined : this.#pair;
  }

  close(reason = 'closed'): void {
    if (this.#closed) return;
    this.#host.send({ op: 'close', sid: this.sid, reason });
    this.#end(reason, this.#closedErrorFor(reason));
    this.#progress({ type: 'closed', reason });
    this.#fireClose(reason);
  }

  // ------------------------------------------------------------------ from the host

  made(m: Extract<FromHost, { ev: 'made' | 'make-failed' }>): void {
    if (m.ev === 'made') this.#made.resolve(m.sdp);
    else this.#made.reject(fromWireError(m.error));
  }

  progress(e: SessionProgress): void {
    if (!this.#closed) this.#progress(e);
  }

  answerFailed(e: WireError): void {
    this.#answerError = fromWireError(e);
    for (const fail of [...this.#waiting]) fail(this.#answerError);
  }

  remoteChannel(info: ChannelInfo): void {
    if (this.#closed) return;
    const ch = this.#channel(info);
    if (this.#remote.includes(ch)) return;
    this.#remote.push(ch);
    for (const cb of this.#channelCbs) deliver(cb, ch);
  }

  addTrack(info: TrackInfo): void {
    if (this.#closed) return;
    const t = new RemoteTrack(this.#host, info);
    this.#host.tracks.set(info.tid, t);
    this.#tracks.push(t);
    for (const cb of this.#trackCbs) deliver(cb, t);
  }

  /** The session ended in the host (failure, the peer closed, the connection was lost). */
  closedByHost(reason: string): void {
    if (this.#closed) return;
    this.#end(reason, this.#closedErrorFor(reason));
    this.#fireClose(reason);
  }

  /** The host process died while it carried this session. */
  crashed(reason: string, err: PeerdialError): void {
    if (this.#closed) return;
    this.#crash = err;
    this.#end(reason, err);
    this.#progress({ type: 'failed', reason });
    this.#progress({ type: 'closed', reason });
    this.#fireClose(reason);
  }

  // ------------------------------------------------------------------

  #channel(info: ChannelInfo, lowWaterMark?: number): RemoteChannel {
    let ch = this.#host.channels.get(info.cid);
    if (!ch) {
      ch = new RemoteChannel(this.#host, this.sid, info, lowWaterMark ?? DEFAULT_LOW_WATER_MARK);
      this.#host.channels.set(info.cid, ch);
    }
    return ch;
  }

  #end(reason: string, err: PeerdialError): void {
    this.#closed = true;
    this.#closeReason = reason;
    this.#made.reject(err);
    for (const fail of [...this.#waiting]) fail(err);
    for (const [cid, ch] of this.#host.channels) {
      if (ch.sid === this.sid) {
        ch.markClosed(`the session was closed (${reason})`);
        this.#host.channels.delete(cid);
      }
    }
    for (const t of this.#tracks) {
      t.markClosed(`the session was closed (${reason})`);
      this.#host.tracks.delete(t.tid);
    }
    this.#remote = [];
    this.#host.release(this);
  }

  #fireClose(reason: string): void {
    for (const cb of this.#closeCbs.splice(0)) deliver(cb, reason);
  }

  #progress(e: SessionProgress): void {
    if (this.#onProgress) deliver(this.#onProgress, e);
  }

  #closedError(): PeerdialError {
    return this.#crash ?? this.#closedErrorFor(this.#closeReason || 'closed');
  }

  #closedErrorFor(reason: string): PeerdialError {
    return new PeerdialError('SESSION_CLOSED', `the session is closed (${reason})`);
  }
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** A Channel whose DataChannel lives in a session host. */
export class RemoteChannel implements Channel {
  readonly label: string;
  readonly protocol: string;
  readonly cid: number;
  /** The session it belongs to. */
  readonly sid: number;
  readonly #host: Host;
  readonly #lowWaterMark: number;
  #max: number;
  #closed = false;
  #closeReason = 'the channel is closed';
  #seq = 0;
  /** Bytes handed to the host and not yet acknowledged. */
  #inFlight = 0;
  readonly #sizes = new Map<number, number>();
  #waiters: Waiter[] = [];
  #late: PeerdialError | undefined;
  #messageCbs: Array<(data: Buffer | string) => void> = [];
  #closeCbs: Array<() => void> = [];
  #early: Array<Buffer | string> = [];

  constructor(host: Host, sid: number, info: ChannelInfo, lowWaterMark: number) {
    this.#host = host;
    this.sid = sid;
    this.cid = info.cid;
    this.label = info.label;
    this.protocol = info.protocol;
    this.#max = info.maxMessageSize;
    this.#lowWaterMark = lowWaterMark;
  }

  get isOpen(): boolean {
    return !this.#closed;
  }

  get maxMessageSize(): number {
    return this.#closed ? 0 : this.#max;
  }

  send(data: Uint8Array | string): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    if (this.#late) {
      const e = this.#late;
      this.#late = undefined;
      return Promise.reject(e);
    }
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    if (this.#max > 0 && size > this.#max) {
      return Promise.reject(
        new PeerdialError('TRANSFER_FAILED', `message of ${size} bytes on channel "${this.label}" is larger than the peer accepts (${this.#max} bytes)`, {
          hint: `split the data into messages of at most ${this.#max} bytes`,
        }),
      );
    }
    const seq = ++this.#seq;
    this.#sizes.set(seq, size);
    this.#inFlight += size;
    const payload = typeof data === 'string' || Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.#host.send({ op: 'send', cid: this.cid, seq, data: payload });
    if (this.#inFlight <= this.#lowWaterMark) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  onMessage(cb: (data: Buffer | string) => void): void {
    this.#messageCbs.push(cb);
    if (this.#early.length > 0) for (const data of this.#early.splice(0)) deliver(cb, data);
  }

  onClose(cb: () => void): void {
    if (this.#closed) queueMicrotask(() => deliver(cb));
    else this.#closeCbs.push(cb);
  }

  close(): void {
    if (this.#closed) return;
    this.#host.send({ op: 'close-channel', cid: this.cid });
    this.markClosed('the channel was closed');
  }

  received(data: Buffer | string): void {
    if (this.#closed) return;
    if (this.#messageCbs.length === 0) this.#early.push(data);
    else for (const cb of this.#messageCbs) deliver(cb, data);
  }

  acked(seq: number): void {
    this.#inFlight -= this.#sizes.get(seq) ?? 0;
    this.#sizes.delete(seq);
    if (this.#inFlight <= this.#lowWaterMark) for (const w of this.#waiters.splice(0)) w.resolve();
  }

  ackFailed(seq: number, e: WireError): void {
    this.#inFlight -= this.#sizes.get(seq) ?? 0;
    this.#sizes.delete(seq);
    const err = fromWireError(e);
    const waiting = this.#waiters.splice(0);
    if (waiting.length > 0) for (const w of waiting) w.reject(err);
    else this.#late = err;
  }

  markClosed(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    const err = this.#closedError();
    for (const w of this.#waiters.splice(0)) w.reject(err);
    for (const cb of this.#closeCbs.splice(0)) deliver(cb);
  }

  #closedError(): PeerdialError {
    return new PeerdialError('SESSION_CLOSED', `channel "${this.label}" is closed: ${this.#closeReason}`);
  }
}

const sends = (d: MediaDirection) => d === 'sendonly' || d === 'sendrecv';
const receives = (d: MediaDirection) => d === 'recvonly' || d === 'sendrecv';

/** A MediaTrack whose Track lives in a session host; its counters are kept here. */
export class RemoteTrack extends TrackBase {
  readonly tid: number;
  readonly #host: Host;
  #open: boolean;

  constructor(host: Host, info: TrackInfo) {
    super(info);
    this.#host = host;
    this.tid = info.tid;
    this.#open = info.isOpen;
  }

  get isOpen(): boolean {
    return this.#open && !this.closed;
  }

  sendRtp(packet: Uint8Array): boolean {
    if (!this.isOpen || !sends(this.direction_) || isRtcp(packet) || packet.length < 12) {
      this.counters.dropped++;
      return false;
    }
    const buf = Buffer.isBuffer(packet) ? packet : Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
    this.#host.send({ op: 'rtp', tid: this.tid, packet: buf });
    this.countSent(buf);
    return true;
  }

  requestKeyframe(): boolean {
    if (!this.isOpen || !receives(this.direction_)) return false;
    this.#host.send({ op: 'keyframe', tid: this.tid });
    this.counters.keyframeRequestsSent++;
    return true;
  }

  setDirection(direction: MediaDirection): void {
    this.direction_ = direction;
  }

  opened(): void {
    if (this.closed || this.#open) return;
    this.#open = true;
    this.fireOpen();
  }

  rtcp(packet: Buffer): void {
    if (!this.closed) this.receivedRtcp(packet);
  }

  rtp(packet: Buffer): void {
    if (!this.closed) this.receivedRtp(packet);
  }
}
