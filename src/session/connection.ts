/**
 * A session's connection: the node-datachannel PeerConnection it uses now,
 * the configuration every connection of the session is made with, and the
 * replacing of one connection by another (a kept answer, the offerer's
 * fresh connection for the answer; session.ts).
 *
 * Only the current connection's callbacks count: a replaced one is retired,
 * and whatever it still reports is ignored. Every callback given to
 * node-datachannel is wrapped (guarded()): an exception inside a native
 * callback would abort the process.
 */
import { PeerConnection } from 'node-datachannel';
import type { DataChannel, RtcConfig, Track } from 'node-datachannel';
import { PeerdialError } from '../errors.js';
import { guarded } from './channel.js';
import { PORT_RELEASE_TIMEOUT_MS, type SessionRole } from './options.js';
import { freeUdpPort, pinPort } from './ports.js';
import { noCommonFamily } from './sdp.js';
import { abortedError } from './session-errors.js';
import type { CandidatePair, IceConfig } from './types.js';
import { relayIceServers } from './relay.js';

/** What the current connection reports, handed to the session. */
export interface ConnectionEvents {
  state(state: string): void;
  ice(state: string): void;
  dataChannel(dc: DataChannel): void;
  track(track: Track): void;
  /** A callback threw. */
  internalError(err: unknown): void;
}

let connectionCounter = 0;

