/**
 * A Session that runs in a session host process (remote.ts): the same
 * surface as Session (surface.ts), carried out by messages to the host.
 */
import { PeerdialError } from '../errors.js';
import { DEFAULT_LOW_WATER_MARK, deliver } from './channel.js';
import { deferred } from './deferred.js';
import type { Host } from './host-process.js';
import { fromWireError, type ChannelInfo, type FromHost, type TrackInfo, type WireError } from './host-protocol.js';
import type { ChannelOptions, Connected, SessionOptions, SessionProgress, SessionRole } from './options.js';
import { RemoteChannel } from './remote-channel.js';
import { RemoteTrack } from './remote-track.js';
import type { CallSession } from './surface.js';
import type { CandidatePair, Channel, MediaKind, MediaTrack } from './types.js';

/** The host of remote sessions, with the kinds of what it carries. */
export type SessionHost = Host<RemoteSession, RemoteChannel, RemoteTrack>;

/** A Session that runs in a session host process. */
export class RemoteSession implements CallSession {
  readonly role: SessionRole;
  readonly sid: number;
  readonly #host: SessionHost;
  readonly #onProgress: ((e: SessionProgress) => void) | undefined;
  readonly #made = deferred<string>();
  #answered = false;
  /** The answer given was made from a standing answer: a mailed one may replace it. */
  #provisional = false;
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

  constructor(host: SessionHost, sid: number, role: SessionRole, opts: SessionOptions) {
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

  acceptAnswer(answerSdp: string, opts: { provisional?: boolean } = {}): void {
    if (this.role !== 'offerer') throw new PeerdialError('USAGE', 'acceptAnswer() is for the offering side');
    if (this.#closed) throw this.#closedError();
    if (this.#answered && !this.#provisional) throw new PeerdialError('SESSION_FAILED', 'this offer has already been answered', { hint: 'call again so that a fresh offer is sent' });
    this.#answered = true;
    this.#provisional = opts.provisional === true;
    // Checked and applied in the host; a refusal there rejects connected().
    this.#host.send({ op: 'accept-answer', sid: this.sid, sdp: answerSdp, ...(opts.provisional ? { provisional: true } : {}) });
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
