/**
 * The phone: the one place that builds and wires the call machines
 * (caller.ts, callee.ts) to their edges: the direct session
 * (src/session), the outbox, the verified mail coming in, the clock and
 * the call log. Every outgoing or incoming call is one machine; this file
 * carries out what the machines say and feeds them what happens.
 */
import { PeerdialError, type ErrorCode } from '../errors.js';
import { requireMailAddress } from '../wire/address.js';
import { OFFERS_PER_CALL, Session, type CallSession, type Connected, type SessionFactory } from '../session/index.js';
import type { Channel, CandidatePair, IceConfig, AnswerMedia, MediaSpec } from '../session/types.js';
import type { PeerdialMessage, MessageKind } from '../wire/message.js';
import type { Account, Received } from './account.js';
import type { InboxMail } from '../mail/inbox.js';
import type { Machine } from './machine.js';
import { newCaller, type CallerEvent, type CallerOutput, type CallerState } from './caller.js';
import { newCallee, type CalleeEvent, type CalleeOutput, type CalleeState } from './callee.js';
import { decide, trustOf, type PolicyDecision } from './policy.js';
import type { TrustLevel } from '../store/contacts.js';
import { addressesFromSdp } from './sdp-addresses.js';
import { realTimers, type Timers } from '../util/timers.js';
import { sanitizeText } from '../wire/sanitize.js';
import { addMappedCandidate, freeUdpPort, pinnedIce } from './mapped-ice.js';
import { withRelays, type Relays } from './relays.js';
import { callPath } from '../session/relay.js';
import type { PortMapping } from '../address/portmap.js';

export type Direction = 'out' | 'in';

/** What a call is for; the callee's agent picks its handler by it. */
export type Purpose = 'chat' | 'pipe' | 'file' | 'forward' | 'view' | 'media';

/** A connected call, handed to whoever runs what the session carries. */
export interface ActiveCall {
  callId: string;
  direction: Direction;
  peer: string;
  purpose: string;
  session: CallSession;
  /** The control channel (the first one): hang-up is said here. */
  control: Channel;
  pair: CandidatePair;
  /** From "call placed" (caller) or "offer seen" (callee) to connected. */
  setupMs: number;
  /** States so far, oldest first. */
  states: string[];
  /** Hang up: says bye over the channel and closes. */
  hangup(): void;
  /** Resolves with the final state when the call has ended. */
  ended: Promise<string>;
}

export type PhoneEvent =
  | { type: 'state'; callId: string; direction: Direction; peer: string; state: string }
  | { type: 'ringing'; call: RingingCall }
  | { type: 'connected'; call: ActiveCall }
  | { type: 'ended'; callId: string; direction: Direction; peer: string; state: string; detail?: string; states: string[] }
  /** `stranger`: the sender is not a contact (or is blocked); such mail is counted (Account.strangers), not logged one by one. */
  | { type: 'mail-rejected'; from?: string; reason: string; detail: string; stranger?: boolean }
  | { type: 'message'; message: PeerdialMessage }
  /** The session process of a call crashed (isolated sessions): the call ended, the agent goes on. */
  | { type: 'session-crashed'; callId: string; direction: Direction; peer: string; detail: string }
  | { type: 'error'; error: Error };

/** An incoming call that rings: answer or decline it. */
export interface RingingCall {
  callId: string;
  peer: string;
  purpose: string;
  /** How far the caller's key is trusted; 'learned' means new, taken from a mail: show it. */
  trust: TrustLevel;
  accept(): void;
  decline(text?: string): void;
}

