/**
 * The restart machine: one per connected call. When an address of either
 * side changes, the call gets a new transport (libjuice has no ICE restart
 * in place: a new ICE/DTLS transport with fresh credentials, candidates
 * and certificate check) instead of ending.
 *
 *   steady -> offering -> offer-sent -> connecting -> steady   (we restart)
 *   steady -> answering -> connecting -> steady                 (the peer restarts)
 *   steady -> waiting -> offering ...    (no address at all for a while: the
 *                                         restart waits for the next one)
 *   steady -> waiting -> answering ...   (the transport died, no change of ours:
 *                                         the peer's update is awaited; the
 *                                         call's caller offers if none comes)
 *   any -> ended  (no new transport before the restart time was up, or the
 *                  restarts of one call ran out)
 *
 * How the description travels: over the call's live control channel when
 * it is open; if the answer does not come back on it within the fallback
 * time (the old path may be dead without the channel knowing yet), the
 * same update goes by mail too. The same update both ways carries one
 * nonce, so the peer takes whichever comes first and refuses the other
 * (wire/update.ts acceptUpdate, which the runtime applies before feeding
 * peer-offer / peer-answer here). An answer goes back the way its offer
 * came.
 *
 * Both sides restarting at once (both addresses changed): two offers of
 * the same generation cross; the call's caller keeps its own, the callee
 * drops its own and answers.
 *
 * What the user sees (user outputs):
 *   "address changed, reconnecting..."
 *   "connection lost, reconnecting..."      (the peer's address changed)
 *   "reconnected via mail in 4.2 s"         (or "via the control channel")
 *   "could not reconnect: <why>"            (the call then ends)
 *
 * Inputs are named after who sends them (address = the address watcher,
 * session, peer, clock); outputs after who carries them out. Events carry
 * `at` (ms, the runtime's clock): the machine keeps no clock of its own.
 * The transition table is the last thing in this file.
 */
import { Machine, type Table } from './machine.js';
import { MAX_RESTART_GENERATION, type UpdateContext, type UpdateVia } from '../wire/update.js';

export type RestartState = 'steady' | 'waiting' | 'offering' | 'offer-sent' | 'answering' | 'connecting' | 'ended';

export type RestartEvent =
  | { type: 'address-changed'; at: number; detail?: string }
  /** This machine has no usable address at the moment (between a lease lost and the next): nothing can be offered until one comes. */
  | { type: 'address-gone'; at: number }
  /** The call's transport closed or failed. */
  | { type: 'session-lost'; at: number; reason: string }
  /** Our new transport's offer is gathered. */
  | { type: 'session-offer-ready'; sdp: string; nonce: string }
  /** Our new transport's answer to the peer's offer is made. */
  | { type: 'session-answer-ready'; sdp: string; nonce: string }
  | { type: 'session-connected'; at: number; pair?: string }
  | { type: 'session-failed'; reason: string }
  /** The peer's update, already taken by acceptUpdate. */
  | { type: 'peer-offer'; at: number; generation: number; sdp: string; via: UpdateVia }
  | { type: 'peer-answer'; generation: number; sdp: string; via: UpdateVia }
  /**
   * The offer we answered came again the other way (acceptUpdate: replayed):
   * our answer may have been lost with the old path; it goes again that way.
   */
  | { type: 'peer-offer-again'; generation: number; via: UpdateVia }
  /** The control channel could not carry an update. */
  | { type: 'control-failed' }
  | { type: 'clock-mail-fallback' }
  /** Waiting for the peer's update after a lost transport: the caller offers now. */
  | { type: 'clock-grace' }
  | { type: 'clock-restart-timeout' };

