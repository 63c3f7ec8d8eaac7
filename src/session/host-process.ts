/**
 * One session host process (host.ts) seen from the agent: started with
 * child_process.fork, IPC with `serialization: 'advanced'`, requests and
 * their replies, and the routing of what the host says to the sessions,
 * channels and tracks it carries (remote-session.ts, remote-channel.ts,
 * remote-track.ts). When the process ends while it carries sessions, each
 * of them is told it crashed. See remote.ts for the whole picture.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { PeerdialError } from '../errors.js';
import type { SessionProgress } from './options.js';
import { fromWireError, type ChannelInfo, type FromHost, type ToHost, type TrackInfo, type WireError } from './host-protocol.js';
import type { MediaDirection } from './types.js';

/** How long a host that was told to exit may take before it is killed. */
const HOST_EXIT_GRACE_MS = 5_000;
/** How long a new host may take to load node-datachannel and say ready. */
const HOST_START_TIMEOUT_MS = 30_000;

const CRASH_HINT = 'the WebRTC library crashed in the session process; the agent goes on, and the next call starts a fresh session process: call again';

/** What a channel or track needs of its host: a way to send it a message. */
export interface HostSender {
  send(m: ToHost): void;
}

/** A session carried by a host, as the host sees it (RemoteSession). */
export interface HostedSession {
  readonly sid: number;
  made(m: Extract<FromHost, { ev: 'made' | 'make-failed' }>): void;
  progress(e: SessionProgress): void;
  answerFailed(e: WireError): void;
  closedByHost(reason: string): void;
  remoteChannel(info: ChannelInfo): void;
  addTrack(info: TrackInfo): void;
  crashed(reason: string, err: PeerdialError): void;
  close(reason?: string): void;
}

/** A channel carried by a host, as the host sees it (RemoteChannel). */
export interface HostedChannel {
  readonly sid: number;
  received(data: Buffer | string): void;
  acked(seq: number): void;
  ackFailed(seq: number, e: WireError): void;
  markClosed(reason: string): void;
}

/** A track carried by a host, as the host sees it (RemoteTrack). */
export interface HostedTrack {
  setDirection(direction: MediaDirection): void;
  opened(): void;
  markClosed(reason: string): void;
  rtp(packet: Buffer): void;
  rtcp(packet: Buffer): void;
}

interface Pending {
  resolve: (m: FromHost) => void;
  reject: (e: PeerdialError) => void;
}

/** One host process and what it carries. */
export class Host<S extends HostedSession = HostedSession, C extends HostedChannel = HostedChannel, T extends HostedTrack = HostedTrack> implements HostSender {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  pid = 0;
  /** Sessions this process was given, ever. */
  given = 0;
  retiring = false;
  gone = false;
  readonly sessions = new Map<number, S>();
  readonly channels = new Map<number, C>();
  readonly tracks = new Map<number, T>();
  readonly #pending = new Map<number, Pending>();
  readonly #queue: ToHost[] = [];
  #isReady = false;
  #startTimedOut = false;
  #nextReq = 0;
  #killTimer: NodeJS.Timeout | undefined;

  constructor(
    entry: string,
    private readonly onCrash: (host: Host<S, C, T>, reason: string, code: number | null, signal: NodeJS.Signals | null) => void,
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
  release(session: S): void {
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