export interface PhoneOptions {
  account: Account;
  ice: IceConfig;
  /** The TURN relays of `[ice] turn`, added to every call's ICE settings (agent/relays.ts). */
  relays?: Relays;
  /** Something was queued in the outbox: send it soon. */
  send: () => void;
  timers?: Timers;
  onEvent?: (e: PhoneEvent) => void;
  /** `peerdial listen`: answer calls from allowed callers whatever the answer mode says. */
  forceAnswer?: boolean;
  /** An allowed offer: somebody else (a `peerdial listen` beside the agent) may take it; true when taken. */
  takeOffer?: (offer: PeerdialMessage, messageId: string) => boolean;
  /** Ask the router to forward each call's UDP port (config `[ice] port_mapping`). */
  portMapping?: 'auto' | 'upnp' | 'natpmp' | 'off';
  /** Which of an offer's audio/video this side sends or receives (a camera node sends). */
  answerMedia?: (offer: PeerdialMessage) => AnswerMedia | undefined;
  /** Refuse an allowed offer before anything is answered (e.g. `view` where there is no camera): the text goes back in a decline. */
  refuseOffer?: (offer: PeerdialMessage) => string | undefined;
  /** A call was placed (before its offer is queued): for subscriptions at a running agent. */
  onCallPlaced?: (callId: string) => void;
  /** Offered a verified message for a call this phone does not know; true when somebody took it. */
  elsewhere?: (msg: PeerdialMessage, messageId: string) => boolean;
  /** Answer every incoming offer "busy" (a `peerdial call` process that is not the agent). */
  refuseIncoming?: boolean;
  /** Longest wait from answer to channel open, on either side (default 30 s after the answer arrives / 3 min for the callee). */
  connectTimeoutMs?: number;
  calleeConnectTimeoutMs?: number;
  /** Where sessions run: `Session` (this process, the default) or `SessionHosts` (a supervised child process). */
  sessions?: SessionFactory;
  /**
   * A reply mail is expected until `until` (the caller's offer has gone):
   * the inbox is checked at a short interval meanwhile. Returns the cancel.
   */
  expectReply?: (opts: { until: Date }) => () => void;
}

export interface CallOptions {
  purpose?: Purpose;
  signal?: AbortSignal;
  onProgress?: (e: { state: string; detail?: string }) => void;
  /** Override the config's ring time (seconds). */
  ringSeconds?: number;
  /** Audio/video sections to offer (`--view` offers to receive a camera's picture and sound). */
  media?: MediaSpec;
  /** The user asked for it (`--plain`): the offer may go in clear text to a contact without a key. */
  plain?: boolean;
}

interface CallRecord {
  /** The router mapping this call's ICE port uses, if any. */
  mapping?: PortMapping;
  callId: string;
  direction: Direction;
  peer: string;
  purpose: string;
  started: number;
  offerMessageId?: string;
  session?: CallSession;
  connected?: Connected;
  cancelTimers: (() => void)[];
  /** Outputs are carried out one after another, in order. */
  chain: Promise<void>;
  endedResolve: (state: string) => void;
  ended: Promise<string>;
  detail?: string;
  active?: ActiveCall;
}

interface OutgoingRecord extends CallRecord {
  direction: 'out';
  m: Machine<CallerState, CallerEvent, CallerOutput>;
  ringSeconds: number;
  /** Offers made for this call (a fresh one after a connection failure a new offer cures). */
  attempts: number;
  media?: MediaSpec;
  resolve: (c: ActiveCall) => void;
  reject: (e: Error) => void;
  onProgress?: CallOptions['onProgress'];
  plain?: boolean;
  /** Ends the expectation of the callee's reply mail (PhoneOptions.expectReply). */
  replyExpected?: () => void;
}

interface IncomingRecord extends CallRecord {
  direction: 'in';
  m: Machine<CalleeState, CalleeEvent, CalleeOutput>;
  offer: PeerdialMessage;
  trust?: TrustLevel;
}

const CONTROL_BYE = JSON.stringify({ t: 'bye' });

const ENDING_ERRORS: Record<string, [ErrorCode, string, string]> = {
  declined: ['CALL_DECLINED', 'declined the call', 'Try again later, or send a message.'],
  busy: ['CALL_BUSY', 'is busy in another call', 'Try again in a few minutes.'],
  cancelled: ['CALL_CANCELLED', 'call cancelled', ''],
  'timed-out': ['CALL_TIMEOUT', 'did not answer', 'Their agent may be offline: it sees your offer when it comes back and logs a missed call. Try again later.'],
  failed: ['SESSION_FAILED', 'could not be reached directly', 'Call again so that a fresh offer is sent; if it keeps failing, run peerdial doctor.'],
  closed: ['SESSION_CLOSED', 'hung up before the call was connected', ''],
};

export class Phone {
  private readonly timers: Timers;
  private readonly calls = new Map<string, OutgoingRecord | IncomingRecord>();
  private readonly byMessageId = new Map<string, string>();

  private readonly sessions: SessionFactory;

  constructor(private readonly o: PhoneOptions) {
    this.timers = o.timers ?? realTimers;
    this.sessions = o.sessions ?? Session;
  }