export type RestartOutput =
  /** Start a new transport and gather its offer (-> session-offer-ready). */
  | { to: 'session'; do: 'make-offer'; generation: number }
  /** Start a new transport answering the peer's offer (-> session-answer-ready). */
  | { to: 'session'; do: 'make-answer'; generation: number; sdp: string }
  | { to: 'session'; do: 'apply-answer'; sdp: string }
  /** Drop the new transport being made (the other side's restart won). */
  | { to: 'session'; do: 'drop-new' }
  | { to: 'peer'; send: 'offer' | 'answer'; generation: number; sdp: string; nonce: string; via: UpdateVia }
  | { to: 'clock'; start: 'mail-fallback' | 'grace' | 'restart' }
  | { to: 'clock'; stop: 'mail-fallback' | 'grace' | 'all' }
  /** The new transport is the call's now: carriers move over, the old one is closed. */
  | { to: 'call'; do: 'switch' }
  | { to: 'call'; do: 'end'; reason: string }
  | { to: 'log'; restart: RestartRecord }
  | { to: 'user'; say: string };

/** What the call log records of one restart. */
export interface RestartRecord {
  generation: number;
  /** What set it off. */
  cause: 'address-changed' | 'peer-restarted' | 'connection-lost';
  outcome: 'reconnected' | 'failed';
  /** How the description that got the answer travelled. */
  via?: UpdateVia;
  /** From the change (or loss) to the new transport connected. */
  ms?: number;
  detail?: string;
}

export interface RestartOptions {
  /** This side placed the call (it wins when both restart at once, and offers after a silent loss). */
  caller: boolean;
  callId: string;
  peer: string;
  /** Whether the control channel is open now (the runtime says; the machine only chooses). */
  controlOpen: () => boolean;
}

export function viaText(via: UpdateVia): string {
  return via === 'mail' ? 'mail' : 'the control channel';
}

/** One call's restarts: the machine and what it remembers between events. */
export class Restart {
  readonly m: Machine<RestartState, RestartEvent, RestartOutput>;
  /** The highest generation made or taken. */
  generation = 0;
  /** The generation of our offer that awaits its answer. */
  awaiting: number | undefined;
  /** Nonces of updates taken (the runtime adds to it when it takes one). */
  readonly seen = new Set<string>();
  /** When the present restart began, and why. */
  private since = 0;
  private cause: RestartRecord['cause'] = 'address-changed';
  /** Our pending offer, to send again by mail if the control channel does not bring its answer. */
  private pending: { sdp: string; nonce: string } | undefined;
  /** Our answer to the present restart, to send again the way its offer came again. */
  private answer: { sdp: string; nonce: string } | undefined;
  /** How the update that completed the exchange travelled. */
  private via: UpdateVia = 'control';

  constructor(readonly o: RestartOptions) {
    this.m = new Machine<RestartState, RestartEvent, RestartOutput>('steady', restartTable(this), ['ended']);
  }

  handle(e: RestartEvent): RestartOutput[] {
    return this.m.handle(e);
  }

  /** What acceptUpdate needs to know of this call. */
  context(): UpdateContext {
    return { callId: this.o.callId, peer: this.o.peer, generation: this.generation, ...(this.awaiting !== undefined ? { awaitingAnswer: this.awaiting } : {}), seen: this.seen };
  }

  // ---- the steps the table takes (each returns the outputs of one transition)

  begin(at: number, cause: RestartRecord['cause'], say: string): RestartOutput[] {
    this.since = at;
    this.cause = cause;
    return [{ to: 'user', say }, { to: 'clock', start: 'restart' }];
  }

  /** This machine has no usable address now: nothing of ours can be offered. */
  addressless = false;

  /** What set off the present restart, learned after it began. */
  because(cause: RestartRecord['cause']): void {
    this.cause = cause;
  }

  /** Our restart: a new generation and a new transport. */
  offer(): RestartOutput[] {
    this.generation += 1;
    this.awaiting = this.generation;
    return [{ to: 'session', do: 'make-offer', generation: this.generation }];
  }

  sendOffer(sdp: string, nonce: string): RestartOutput[] {
    this.pending = { sdp, nonce };
    const byControl = this.o.controlOpen();
    this.via = byControl ? 'control' : 'mail';
    const out: RestartOutput[] = [{ to: 'peer', send: 'offer', generation: this.generation, sdp, nonce, via: this.via }];
    if (byControl) out.push({ to: 'clock', start: 'mail-fallback' });
    return out;
  }

  /** The control channel did not bring the answer: the same offer (same nonce) goes by mail. */
  offerByMail(): RestartOutput[] {
    if (!this.pending || this.via === 'mail') return [];
    this.via = 'mail';
    return [{ to: 'peer', send: 'offer', generation: this.generation, sdp: this.pending.sdp, nonce: this.pending.nonce, via: 'mail' }];
  }