export function rtcConfig(ice: IceConfig): RtcConfig {
  // The session checks the peer's certificate itself, at `connected` (see index.ts).
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

export class Connection {
  /** The current PeerConnection. */
  pc: PeerConnection;
  /** ICE state of the current connection. */
  iceState = 'new';
  readonly rtc: RtcConfig;
  /** The port range of the configuration, before a port was pinned. */
  readonly configuredPorts: { begin: number | undefined; end: number | undefined };
  /** PeerConnections replaced: their callbacks count no more. */
  readonly #retired = new WeakSet<PeerConnection>();
  readonly #role: SessionRole;
  readonly #events: ConnectionEvents;
  #gatherWaiters: Array<() => void> = [];
  #closeWaiters: Array<(err: PeerdialError) => void> = [];

  /** Makes the first connection; throws what node-datachannel throws. */
  constructor(role: SessionRole, rtc: RtcConfig, configuredPorts: Connection['configuredPorts'], events: ConnectionEvents) {
    this.#role = role;
    this.rtc = rtc;
    this.configuredPorts = configuredPorts;
    this.#events = events;
    this.pc = this.#open();
  }

  /** A fresh connection with the same configuration becomes the current one. */
  replace(): PeerConnection {
    const pc = this.#open();
    this.pc = pc;
    this.iceState = 'new';
    return pc;
  }

  /** A new PeerConnection whose callbacks count only while it is the current one. */
  #open(): PeerConnection {
    const pc = new PeerConnection(`peerdial-${this.#role}-${++connectionCounter}`, this.rtc);
    const isCurrent = () => pc === this.pc && !this.#retired.has(pc);
    const internal = (err: unknown) => {
      if (isCurrent()) this.#events.internalError(err);
    };
    const current = <A extends unknown[]>(fn: (...a: A) => void) =>
      guarded((...a: A) => {
        if (isCurrent()) fn(...a);
      }, internal);
    pc.onStateChange(current((state: string) => this.#events.state(state)));
    pc.onIceStateChange(
      current((state: string) => {
        this.iceState = state;
        this.#events.ice(state);
      }),
    );
    pc.onGatheringStateChange(
      current((state: string) => {
        if (state === 'complete') for (const w of this.#gatherWaiters.splice(0)) w();
      }),
    );
    pc.onDataChannel(current((dc: DataChannel) => this.#events.dataChannel(dc)));
    pc.onTrack(current((track: Track) => this.#events.track(track)));
    return pc;
  }

  /**
   * Wait until the current connection has gathered its candidates: true, or
   * false when `timeoutMs` ran out first (the description then carries the
   * candidates gathered so far). Rejects on the signal, or with the error
   * given to abandonWaits().
   */
  gathered(signal: AbortSignal | undefined, timeoutMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
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
      if (this.pc.gatheringState() === 'complete') return finish(true);
      this.#gatherWaiters.push(() => finish(true));
      this.#closeWaiters.push((err) => {
        clearTimeout(timer);
        reject(err);
      });
      timer = setTimeout(() => finish(false), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Call `cb` when the current connection has gathered its candidates. */
  whenGathered(cb: () => void): void {
    this.#gatherWaiters.push(cb);
  }

  /** The session closed: gathered() rejects with `err`, and whenGathered() callbacks are dropped. */
  abandonWaits(err: PeerdialError): void {
    for (const w of this.#closeWaiters.splice(0)) w(err);
    this.#gatherWaiters = [];
  }

  /**
   * Close the current connection and wait until its pinned UDP port is free
   * again (libdatachannel releases it on its own threads some time after
   * close(); a connection that cannot bind its port aborts the whole process,
   * see portReady()). Resolves with the wait in ms; stops waiting once
   * `stop()` says so.
   */
  async release(stop: () => boolean, timeoutMs = PORT_RELEASE_TIMEOUT_MS): Promise<{ ms: number; free: boolean }> {
    this.#retireCurrent();
    const t0 = performance.now();
    const port = this.rtc.portRangeBegin ?? 0;
    const ms = () => Math.round(performance.now() - t0);
    for (let wait = 5; performance.now() - t0 < timeoutMs; wait = Math.min(wait * 2, 100)) {
      if (stop() || (await freeUdpPort(port, this.rtc.bindAddress)) === port) return { ms: ms(), free: true };
      await new Promise((r) => setTimeout(r, wait));
    }
    return { ms: ms(), free: false };
  }

  /**
   * Call right before setLocalDescription, where libjuice binds the UDP port.
   * A pinned port that another program took since it was picked makes that
   * bind fail, and node-datachannel lets the error abort the whole process on
   * that path ("Failed to gather local ICE candidates"; createDataChannel
   * catches it, setLocalDescription does not). So the port is checked here,
   * with nothing else running between the check and the bind. A description
   * not made yet (`mayMove`: nobody holds the port) moves to another free
   * port of the configured range; otherwise the session fails with a clear
   * error instead of taking the process down.
   */
  async portReady(mayMove: boolean): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const port = this.rtc.portRangeBegin;
      if (port === undefined || port === 0 || port !== this.rtc.portRangeEnd) return;
      if ((await freeUdpPort(port, this.rtc.bindAddress)) === port) return;
      const { begin, end } = this.configuredPorts;
      const fixed = begin !== undefined && begin > 0 && begin === end;
      if (!mayMove || fixed || attempt > 3) {
        throw new PeerdialError('SESSION_FAILED', `UDP port ${port} is taken by another program`, {
          hint: fixed
            ? 'the configured ICE port (port_range_begin = port_range_end) is in use: free it, or configure a range'
            : 'call again (a fresh offer picks another port), or configure an ICE port range (port_range_begin/port_range_end) that nothing else uses',
        });
      }
      const moved = await pinPort({ iceServers: [], bindAddress: this.rtc.bindAddress, portRangeBegin: begin, portRangeEnd: end });
      this.#retireCurrent();
      this.rtc.portRangeBegin = moved.portRangeBegin;
      this.rtc.portRangeEnd = moved.portRangeEnd;
      this.replace();
    }
  }

  /** The current connection is closed and its callbacks count no more. */
  #retireCurrent(): void {
    const old = this.pc;
    this.#retired.add(old);
    try {
      old.close();
    } catch {
      // already closed
    }
  }

  /** Connections made from now on take any port of the configured range again, not the pinned one. */
  unpinPort(): void {
    const { begin, end } = this.configuredPorts;
    if (begin === undefined) delete this.rtc.portRangeBegin;
    else this.rtc.portRangeBegin = begin;
    if (end === undefined) delete this.rtc.portRangeEnd;
    else this.rtc.portRangeEnd = end;
  }

  /** The local description's SDP ('' when there is none). */
  localSdp(): string {
    return this.pc.localDescription()?.sdp ?? '';
  }

  nativeState(): string {
    try {
      return this.pc.state();
    } catch {
      return 'closed';
    }
  }

  addCandidate(candidate: string, mid: string): void {
    try {
      this.pc.addRemoteCandidate(candidate, mid);
    } catch {
      // A refused candidate is not fatal: others may work.
    }
  }

  /** Why the two descriptions cannot meet (no address family in common), if so. */
  noCommonFamily(): string | undefined {
    try {
      const local = this.pc.localDescription()?.sdp;
      const remote = this.pc.remoteDescription()?.sdp;
      return local && remote ? noCommonFamily(local, remote) : undefined;
    } catch {
      return undefined;
    }
  }

  /** The selected candidate pair, if any. */
  selectedPair(): CandidatePair | undefined {
    try {
      const p = this.pc.getSelectedCandidatePair();
      if (!p) return undefined;
      return { local: formatCandidate(p.local), remote: formatCandidate(p.remote) };
    } catch {
      return undefined;
    }
  }

  close(): void {
    try {
      this.pc.close();
    } catch {
      // already closed
    }
  }
}