  /** Calls not yet ended. */
  activeCount(): number {
    let n = 0;
    for (const c of this.calls.values()) if (!c.m.done) n++;
    return n;
  }

  // ------------------------------------------------------------------ outgoing

  /** Places a call; resolves once the direct channel is open. */
  async call(who: string, opts: CallOptions = {}): Promise<ActiveCall> {
    const acc = this.o.account;
    const contact = await acc.contacts.resolve(who);
    const peer = contact?.email ?? (who.includes('@') ? requireMailAddress(who) : (await acc.contacts.require(who)).email);
    if (contact?.blocked) throw new PeerdialError('CONTACT_BLOCKED', `${peer} is blocked.`, { hint: `Unblock with: peerdial contacts unblock ${contact.name}` });
    // the offer carries our addresses and ICE credentials: encrypted, or in clear only when asked
    await acc.requireKeyFor(peer, 'offer', opts.plain);
    const { randomBytes } = await import('node:crypto');
    const callId = randomBytes(12).toString('base64url');
    let resolve!: (c: ActiveCall) => void;
    let reject!: (e: Error) => void;
    const connected = new Promise<ActiveCall>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    let endedResolve!: (s: string) => void;
    const rec: OutgoingRecord = {
      callId,
      direction: 'out',
      peer,
      purpose: opts.purpose ?? 'chat',
      started: Date.now(),
      cancelTimers: [],
      chain: Promise.resolve(),
      ended: new Promise<string>((r) => (endedResolve = r)),
      endedResolve: (s) => endedResolve(s),
      m: newCaller(),
      ringSeconds: opts.ringSeconds ?? acc.config.ringSeconds,
      attempts: 0,
      ...(opts.plain ? { plain: true } : {}),
      ...(opts.media ? { media: opts.media } : {}),
      resolve,
      reject,
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    };
    this.calls.set(callId, rec);
    this.o.onCallPlaced?.(callId);
    this.state(rec);
    const onAbort = () => this.feed(rec, { type: 'user-cancel' });
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    rec.ended.then(() => opts.signal?.removeEventListener('abort', onAbort));
    this.makeOffer(rec);
    return connected;
  }

  /** Gathering: a new session and its complete offer. */
  private makeOffer(rec: OutgoingRecord): void {
    rec.attempts++;
    this.iceFor(rec)
      .then((ice) => this.sessions.createOffer({ ice, ...(rec.media ? { media: rec.media } : {}) }))
      .then(
      ({ session, sdp }) => {
        rec.session = session;
        if (rec.m.done) {
          session.close('call ended');
          return;
        }
        this.watchSession(rec, session);
        this.feed(rec, { type: 'session-gathered', sdp: rec.mapping ? addMappedCandidate(sdp, rec.mapping) : sdp });
      },
      (err) => this.feed(rec, { type: 'session-failed', reason: (err as Error).message }),
    );
  }

  // ------------------------------------------------------------------ incoming mail

  /** A mail was sorted by the inbox watcher: route it to its call. */
  async handleMail(mail: InboxMail<Received>): Promise<void> {
    const v = mail.verdict;
    if (!v.ok || !v.parsed?.ok) {
      const parsed = v.parsed && !v.parsed.ok ? v.parsed : undefined;
      const stale = parsed?.message;
      if (stale && stale.kind === 'offer' && parsed?.reason === 'expired' && !this.calls.has(stale.callId)) {
        // Account.classify has logged the missed call
        this.emit({ type: 'ended', callId: stale.callId, direction: 'in', peer: stale.from, state: 'missed', detail: 'the offer had expired when it arrived', states: ['offer-received', 'missed'] });
        return;
      }
      if (v.ok) return;
      const from = parsed?.from;
      // The call log holds calls: a rejected mail is an event (strangers' ones are counted by Account.classify).
      // no parse result: the watcher refused it alone (a Message-ID seen before), nobody we know vouches for it
      this.emit({ type: 'mail-rejected', ...(from ? { from } : {}), reason: v.reason, detail: v.detail, ...((v.stranger || !v.parsed) && v.reason !== 'quarantined' ? { stranger: true } : {}) });
      return;
    }
    await this.handleVerified(v.parsed.message, v.parsed.messageId);
  }