  takeOffer(e: { generation: number; sdp: string; via: UpdateVia }): RestartOutput[] {
    this.generation = e.generation;
    this.answer = undefined;
    this.awaiting = undefined;
    this.pending = undefined;
    this.via = e.via;
    return [{ to: 'session', do: 'make-answer', generation: e.generation, sdp: e.sdp }];
  }

  sendAnswer(sdp: string, nonce: string): RestartOutput[] {
    this.answer = { sdp, nonce };
    return [{ to: 'peer', send: 'answer', generation: this.generation, sdp, nonce, via: this.via }];
  }

  answerAgain(e: { generation: number; via: UpdateVia }): RestartOutput[] {
    if (!this.answer || e.generation !== this.generation || e.via === this.via) return [];
    this.via = e.via;
    return [{ to: 'peer', send: 'answer', generation: this.generation, sdp: this.answer.sdp, nonce: this.answer.nonce, via: e.via }];
  }

  takeAnswer(e: { sdp: string; via: UpdateVia }): RestartOutput[] {
    this.awaiting = undefined;
    this.pending = undefined;
    this.via = e.via;
    return [{ to: 'clock', stop: 'mail-fallback' }, { to: 'session', do: 'apply-answer', sdp: e.sdp }];
  }

  /** Two offers of one generation crossed: the caller's wins. */
  crossed(e: { at: number; generation: number; sdp: string; via: UpdateVia }): { to: RestartState; out: RestartOutput[] } {
    if (e.generation === this.awaiting && this.o.caller) return { to: this.m.state, out: [] };
    return { to: 'answering', out: [{ to: 'clock', stop: 'mail-fallback' }, { to: 'session', do: 'drop-new' }, ...this.takeOffer(e)] };
  }

  connected(at: number): RestartOutput[] {
    const ms = Math.max(0, at - this.since);
    const record: RestartRecord = { generation: this.generation, cause: this.cause, outcome: 'reconnected', via: this.via, ms };
    return [
      { to: 'clock', stop: 'all' },
      { to: 'call', do: 'switch' },
      { to: 'log', restart: record },
      { to: 'user', say: `reconnected via ${viaText(this.via)} in ${(ms / 1000).toFixed(1)} s` },
    ];
  }

  fail(detail: string): { to: RestartState; out: RestartOutput[] } {
    const record: RestartRecord = { generation: this.generation, cause: this.cause, outcome: 'failed', detail };
    return {
      to: 'ended',
      out: [{ to: 'clock', stop: 'all' }, { to: 'session', do: 'drop-new' }, { to: 'log', restart: record }, { to: 'user', say: `could not reconnect: ${detail}` }, { to: 'call', do: 'end', reason: detail }],
    };
  }

  exhausted(): boolean {
    return this.generation >= MAX_RESTART_GENERATION;
  }
}

/** Our own restart, from steady or after a loss we were waiting out. */
function restartOurs(r: Restart, at: number, cause: RestartRecord['cause'], say: string, fresh: boolean): { to: RestartState; out: RestartOutput[] } {
  r.addressless = false;
  if (r.exhausted()) return r.fail(`${MAX_RESTART_GENERATION} restarts of one call`);
  return { to: 'offering', out: [...(fresh ? r.begin(at, cause, say) : []), ...r.offer()] };
}

/** The peer's offer taken in a state where we had none of our own. */
function answerTheirs(r: Restart, e: { at: number; generation: number; sdp: string; via: UpdateVia }, fresh: boolean): { to: RestartState; out: RestartOutput[] } {
  return { to: 'answering', out: [...(fresh ? r.begin(e.at, 'peer-restarted', 'the peer\'s address changed, reconnecting...') : []), ...r.takeOffer(e)] };
}

/** No address left while a restart is under way: what was being made is dropped; the next address starts over. */
const noAddress = (r: Restart) => () => {
  r.because('address-changed');
  r.addressless = true;
  return { to: 'waiting' as const, out: [{ to: 'session', do: 'drop-new' } as RestartOutput, { to: 'clock', stop: 'mail-fallback' } as RestartOutput, { to: 'clock', stop: 'grace' } as RestartOutput] };
};

