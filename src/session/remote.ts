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
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PeerdialError } from '../errors.js';
import { Host } from './host-process.js';
import type { PlainSessionOptions } from './host-protocol.js';
import type { AnswerOptions, OfferOptions, SessionOptions, SessionRole } from './options.js';
import { RemoteSession, type SessionHost } from './remote-session.js';
import type { SessionFactory } from './surface.js';

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

/** The factory of isolated sessions: the agent's Phone uses it in place of `Session`. */
export class SessionHosts implements SessionFactory {
  readonly isolated = true;
  readonly #hosts = new Set<SessionHost>();
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

  #host(): SessionHost {
    for (const h of this.#hosts) {
      if (!h.gone && !h.retiring && h.given < this.#perProcess) return h;
    }
    const host: SessionHost = new Host(this.#entry ?? defaultEntry(), (h, reason, code, signal) => {
      this.#onCrash?.({ pid: h.pid, code, signal, sessions: h.sessions.size, reason });
    });
    this.#hosts.add(host);
    void host.exited.then(() => this.#hosts.delete(host));
    return host;
  }
}