  /** A verified message, from this process's watcher or from the agent over its control socket. */
  async handleVerified(msg: PeerdialMessage, messageId: string): Promise<void> {
    switch (msg.kind) {
      case 'offer':
        return this.incomingOffer(msg, messageId);
      case 'answer':
      case 'decline':
      case 'hangup':
      case 'cancel': {
        const rec = this.calls.get(msg.callId);
        if (!rec || rec.peer !== msg.from) {
          // A call placed by another process of this account (`peerdial call` beside the agent)?
          if (this.o.elsewhere?.(msg, messageId)) return;
          this.emit({ type: 'mail-rejected', from: msg.from, reason: 'unknown-call', detail: `${msg.kind} for a call that is not ours (${msg.callId})` });
          return;
        }
        if (rec.direction === 'out') {
          if (msg.kind === 'answer' && msg.sdp) this.feed(rec, { type: 'peer-answer', sdp: msg.sdp });
          else if (msg.kind === 'decline') this.feed(rec, msg.text === 'busy' ? { type: 'peer-busy' } : { type: 'peer-decline', ...(msg.text ? { text: msg.text } : {}) });
          else if (msg.kind === 'hangup') this.feed(rec, { type: 'peer-hangup', how: 'mail' });
        } else {
          if (msg.kind === 'cancel') this.feed(rec, { type: 'peer-cancel' });
          else if (msg.kind === 'hangup') this.feed(rec, { type: 'peer-hangup', how: 'mail' });
        }
        return;
      }
      default:
        this.emit({ type: 'message', message: msg });
    }
  }

  /** The outbox sent a mail (for the state sequence offer-queued -> offer-sent). */
  mailSent(messageId: string): void {
    const callId = this.byMessageId.get(messageId);
    const rec = callId ? this.calls.get(callId) : undefined;
    if (rec) this.feed(rec, { type: 'outbox-sent' } as never);
  }

  private async incomingOffer(offer: PeerdialMessage, messageId: string): Promise<void> {
    const earlier = this.calls.get(offer.callId);
    let reoffer = false;
    if (earlier) {
      // The caller's fresh offer for a call this side already accepted: answer it, no ringing again.
      if (earlier.direction !== 'in' || earlier.offer.nonce === offer.nonce || earlier.peer !== offer.from) return;
      if (!earlier.m.history.includes('answering') || earlier.m.state === 'connected' || earlier.m.state === 'closed') return;
      if (!earlier.m.done) this.feed(earlier, { type: 'session-failed', reason: 'the caller sent a fresh offer' });
      reoffer = true;
    }
    const acc = this.o.account;
    const contact = await acc.contacts.byEmail(offer.from);
    let endedResolve!: (s: string) => void;
    const rec: IncomingRecord = {
      callId: offer.callId,
      direction: 'in',
      peer: offer.from,
      purpose: offer.purpose ?? 'chat',
      started: Date.now(),
      offerMessageId: messageId,
      cancelTimers: [],
      chain: Promise.resolve(),
      ended: new Promise<string>((r) => (endedResolve = r)),
      endedResolve: (s) => endedResolve(s),
      m: newCallee(),
      offer,
      trust: trustOf(contact),
    };
    const decided = decide({
      from: offer.from,
      ...(contact ? { contact } : {}),
      whoMayCall: acc.config.whoMayCall,
      defaultAnswer: acc.config.answer,
      activeCalls: this.activeCount(),
      singleCall: acc.config.singleCall,
      expires: offer.expires,
      now: this.timers.now(),
      purpose: offer.purpose ?? 'chat',
      ...(this.o.forceAnswer ? { forceAnswer: true } : {}),
      ...(this.o.refuseIncoming ? { refuseIncoming: true } : {}),
    });
    let decision: PolicyDecision = reoffer && (decided.type === 'policy-ring' || decided.type === 'policy-busy') ? { type: 'policy-auto-answer' } : decided;
    const refusal = decision.type === 'policy-auto-answer' || decision.type === 'policy-ring' ? this.o.refuseOffer?.(offer) : undefined;
    if (refusal) decision = { type: 'policy-refuse', text: refusal };
    if (!reoffer && (decision.type === 'policy-auto-answer' || decision.type === 'policy-ring') && this.o.takeOffer?.(offer, messageId)) return;
    this.calls.set(rec.callId, rec);
    this.state(rec);
    this.feed(rec, decision);
  }

  // ------------------------------------------------------------------ the machines' outputs