/** A newer address change while a restart is under way: start over with a fresh generation. */
const againOnChange = (r: Restart) => (e: { at: number }) => ({ to: 'offering' as const, out: [{ to: 'session', do: 'drop-new' } as RestartOutput, { to: 'clock', stop: 'mail-fallback' } as RestartOutput, ...restartOurs(r, e.at, 'address-changed', '', false).out] });

function restartTable(r: Restart): Table<RestartState, RestartEvent, RestartOutput> {
  return {
    steady: {
      'address-changed': (e) => restartOurs(r, e.at, 'address-changed', 'address changed, reconnecting...', true),
      'session-lost': (e) => ({ to: 'waiting', out: [...r.begin(e.at, 'connection-lost', 'connection lost, reconnecting...'), { to: 'clock', start: 'grace' }] }),
      'address-gone': (e) => ((r.addressless = true), { to: 'waiting', out: r.begin(e.at, 'address-changed', 'address changed, reconnecting...') }),
      'peer-offer': (e) => answerTheirs(r, e, true),
    },
    waiting: {
      // the loss was this side's address changing: the restart is ours, and its record says why
      'address-changed': (e) => (r.because('address-changed'), restartOurs(r, e.at, 'address-changed', '', false)),
      'peer-offer': (e) => (r.because('peer-restarted'), answerTheirs(r, e, false)),
      'address-gone': noAddress(r),
      // nobody noticed a change: the caller restarts
      'clock-grace': () => (r.o.caller && !r.addressless ? restartOurs(r, 0, 'connection-lost', '', false) : { to: 'waiting' }),
      'clock-restart-timeout': () => r.fail('no new connection before the restart time was up'),
    },
    offering: {
      'session-offer-ready': (e) => ({ to: 'offer-sent', out: r.sendOffer(e.sdp, e.nonce) }),
      'session-failed': (e) => r.fail(`the new transport could not be made: ${e.reason}`),
      'peer-offer': (e) => r.crossed(e),
      'address-changed': againOnChange(r),
      'address-gone': noAddress(r),
      'clock-restart-timeout': () => r.fail('no new connection before the restart time was up'),
    },
    'offer-sent': {
      'peer-answer': (e) => ({ to: 'connecting', out: r.takeAnswer(e) }),
      'peer-offer': (e) => r.crossed(e),
      'clock-mail-fallback': () => ({ to: 'offer-sent', out: r.offerByMail() }),
      'control-failed': () => ({ to: 'offer-sent', out: [{ to: 'clock', stop: 'mail-fallback' }, ...r.offerByMail()] }),
      'address-changed': againOnChange(r),
      'address-gone': noAddress(r),
      'clock-restart-timeout': () => r.fail('no answer to the new description before the restart time was up'),
    },
    answering: {
      'session-answer-ready': (e) => ({ to: 'connecting', out: r.sendAnswer(e.sdp, e.nonce) }),
      'session-failed': (e) => r.fail(`the new transport could not be made: ${e.reason}`),
      // the peer restarted again before we were through: answer the newer one
      'peer-offer': (e) => ({ to: 'answering', out: [{ to: 'session', do: 'drop-new' }, ...r.takeOffer(e)] }),
      'address-changed': againOnChange(r),
      'address-gone': noAddress(r),
      'clock-restart-timeout': () => r.fail('no new connection before the restart time was up'),
    },
    connecting: {
      'session-connected': (e) => ({ to: 'steady', out: r.connected(e.at) }),
      'peer-offer-again': (e) => ({ to: 'connecting', out: r.answerAgain(e) }),
      'session-failed': (e) => r.fail(`the new transport did not connect: ${e.reason}`),
      'peer-offer': (e) => ({ to: 'answering', out: [{ to: 'session', do: 'drop-new' }, ...r.takeOffer(e)] }),
      'address-changed': againOnChange(r),
      'address-gone': noAddress(r),
      'clock-restart-timeout': () => r.fail('the new transport did not connect before the restart time was up'),
    },
  };
}
