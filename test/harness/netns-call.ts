/**
 * A test call between two sites of a network made by netns.ts: one peer
 * process per side (test/harness/netns-peer.mjs, running the compiled
 * library in the site's host namespace), SDP carried by this process instead
 * of mail.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { freshOfferCures } from '../../src/session/session-errors.js';
import { OFFERS_PER_CALL } from '../../src/session/options.js';
import type { Network, Site } from './netns.js';

const PEER_SCRIPT = 'test/harness/netns-peer.mjs';

export interface PeerEvent {
  type: string;
  [key: string]: unknown;
}

export class PeerProcess {
  readonly events: PeerEvent[] = [];
  readonly stderr: string[] = [];
  readonly #child: ChildProcess;
  #waiters: Array<() => void> = [];
  #exited = false;
  /** How the process ended ("code 0", "signal SIGSEGV"), once it has. */
  exit: string | undefined;

  constructor(child: ChildProcess) {
    this.#child = child;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let ev: PeerEvent;
      try {
        ev = JSON.parse(line) as PeerEvent;
      } catch {
        ev = { type: 'stdout', line };
      }
      this.events.push(ev);
      for (const w of this.#waiters.splice(0)) w();
    });
    child.stderr!.on('data', (d: Buffer) => {
      if (this.stderr.length < 200) this.stderr.push(d.toString('utf8'));
    });
    // A peer that has exited (or crashed) closes its stdin: a write then fails
    // with EPIPE on the stream, asynchronously. That is the peer's exit, which
    // the test sees through its events; it must not surface as an unhandled error.
    child.stdin!.on('error', (err: Error) => {
      if (this.stderr.length < 200) this.stderr.push(`(stdin: ${err.message})`);
    });
    child.once('exit', (code, signal) => {
      this.exit = signal ? `signal ${signal}` : `code ${code}`;
      this.#exited = true;
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  send(obj: unknown): void {
    const stdin = this.#child.stdin!;
    if (!this.#exited && stdin.writable) stdin.write(`${JSON.stringify(obj)}\n`);
  }

  /** The first event of one of these types, or undefined after timeoutMs / exit. */
  async waitFor(types: string[], timeoutMs: number): Promise<PeerEvent | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ev = this.events.find((e) => types.includes(e.type));
      if (ev) return ev;
      if (this.#exited || Date.now() >= deadline) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Ask the peer to close; kill it if it has not exited within 3 s. Resolves to whether it exited by itself. */
  async close(): Promise<boolean> {
    this.send({ cmd: 'close' });
    this.#child.stdin!.end();
    const deadline = Date.now() + 3000;
    while (!this.#exited && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    if (this.#exited) return true;
    this.#child.kill('SIGKILL');
    return false;
  }

  /** The longest event-loop stall the peer reported at exit (ms), or undefined when it did not exit by itself. */
  maxLag(): number | undefined {
    const ev = this.events.find((e) => e.type === 'lag');
    return ev === undefined ? undefined : Number(ev.max);
  }

  /** ICE/peer-connection state changes, as "t state" strings. */
  timeline(): string[] {
    return this.events
      .filter((e) => ['progress', 'connected', 'failed', 'mapping', 'refresh'].includes(e.type))
      .map((e) => {
        const ev = (e.event ?? {}) as Record<string, unknown>;
        if (e.type === 'progress') {
          if (ev.type === 'ice' || ev.type === 'state') return `${fmt(e.t)} ${String(ev.type)}=${String(ev.state)}`;
          if (ev.type === 'gathered') return `${fmt(e.t)} gathered ${String(ev.candidates)}`;
          if (ev.type === 'answer-kept') {
            return `${fmt(e.t)} answer-kept#${String(ev.count)} (port free after ${String(ev.releaseMs)} ms${ev.same ? '' : ', candidates CHANGED'})`;
          }
          return `${fmt(e.t)} ${String(ev.type)}`;
        }
        if (e.type === 'refresh') return `${fmt(e.t)} refresh#${String(e.n)}${e.same ? '' : ' (identity CHANGED)'}`;
        return `${fmt(e.t)} ${e.type}`;
      });
  }
}

function fmt(t: unknown): string {
  return typeof t === 'number' ? `${(t / 1000).toFixed(1)}s` : '?';
}

export interface PeerOptions {
  connectTimeoutMs?: number;
  /** Ask the site's router for a NAT-PMP mapping and pin ICE to it (upnp sites). */
  natpmp?: boolean;
  /** Remove a=end-of-candidates from the offer before applying it (answerer). */
  stripEndOfCandidates?: boolean;
  /** Remove every candidate (and a=end-of-candidates) from the offer before applying it (answerer). */
  stripCandidates?: boolean;
  /** Session.acceptOffer's keepAnswerMs (answerer); a certificate is made in `dir` when given, else by the Session. */
  keepAnswerMs?: number;
  keepAnswerRefreshMs?: number;
  dir?: string;
  /** Override the site's ICE servers. */
  iceServers?: string[];
  /** TURN relays for this peer (IceConfig.turn). */
  turn?: Array<{ host: string; port: number; username: string; password: string }>;
  /** Offerer: send this many random bytes as a file after the echo; answerer: save it into `dir` (see netns-peer.mjs). */
  transfer?: { bytes: number; dir: string };
  /** Offerer: OfferOptions.keepOfferConnection (unset: the session's default). */
  keepOfferConnection?: boolean;
}

export function startPeer(net: Network, site: Site, role: 'offerer' | 'answerer', opts: PeerOptions = {}): PeerProcess {
  if (!existsSync('dist/session/index.js')) {
    throw new Error('the peers run the compiled library: run `npm run build` first (npm test does)');
  }
  const config = {
    role,
    ice: { iceServers: opts.iceServers ?? site.iceServers, bindAddress: site.bindAddress, ...(opts.turn ? { turn: opts.turn } : {}) },
    connectTimeoutMs: opts.connectTimeoutMs ?? 20_000,
    natpmp: opts.natpmp && site.gateway ? { gateway: site.gateway } : undefined,
    stripEndOfCandidates: opts.stripEndOfCandidates,
    stripCandidates: opts.stripCandidates,
    keepAnswerMs: opts.keepAnswerMs,
    keepAnswerRefreshMs: opts.keepAnswerRefreshMs,
    keepOfferConnection: opts.keepOfferConnection,
    dir: opts.dir,
    transfer: opts.transfer,
  };
  return new PeerProcess(net.spawnInNs(site.hostNs, [PEER_SCRIPT, JSON.stringify(config)]));
}

export interface CallResult {
  caller: string;
  callee: string;
  connected: boolean;
  /** ms from the answer being applied to "connected" on the caller. */
  ms?: number;
  /** Selected pair as seen by the callee (the caller's view is unreliable in libjuice). */
  pair?: { local: string; remote: string };
  /** Selected pair as the caller reported it. */
  callerPair?: { local: string; remote: string };
  /** With a transfer: what the caller sent and what the callee has on disk. */
  transfer?: { sent?: { sha256: string; bytes: number; status: string; ms: number }; received?: { sha256: string; bytes: number; status: string } };
  echo?: boolean;
  failure?: { side: 'caller' | 'callee'; code: string; message: string; hint?: string };
  callerLog: string[];
  calleeLog: string[];
  /** Did each peer exit by itself when asked (no hang), and its longest event-loop stall (ms). */
  exits?: { caller: boolean; callee: boolean; callerLagMs?: number; calleeLagMs?: number };
  /** Offers made: 2 when the first failed in a way the phone answers with a fresh offer (`firstFailure`). */
  offers: number;
  firstFailure?: CallResult['failure'];
}

export interface CallOptions {
  /** Hold the answer back this long before the caller applies it. */
  answerDelayMs?: number;
  connectTimeoutMs?: number;
  caller?: PeerOptions;
  callee?: PeerOptions;
  /** Start the callee some other way (e.g. an experimental script); it must speak the answerer protocol. */
  startCallee?: (net: Network, site: Site) => PeerProcess;
}

/**
 * Place a call from `from` to `to` as the phone does: one offer, and for a
 * failure that a fresh offer cures (session/session-errors.ts freshOfferCures: not
 * a timeout, e.g. the stalled DTLS handshake of session/options.ts
 * DTLS_STALL_MS) one more, up to OFFERS_PER_CALL, with fresh peer processes.
 * Never more than the phone makes. Never throws for a failed call.
 */
export async function placeCall(net: Network, from: Site, to: Site, opts: CallOptions = {}): Promise<CallResult> {
  let result = await placeOneCall(net, from, to, opts);
  let firstFailure: CallResult['failure'];
  for (let offers = 2; offers <= OFFERS_PER_CALL && !result.connected && result.failure && result.failure.code !== 'HARNESS' && freshOfferCures(result.failure.message); offers++) {
    firstFailure ??= result.failure;
    // as the phone's later offers: the answer on a fresh connection (OfferOptions.keepOfferConnection)
    result = { ...(await placeOneCall(net, from, to, { ...opts, caller: { ...opts.caller, keepOfferConnection: false } })), offers, firstFailure };
  }
  return result;
}

/** One offer from `from` to `to`, and what happened. Never throws for a failed call. */
async function placeOneCall(net: Network, from: Site, to: Site, opts: CallOptions): Promise<CallResult> {
  const connectTimeoutMs = opts.connectTimeoutMs ?? 20_000;
  const delay = opts.answerDelayMs ?? 0;
  const caller = startPeer(net, from, 'offerer', {
    connectTimeoutMs,
    natpmp: from.kind === 'upnp',
    ...opts.caller,
  });
  const callee = opts.startCallee
    ? opts.startCallee(net, to)
    : startPeer(net, to, 'answerer', {
        connectTimeoutMs: connectTimeoutMs + delay,
        natpmp: to.kind === 'upnp',
        ...opts.callee,
      });
  const result: CallResult = { caller: from.name, callee: to.name, connected: false, callerLog: [], calleeLog: [], offers: 1 };
  const setupFailure = (side: 'caller' | 'callee', p: PeerProcess, what: string) => {
    const f = p.events.find((e) => e.type === 'failed');
    result.failure = {
      side,
      code: String(f?.code ?? 'HARNESS'),
      message: f ? String(f.message) : `${what}${p.exit ? ` (exited: ${p.exit})` : ''}; stderr: ${p.stderr.join('').slice(-2000)}; stdout: ${JSON.stringify(p.events.slice(0, 5))}`,
    };
  };
  try {
    const offer = await caller.waitFor(['offer', 'failed'], 30_000);
    if (offer?.type !== 'offer') {
      setupFailure('caller', caller, 'no offer');
      return result;
    }
    callee.send({ cmd: 'offer', sdp: offer.sdp });
    const answer = await callee.waitFor(['answer', 'failed'], 30_000);
    if (answer?.type !== 'answer') {
      setupFailure('callee', callee, 'no answer');
      return result;
    }
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    caller.send({ cmd: 'answer', sdp: answer.sdp });
    const [a, b] = await Promise.all([
      caller.waitFor(['connected', 'failed'], connectTimeoutMs + 5000),
      callee.waitFor(['connected', 'failed'], connectTimeoutMs + 5000),
    ]);
    if (a?.type === 'connected' && b?.type === 'connected') {
      result.connected = true;
      result.ms = Number(a.ms);
      result.pair = b.pair as CallResult['pair'];
      result.callerPair = a.pair as CallResult['pair'];
      const echo = await caller.waitFor(['echo'], 6000);
      result.echo = echo?.ok === true;
      if (opts.caller?.transfer) {
        // no upper bound of its own: the transfer ends, or a peer fails and exits
        const sent = await caller.waitFor(['sent', 'failed'], 2_000_000_000);
        const received = await callee.waitFor(['received'], 2_000_000_000);
        result.transfer = {
          ...(sent?.type === 'sent' ? { sent: sent as unknown as NonNullable<CallResult['transfer']>['sent'] } : {}),
          ...(received ? { received: received as unknown as NonNullable<CallResult['transfer']>['received'] } : {}),
        };
      }
    } else {
      const bad = a?.type === 'failed' ? { side: 'caller' as const, ev: a } : b?.type === 'failed' ? { side: 'callee' as const, ev: b } : undefined;
      if (bad) {
        result.failure = {
          side: bad.side,
          code: String(bad.ev.code),
          message: String(bad.ev.message),
          ...(bad.ev.hint === undefined ? {} : { hint: String(bad.ev.hint) }),
        };
      } else {
        result.failure = { side: 'caller', code: 'HARNESS', message: 'neither connected nor failed in time' };
      }
    }
    return result;
  } finally {
    result.callerLog = caller.timeline();
    result.calleeLog = callee.timeline();
    const mapping = [caller, callee].flatMap((p) => p.events.filter((e) => e.type === 'mapping' || e.type === 'mapping-failed'));
    for (const m of mapping) result.callerLog.push(`${m.type} ${JSON.stringify(m)}`);
    const [callerExit, calleeExit] = await Promise.all([caller.close(), callee.close()]);
    result.exits = { caller: callerExit, callee: calleeExit, callerLagMs: caller.maxLag(), calleeLagMs: callee.maxLag() };
  }
}

/**
 * A one-mail call: the callee prepares a standing answer first; the caller
 * makes its offer and at once applies the answer made from the standing
 * one; `offerDelayMs` later (the offer's mail leg) the callee gets the offer
 * and answers on the kept identity. The callee's answer is never given to
 * the caller. `ms` is from the offer reaching the callee to the caller
 * connected. Never throws for a failed call.
 */
export async function placeOneMailCall(net: Network, from: Site, to: Site, opts: { offerDelayMs?: number; connectTimeoutMs?: number } = {}): Promise<CallResult> {
  const connectTimeoutMs = opts.connectTimeoutMs ?? 20_000;
  const delay = opts.offerDelayMs ?? 0;
  const caller = startPeer(net, from, 'offerer', { connectTimeoutMs: connectTimeoutMs + delay, natpmp: from.kind === 'upnp' });
  const callee = startPeer(net, to, 'answerer', { connectTimeoutMs, natpmp: to.kind === 'upnp' });
  const result: CallResult = { caller: from.name, callee: to.name, connected: false, callerLog: [], calleeLog: [], offers: 1 };
  const fail = (side: 'caller' | 'callee', p: PeerProcess, what: string) => {
    const f = p.events.find((e) => e.type === 'failed');
    result.failure = { side, code: String(f?.code ?? 'HARNESS'), message: f ? String(f.message) : `${what}; stderr: ${p.stderr.join('').slice(-2000)}` };
  };
  try {
    callee.send({ cmd: 'prepare-standing' });
    const standing = await callee.waitFor(['standing', 'failed'], 30_000);
    if (standing?.type !== 'standing') {
      fail('callee', callee, 'no standing answer');
      return result;
    }
    const offer = await caller.waitFor(['offer', 'failed'], 30_000);
    if (offer?.type !== 'offer') {
      fail('caller', caller, 'no offer');
      return result;
    }
    caller.send({ cmd: 'standing-answer', identity: standing.identity });
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const t = performance.now();
    callee.send({ cmd: 'offer', sdp: offer.sdp, standing: true });
    const [a, b] = await Promise.all([
      caller.waitFor(['connected', 'failed'], connectTimeoutMs + delay + 5000),
      callee.waitFor(['connected', 'failed'], connectTimeoutMs + 5000),
    ]);
    if (a?.type === 'connected' && b?.type === 'connected') {
      result.connected = true;
      result.ms = Math.round(performance.now() - t);
      result.pair = b.pair as CallResult['pair'];
      const echo = await caller.waitFor(['echo'], 6000);
      result.echo = echo?.ok === true;
    } else if (a?.type === 'failed') fail('caller', caller, 'failed');
    else if (b?.type === 'failed') fail('callee', callee, 'failed');
    else result.failure = { side: 'caller', code: 'HARNESS', message: 'neither connected nor failed in time' };
    return result;
  } finally {
    result.callerLog = caller.timeline();
    result.calleeLog = callee.timeline();
    const [callerExit, calleeExit] = await Promise.all([caller.close(), callee.close()]);
    result.exits = { caller: callerExit, callee: calleeExit, callerLagMs: caller.maxLag(), calleeLagMs: callee.maxLag() };
  }
}