  private feed(rec: OutgoingRecord | IncomingRecord, e: CallerEvent | CalleeEvent): void {
    const before = rec.m.state;
    const outs = (rec.m as Machine<string, CallerEvent | CalleeEvent, CallerOutput | CalleeOutput>).handle(e);
    if (rec.m.state !== before) this.state(rec);
    for (const out of outs) {
      rec.chain = rec.chain.then(() => this.carry(rec, out)).catch((err) => this.emit({ type: 'error', error: err as Error }));
    }
    if (rec.m.done && rec.m.state !== before) {
      rec.chain = rec.chain.then(() => this.finish(rec));
    } else if (rec.m.state === 'connected' && before !== 'connected') {
      rec.chain = rec.chain.then(() => this.becameConnected(rec));
    }
  }

  private async carry(rec: OutgoingRecord | IncomingRecord, out: CallerOutput | CalleeOutput): Promise<void> {
    const acc = this.o.account;
    if (out.to === 'log') {
      rec.detail = out.detail;
      await acc.calls.append({
        at: this.timers.now().toISOString(),
        direction: rec.direction,
        peer: rec.peer,
        callId: rec.callId,
        outcome: out.outcome,
        ...(out.detail ? { detail: out.detail } : {}),
        ...(out.outcome === 'connected' && callPath(rec.connected?.pair) ? { path: callPath(rec.connected?.pair)! } : {}),
        ...(out.outcome === 'hung-up' ? { durationMs: Date.now() - rec.started } : {}),
      });
      return;
    }
    if (out.to === 'clock') {
      if ('stop' in out) {
        rec.cancelTimers.splice(0).forEach((c) => c());
        return;
      }
      if (out.start === 'ring') {
        const ms = rec.direction === 'out' ? (rec as OutgoingRecord).ringSeconds * 1000 : Math.max(0, Date.parse((rec as IncomingRecord).offer.expires) - this.timers.now().getTime());
        rec.cancelTimers.push(this.timers.after(ms, () => this.feed(rec, { type: 'clock-ring-timeout' })));
      } else {
        const ms = rec.direction === 'out' ? (this.o.connectTimeoutMs ?? 30_000) : (this.o.calleeConnectTimeoutMs ?? 180_000);
        rec.cancelTimers.push(this.timers.after(ms, () => this.feed(rec, { type: 'clock-connect-timeout' })));
      }
      return;
    }
    if (out.to === 'outbox') {
      const kind: MessageKind = out.send === 'busy' ? 'decline' : out.send;
      const text = out.send === 'busy' ? 'busy' : 'text' in out ? out.text : undefined;
      const sdp = 'sdp' in out ? out.sdp : undefined;
      const q = await acc.queue({
        kind,
        to: rec.peer,
        callId: rec.callId,
        ...(sdp ? { sdp, addresses: addressesFromSdp(sdp) } : {}),
        ...(text ? { text } : {}),
        ...(kind === 'offer' ? { purpose: rec.purpose, ttlSeconds: (rec as OutgoingRecord).ringSeconds } : {}),
        // an answer is good for as long as this side waits for the connection
        ...(kind === 'answer' ? { ttlSeconds: Math.ceil((this.o.calleeConnectTimeoutMs ?? 180_000) / 1000) } : {}),
        ...(rec.offerMessageId && kind !== 'offer' ? { inReplyTo: rec.offerMessageId } : {}),
        ...(rec.direction === 'out' && (rec as OutgoingRecord).plain ? { plain: true } : {}),
      });
      if (kind === 'offer') rec.offerMessageId = q.messageId;
      if (kind === 'offer' || kind === 'answer') this.byMessageId.set(q.messageId, rec.callId);
      this.o.send();
      return;
    }
    if (out.to === 'user') {
      if ('ring' in out) {
        const ringing: RingingCall = {
          callId: rec.callId,
          peer: rec.peer,
          purpose: rec.purpose,
          trust: (rec as IncomingRecord).trust ?? 'learned',
          accept: () => this.feed(rec, { type: 'user-accept' }),
          decline: (text?: string) => this.feed(rec, { type: 'user-decline', ...(text ? { text } : {}) }),
        };
        this.emit({ type: 'ringing', call: ringing });
      }
      return;
    }
    // session
    if (out.do === 'close') {
      rec.session?.close('call ended');
      return;
    }
    if (out.do === 'new-offer') {
      this.makeOffer(rec as OutgoingRecord);
      return;
    }
    if (out.do === 'say-bye') {
      const control = rec.connected?.channel;
      if (control?.isOpen) await control.send(CONTROL_BYE).catch(() => undefined);
      // let the bye leave before the connection is closed
      await new Promise((r) => setTimeout(r, 50));
      return;
    }
    if (out.do === 'apply-answer') {
      const session = rec.session!;
      try {
        session.acceptAnswer(out.sdp);
      } catch (err) {
        this.feed(rec, this.failure(rec, err));
        return;
      }
      this.awaitConnected(rec, session, this.o.connectTimeoutMs ?? 30_000);
      return;
    }
    if (out.do === 'answer') {
      const inc = rec as IncomingRecord;
      if (!inc.offer.sdp) {
        this.feed(rec, { type: 'session-failed', reason: 'the offer carries no SDP' });
        return;
      }
      try {
        const media = this.o.answerMedia?.(inc.offer);
        const ice = await this.iceFor(rec);
        // Keep the answer usable while it travels back by mail (behind a filtering NAT the
        // callee's ICE would give up after ~40 s), media calls too.
        const keepAnswerMs = this.o.calleeConnectTimeoutMs ?? 180_000;
        const answered = await this.sessions.acceptOffer(inc.offer.sdp, { ice, ...(media ? { media } : {}), ...(keepAnswerMs ? { keepAnswerMs } : {}) });
        const session = answered.session;
        const sdp = rec.mapping ? addMappedCandidate(answered.sdp, rec.mapping) : answered.sdp;
        rec.session = session;
        if (rec.m.done) {
          session.close('call ended');
          return;
        }
        this.watchSession(rec, session);
        this.awaitConnected(rec, session, this.o.calleeConnectTimeoutMs ?? 180_000);
        this.feed(rec, { type: 'session-answered', sdp });
      } catch (err) {
        this.feed(rec, { type: 'session-failed', reason: (err as Error).message });
      }
    }
  }

