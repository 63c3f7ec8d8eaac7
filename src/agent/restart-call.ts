/**
 * Carries out what a call's restart machine (restart.ts) says, and feeds
 * it what happens: the one place a restart touches sessions, the control
 * channel, mail and the clock. Every edge is passed in (RestartEdges), so
 * the phone wires it to the real session and outbox, and a test harness to
 * its own.
 *
 * Input is sorted before the machine sees it: an update frame on the
 * control channel or an `update` mail is parsed (wire/update.ts) and
 * taken or refused by acceptUpdate; only taken updates become peer-offer /
 * peer-answer events. A refused one is reported (onRefused), never acted on.
 */
import { newId } from '../wire/ids.js';
import type { PeerdialMessage } from '../wire/message.js';
import { acceptUpdate, buildUpdateFrame, isUpdateFrame, parseUpdateFrame, restartOfMessage, type CallUpdate, type UpdateVia } from '../wire/update.js';
import type { Timers } from '../util/timers.js';
import type { CallLogEntry } from '../store/calllog.js';
import { Restart, type RestartEvent, type RestartOutput, type RestartRecord } from './restart.js';

/** A new transport as the edges make it: something that connects, and can be dropped. */
export interface NewTransport<C> {
  sdp: string;
  /** Resolves once the new transport is connected. */
  connected(): Promise<C>;
  /** Applies the peer's answer (offerer only). */
  acceptAnswer?(sdp: string): void;
  close(reason: string): void;
}

export interface RestartEdges<C> {
  /** A new transport offering (fresh ICE credentials and candidates). */
  offer(generation: number): Promise<NewTransport<C>>;
  /** A new transport answering the peer's offer. */
  answer(generation: number, offerSdp: string): Promise<NewTransport<C>>;
  /** Sends one text message on the call's present control channel; false when it is not open. */
  sendControl(text: string): Promise<boolean>;
  /** Mails an update to the call's peer (signed, encrypted: the outbox). */
  mail(update: CallUpdate): Promise<void>;
  /** The new transport is connected: the call moves to it (carriers follow), the old one goes. */
  switchTo(connected: C, generation: number): void;
  /** The call could not be restarted: it ends. */
  end(reason: string): void;
  log(record: RestartRecord): void;
  say(text: string): void;
  /** An update that was not taken, and why. */
  onRefused?(reason: string, detail: string, via: UpdateVia): void;
}

export interface CallRestartOptions<C> {
  caller: boolean;
  callId: string;
  peer: string;
  edges: RestartEdges<C>;
  /** Whether the control channel is open now. */
  controlOpen: () => boolean;
  timers: Timers;
  /** How long an offer sent over the control channel waits for its answer there before it goes by mail too. Default 3 s. */
  mailFallbackMs?: number;
  /** After a lost transport with no change of ours: how long the caller waits for the peer's update before it restarts itself. Default 5 s. */
  graceMs?: number;
  /** How long one restart may take in all before the call ends. Default 180 s (a mail round trip). */
  restartMs?: number;
}