  private awaitConnected(rec: OutgoingRecord | IncomingRecord, session: CallSession, timeoutMs: number): void {
    session.connected({ timeoutMs }).then(
      (c) => {
        rec.connected = c;
        c.channel.onMessage((data) => {
          if (typeof data === 'string' && data === CONTROL_BYE) this.feed(rec, { type: 'peer-hangup', how: 'channel' });
        });
        this.feed(rec, { type: 'session-connected' });
      },
      (err) => this.feed(rec, this.failure(rec, err)),
    );
  }

  /**
   * A connection failure: on the caller, one that a fresh offer cures (the
   * fingerprint race, a failed DTLS handshake; not a timeout, which means
   * there is no path) leads to one more offer for the same call.
   */
  private failure(rec: OutgoingRecord | IncomingRecord, err: unknown): { type: 'session-failed' | 'session-retry'; reason: string } {
    const reason = (err as Error).message;
    const timedOut = /within|timed? ?out|timeout/i.test(reason);
    if (rec.direction === 'out' && rec.m.state === 'connecting' && !timedOut && (rec as OutgoingRecord).attempts < OFFERS_PER_CALL) return { type: 'session-retry', reason };
    return { type: 'session-failed', reason };
  }

  private watchSession(rec: OutgoingRecord | IncomingRecord, session: CallSession): void {
    session.onClose((reason) => {
      if ('crash' in session && session.crash) void this.crashed(rec, reason);
      this.feed(rec, { type: 'session-closed', reason });
    });
  }

  /** The session process of this call crashed: the call log and the agent's log say so. */
  private async crashed(rec: OutgoingRecord | IncomingRecord, reason: string): Promise<void> {
    this.emit({ type: 'session-crashed', callId: rec.callId, direction: rec.direction, peer: rec.peer, detail: reason });
    await this.o.account.calls
      .append({ at: this.timers.now().toISOString(), direction: rec.direction, peer: rec.peer, callId: rec.callId, outcome: 'session-crashed', detail: reason })
      .catch((err) => this.emit({ type: 'error', error: err as Error }));
  }

  private becameConnected(rec: OutgoingRecord | IncomingRecord): void {
    const c = rec.connected!;
    const active: ActiveCall = {
      callId: rec.callId,
      direction: rec.direction,
      peer: rec.peer,
      purpose: rec.purpose,
      session: rec.session!,
      control: c.channel,
      pair: c.pair,
      setupMs: Date.now() - rec.started,
      states: rec.m.history,
      hangup: () => this.feed(rec, { type: 'user-hangup' }),
      ended: rec.ended,
    };
    rec.active = active;
    this.emit({ type: 'connected', call: active });
    if (rec.direction === 'out') (rec as OutgoingRecord).resolve(active);
  }

  /**
   * ICE settings for one attempt: with `port_mapping`, a local UDP port the
   * router forwards (a failure is reported and the call goes on without).
   */
  private async iceFor(rec: OutgoingRecord | IncomingRecord): Promise<IceConfig> {
    const ice = await withRelays(this.o.ice, this.o.relays, (error) => this.emit({ type: 'error', error }));
    const method = this.o.portMapping;
    if (!method || method === 'off') return ice;
    await rec.mapping?.unmap().catch(() => undefined);
    delete rec.mapping;
    try {
      const { mapUdpPort } = await import('../address/portmap.js');
      const internalPort = await freeUdpPort();
      rec.mapping = await mapUdpPort({ internalPort, method, ttlSeconds: 3600, timeoutMs: 3000 });
      return pinnedIce(ice, rec.mapping);
    } catch (err) {
      this.emit({ type: 'error', error: new Error(`no router port mapping for this call (${(err as Error).message}); going on without`) });
      return ice;
    }
  }

  private finish(rec: OutgoingRecord | IncomingRecord): void {
    rec.cancelTimers.splice(0).forEach((c) => c());
    if (rec.direction === 'out') this.replyExpectation(rec as OutgoingRecord);
    void rec.mapping?.unmap().catch(() => undefined);
    const state = rec.m.state;
    if (rec.direction === 'out' && !rec.active) {
      const [code, what, hint] = ENDING_ERRORS[state] ?? ['SESSION_FAILED', state, ''];
      const text = code === 'CALL_CANCELLED' ? 'Call cancelled.' : `${rec.peer} ${what}${rec.detail ? ` (${sanitizeText(rec.detail)})` : ''}.`;
      (rec as OutgoingRecord).reject(new PeerdialError(code, text, hint ? { hint } : {}));
    }
    this.emit({ type: 'ended', callId: rec.callId, direction: rec.direction, peer: rec.peer, state, ...(rec.detail ? { detail: rec.detail } : {}), states: [...rec.m.history] });
    rec.endedResolve(state);
    // keep ended calls for duplicates of their mail for a while, then forget them
    this.timers.after(
      10 * 60_000,
      () => {
        if (this.calls.get(rec.callId) === rec) this.calls.delete(rec.callId);
      },
      { weak: true },
    );
  }

  private state(rec: OutgoingRecord | IncomingRecord): void {
    const state = rec.m.state;
    if (rec.direction === 'out') this.replyExpectation(rec as OutgoingRecord);
    if (rec.direction === 'out') (rec as OutgoingRecord).onProgress?.({ state, ...(rec.detail ? { detail: rec.detail } : {}) });
    this.emit({ type: 'state', callId: rec.callId, direction: rec.direction, peer: rec.peer, state });
  }

  /** The caller's offer has gone: its answer (or decline, busy) is expected until the ring time is over; anything else ends the expectation. */
  private replyExpectation(rec: OutgoingRecord): void {
    if (rec.m.state === 'offer-sent' && !rec.m.done) {
      rec.replyExpected?.();
      rec.replyExpected = this.o.expectReply?.({ until: new Date(Date.now() + rec.ringSeconds * 1000) });
    } else if (rec.replyExpected) {
      rec.replyExpected();
      rec.replyExpected = undefined;
    }
  }

  private emit(e: PhoneEvent): void {
    try {
      this.o.onEvent?.(e);
    } catch (err) {
      // a listener's bug must not break a call
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  /** Ends every call: cancels ringing ones, hangs up connected ones. */
  async shutdown(): Promise<void> {
    for (const rec of this.calls.values()) {
      if (rec.m.done) continue;
      if (rec.m.state === 'connected') this.feed(rec, { type: 'user-hangup' });
      else if (rec.direction === 'out') this.feed(rec, { type: 'user-cancel' });
      else if (rec.m.state === 'ringing') this.feed(rec, { type: 'user-decline', text: 'the callee shut down' });
      else this.feed(rec, { type: 'session-failed', reason: 'the agent shut down' });
    }
    await Promise.all([...this.calls.values()].map((r) => r.chain));
  }
}