export class CallRestart<C> {
  readonly restart: Restart;
  private readonly cancels = new Map<string, () => void>();
  /** The transport being made for the present restart. */
  private pending: NewTransport<C> | undefined;
  /** The new transport, connected, until the machine says to switch to it. */
  private ready: { connected: C; generation: number } | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly o: CallRestartOptions<C>) {
    this.restart = new Restart({ caller: o.caller, callId: o.callId, peer: o.peer, controlOpen: o.controlOpen });
  }

  get state(): string {
    return this.restart.m.state;
  }

  /** The address watcher saw this machine's addresses change; `usable` false when none is left to offer from. */
  addressChanged(detail?: string, usable = true): void {
    if (!usable) this.feed({ type: 'address-gone', at: this.now() });
    else this.feed({ type: 'address-changed', at: this.now(), ...(detail ? { detail } : {}) });
  }

  /** The call's present transport closed or failed. */
  transportLost(reason: string): void {
    this.feed({ type: 'session-lost', at: this.now(), reason });
  }

  /** A message on the control channel: true when it was an update (handled here), false when it is someone else's. */
  fromControl(raw: string | Buffer): boolean {
    if (!isUpdateFrame(raw)) return false;
    const parsed = parseUpdateFrame(raw);
    if (!parsed.ok) this.o.edges.onRefused?.(parsed.reason, parsed.detail, 'control');
    else this.take(parsed.update, this.o.peer, 'control');
    return true;
  }

  /** A verified mail of kind `update` from `msg.from`. */
  fromMail(msg: PeerdialMessage): void {
    const parsed = restartOfMessage(msg);
    if (!parsed.ok) this.o.edges.onRefused?.(parsed.reason, parsed.detail, 'mail');
    else this.take(parsed.update, msg.from, 'mail');
  }

  /** Stops every timer and drops a transport still being made (the call ended). */
  stop(): void {
    for (const c of this.cancels.values()) c();
    this.cancels.clear();
    this.pending?.close('the call ended');
    this.pending = undefined;
  }

  private take(u: CallUpdate, from: string, via: UpdateVia): void {
    const decision = acceptUpdate(u, from, this.restart.context());
    if (!decision.ok) {
      if (decision.reason === 'replayed' && u.role === 'offer') this.feed({ type: 'peer-offer-again', generation: u.generation, via });
      else this.o.edges.onRefused?.(decision.reason, decision.detail, via);
      return;
    }
    this.restart.seen.add(u.nonce);
    if (u.role === 'offer') this.feed({ type: 'peer-offer', at: this.now(), generation: u.generation, sdp: u.sdp, via });
    else this.feed({ type: 'peer-answer', generation: u.generation, sdp: u.sdp, via });
  }

  private now(): number {
    return this.o.timers.now().getTime();
  }

  private feed(e: RestartEvent): void {
    for (const out of this.restart.handle(e)) {
      this.chain = this.chain.then(() => this.carry(out)).catch((err: unknown) => this.feed({ type: 'session-failed', reason: (err as Error).message }));
    }
  }

  private async carry(out: RestartOutput): Promise<void> {
    const edges = this.o.edges;
    switch (out.to) {
      case 'user':
        edges.say(out.say);
        return;
      case 'log':
        edges.log(out.restart);
        return;
      case 'clock': {
        if ('stop' in out) {
          for (const [name, cancel] of this.cancels) {
            if (out.stop === 'all' || out.stop === name) {
              cancel();
              this.cancels.delete(name);
            }
          }
          return;
        }
        const ms = out.start === 'mail-fallback' ? (this.o.mailFallbackMs ?? 3_000) : out.start === 'grace' ? (this.o.graceMs ?? 5_000) : (this.o.restartMs ?? 180_000);
        const type = out.start === 'mail-fallback' ? 'clock-mail-fallback' : out.start === 'grace' ? 'clock-grace' : 'clock-restart-timeout';
        this.cancels.get(out.start)?.();
        this.cancels.set(out.start, this.o.timers.after(ms, () => {
          this.cancels.delete(out.start);
          this.feed({ type } as RestartEvent);
        }));
        return;
      }
      case 'call':
        if (out.do === 'end') edges.end(out.reason);
        else if (this.ready) {
          const { connected, generation } = this.ready;
          this.ready = undefined;
          edges.switchTo(connected, generation);
        }
        return;
      case 'peer': {
        const update: CallUpdate = { callId: this.o.callId, nonce: out.nonce, generation: out.generation, role: out.send, sdp: out.sdp };
        if (out.via === 'control') {
          const sent = await edges.sendControl(buildUpdateFrame(update)).catch(() => false);
          if (!sent) this.feed({ type: 'control-failed' });
        } else await edges.mail(update);
        return;
      }
      case 'session':
        return this.session(out);
    }
  }

  private async session(out: Extract<RestartOutput, { to: 'session' }>): Promise<void> {
    if (out.do === 'drop-new') {
      this.pending?.close('a newer restart took its place');
      this.pending = undefined;
      return;
    }
    if (out.do === 'apply-answer') {
      this.pending?.acceptAnswer?.(out.sdp);
      return;
    }
    const t = out.do === 'make-offer' ? await this.o.edges.offer(out.generation) : await this.o.edges.answer(out.generation, out.sdp);
    this.pending = t;
    const generation = out.generation;
    t.connected().then(
      (c) => {
        if (this.pending !== t) return;
        this.pending = undefined;
        this.ready = { connected: c, generation };
        this.feed({ type: 'session-connected', at: this.now() });
      },
      (err: unknown) => {
        if (this.pending === t) this.feed({ type: 'session-failed', reason: (err as Error).message });
      },
    );
    this.feed(out.do === 'make-offer' ? { type: 'session-offer-ready', sdp: t.sdp, nonce: newId() } : { type: 'session-answer-ready', sdp: t.sdp, nonce: newId() });
  }
}

/** The call log line of one restart (store/calllog.ts): outcome `restarted` or `restart-failed`, what happened in `detail`. */
export function restartLogEntry(record: RestartRecord, call: { at: string; direction: 'in' | 'out'; peer: string; callId: string }): CallLogEntry {
  const cause = record.cause === 'address-changed' ? 'address changed' : record.cause === 'peer-restarted' ? "the peer's address changed" : 'connection lost';
  const how = record.via ? `; new description by ${record.via === 'mail' ? 'mail' : 'control channel'}` : '';
  const result = record.outcome === 'reconnected' ? `reconnected in ${((record.ms ?? 0) / 1000).toFixed(1)} s` : `failed: ${record.detail ?? 'unknown'}`;
  return { ...call, outcome: record.outcome === 'reconnected' ? 'restarted' : 'restart-failed', detail: `restart ${record.generation}: ${cause}${how}; ${result}` };
}

/**
 * Whether the call's control channel may still carry an update after this
 * machine's addresses changed: not when its path left from a host address
 * this machine no longer has (the update would only wait out the mail
 * fallback). `pairLocal` is the selected pair's local end as the session
 * describes it ("host 198.18.0.11:48532/udp"); a reflexive or relayed local
 * end says nothing of this machine's own addresses, so it counts as usable.
 */
export function controlPathUsable(controlOpen: boolean, pairLocal: string | undefined, addresses: readonly string[]): boolean {
  if (!controlOpen) return false;
  const host = /^host \[?([0-9A-Fa-f:.]+?)\]?:\d+\//.exec(pairLocal ?? '');
  return !host || addresses.includes(host[1]!);
}
