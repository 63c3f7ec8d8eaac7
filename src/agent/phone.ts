/**
 * The phone: the one place that builds and wires the call machines
 * (caller.ts, callee.ts) to their edges: the direct session
 * (src/session), the outbox, the verified mail coming in, the clock and
 * the call log. Every outgoing or incoming call is one machine; this file
 * carries out what the machines say and feeds them what happens. The
 * session steps of a call are in phone-offer.ts (caller) and
 * phone-answer.ts (callee), their watching in phone-session.ts, one-mail
 * calls in phone-standing.ts.
 */
import { PeerdialError } from '../errors.js';
import { requireMailAddress } from '../wire/address.js';
import { Session, callPath, type PreparedStanding, type SessionFactory } from '../session/index.js';
import type { StandingAnswer } from '../wire/standing.js';
import { StandingKeeper } from './one-mail.js';
import type { PeerdialMessage } from '../wire/message.js';
import type { Received } from './account.js';
import type { InboxMail } from '../mail/inbox.js';
import type { Machine } from './machine.js';
import type { CallerEvent, CallerOutput } from './caller.js';
import type { CalleeEvent, CalleeOutput } from './callee.js';
import { decide, trustOf, type PolicyDecision } from './policy.js';
import { realTimers, type Timers } from '../util/timers.js';
import { newId } from '../wire/ids.js';
import { sortMail } from './phone-mail.js';
import type { ActiveCall, CallOptions, PhoneEvent, PhoneOptions, RingingCall } from './phone-types.js';
import type { PhoneParts } from './phone-parts.js';
import { applyAnswer, makeOffer } from './phone-offer.js';
import { answerOffer } from './phone-answer.js';
import { issueStanding } from './phone-standing.js';
import { callCertificate, pemFiles } from './call-certificate-files.js';
import { canRestart, restartOnAddressChange, wireRestart } from './phone-restart.js';
import type { DetectedAddress } from '../address/interfaces.js';
import { CONTROL_BYE, endingError, newIncomingRecord, newOutgoingRecord, outboxMail, ringMs, type AnyRecord, type IncomingRecord, type OutgoingRecord } from './call-record.js';

/** The group a pair of a group call belongs to: what its offer named. */
const groupOf = (rec: AnyRecord) => (rec.direction === 'out' ? rec.group : rec.offer.group);

export class Phone {
  private readonly timers: Timers;
  private readonly calls = new Map<string, AnyRecord>();
  private readonly byMessageId = new Map<string, string>();

  private readonly sessions: SessionFactory;
  /** The standing answers this phone announced (one-mail calls): what is kept for each. */
  readonly standing = new StandingKeeper<PreparedStanding>((p) => p.certificate.remove());

  /** What the step files (phone-offer.ts, phone-answer.ts, phone-session.ts, phone-standing.ts) use of this phone. */
  private readonly parts: PhoneParts;

  constructor(private readonly o: PhoneOptions) {
    this.timers = o.timers ?? realTimers;
    this.sessions = o.sessions ?? Session;
    this.parts = {
      o,
      timers: this.timers,
      sessions: this.sessions,
      standing: this.standing,
      feed: (rec, e) => this.feed(rec, e),
      emit: (e) => this.emit(e),
    };
  }

  /** This machine's usable addresses as the address watcher last told (undefined: not told yet). */
  private addresses: string[] | undefined;

  /** The address watcher saw this machine's addresses change: connected calls restart on a new transport (phone-restart.ts). */
  addressesChanged(now: readonly DetectedAddress[]): void {
    this.addresses = restartOnAddressChange(this.calls.values(), now);
  }

  /** Calls not yet ended; the pairs of group `group` count as one call (`single_call` lets a group's members in). */
  activeCount(group?: string): number {
    let n = 0;
    for (const c of this.calls.values()) if (!c.m.done && (group === undefined || groupOf(c)?.id !== group)) n++;
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
    const callId = newId();
    const { rec, connected } = newOutgoingRecord(callId, peer, opts, opts.ringSeconds ?? acc.config.ringSeconds);
    this.calls.set(callId, rec);
    this.o.onCallPlaced?.(callId);
    this.state(rec);
    const onAbort = () => this.feed(rec, { type: 'user-cancel' });
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    rec.ended.then(() => opts.signal?.removeEventListener('abort', onAbort));
    makeOffer(this.parts, rec);
    return connected;
  }

  /**
   * One-mail call, callee side: a standing answer for `to`, to go with an
   * announce, when `to` is introduced or verified and its calls are
   * answered automatically; undefined otherwise (phone-standing.ts).
   */
  standingFor(to: string, seconds?: number): Promise<StandingAnswer | undefined> {
    return issueStanding(this.parts, to, seconds);
  }

  // ------------------------------------------------------------------ incoming mail

  /** A mail was sorted by the inbox watcher: route it to its call. */
  async handleMail(mail: InboxMail<Received>): Promise<void> {
    const sorted = sortMail(mail, (callId) => this.calls.has(callId));
    if (sorted.type === 'event') this.emit(sorted.event);
    else if (sorted.type === 'verified') await this.handleVerified(sorted.message, sorted.messageId);
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
        // A hang-up for a call that is not connected yet (Delta Chat says call-ended for all three) is the caller's cancel or the callee's decline.
        const ringingOut = ['gathering', 'offer-queued', 'offer-sent', 'connecting-one-mail'].includes(rec.m.state);
        const ringingIn = ['offer-received', 'ringing', 'answering'].includes(rec.m.state);
        if (msg.kind === 'hangup' && rec.direction === 'out' && ringingOut) msg = { ...msg, kind: 'decline' };
        if (msg.kind === 'hangup' && rec.direction === 'in' && ringingIn) msg = { ...msg, kind: 'cancel' };
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
      case 'update': {
        // a new transport for a call in progress (restart-call.ts); never shown as a message
        const rec = this.calls.get(msg.callId);
        if (rec?.restart && rec.peer === msg.from && !rec.m.done) rec.restart.fromMail(msg);
        else if (!this.o.elsewhere?.(msg, messageId)) this.emit({ type: 'mail-rejected', from: msg.from, reason: 'unknown-call', detail: `update for a call that is not in progress here (${msg.callId})` });
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
    const rec = newIncomingRecord(offer, messageId, trustOf(contact));
    const decided = decide({
      from: offer.from,
      ...(contact ? { contact } : {}),
      whoMayCall: acc.config.whoMayCall,
      defaultAnswer: acc.config.answer,
      activeCalls: this.activeCount(offer.group?.id),
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
    if (decision.type === 'policy-auto-answer' || decision.type === 'policy-ring') {
      const sessions = this.o.sessionsFor?.(offer);
      if (sessions) rec.sessions = sessions;
    }
    this.calls.set(rec.callId, rec);
    this.state(rec);
    this.feed(rec, decision);
  }

  // ------------------------------------------------------------------ the machines' outputs

  private feed(rec: AnyRecord, e: CallerEvent | CalleeEvent): void {
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

  private async carry(rec: AnyRecord, out: CallerOutput | CalleeOutput): Promise<void> {
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
        const ms = ringMs(rec, this.timers.now());
        rec.cancelTimers.push(this.timers.after(ms, () => this.feed(rec, { type: 'clock-ring-timeout' })));
      } else {
        const ms = rec.direction === 'out' ? (this.o.connectTimeoutMs ?? 30_000) : (this.o.calleeConnectTimeoutMs ?? 180_000);
        rec.cancelTimers.push(this.timers.after(ms, () => this.feed(rec, { type: 'clock-connect-timeout' })));
      }
      return;
    }
    if (out.to === 'outbox') {
      const mail = outboxMail(rec, out, this.o.calleeConnectTimeoutMs ?? 180_000);
      const kind = mail.kind;
      const q = await acc.queue(mail);
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
      makeOffer(this.parts, rec as OutgoingRecord);
      return;
    }
    if (out.do === 'say-bye') {
      const control = rec.connected?.channel;
      if (control?.isOpen) await control.send(CONTROL_BYE).catch(() => undefined);
      // Delta Chat's call app does not read peerdial's bye: it learns of the hang-up by mail (call-ended)
      if ((await acc.contacts.byEmail(rec.peer))?.deltaChat) {
        await acc.queue({ kind: 'hangup', to: rec.peer, callId: rec.callId, ...(rec.offerMessageId ? { inReplyTo: rec.offerMessageId } : {}) });
        this.o.send();
      }
      // let the bye leave before the connection is closed
      await new Promise((r) => setTimeout(r, 50));
      return;
    }
    if (out.do === 'apply-answer') {
      applyAnswer(this.parts, rec as OutgoingRecord, out.sdp, out.provisional);
      return;
    }
    if (out.do === 'answer') await answerOffer(this.parts, rec as IncomingRecord);
  }

  private becameConnected(rec: AnyRecord): void {
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
      ...(groupOf(rec) ? { group: groupOf(rec)! } : {}),
      ...(callCertificate(rec) && rec.peerSdp ? { tls: { ...pemFiles(callCertificate(rec)!), peerSdp: rec.peerSdp } } : {}),
      ...(canRestart(rec) ? { transport: wireRestart(this.parts, rec, () => this.addresses) } : {}),
    };
    rec.active = active;
    this.emit({ type: 'connected', call: active });
    if (rec.direction === 'out') (rec as OutgoingRecord).resolve(active);
  }

  private finish(rec: AnyRecord): void {
    rec.cancelTimers.splice(0).forEach((c) => c());
    rec.restart?.stop();
    if (rec.direction === 'out') this.replyExpectation(rec as OutgoingRecord);
    void rec.mapping?.unmap().catch(() => undefined);
    rec.certificate?.remove();
    // a standing answer's certificate served this call: its files go with it (once the session has let go)
    if (rec.direction === 'in' && (rec as IncomingRecord).standingKept) {
      const kept = (rec as IncomingRecord).standingKept!;
      this.timers.after(5_000, () => kept.remove(), { weak: true });
    }
    const state = rec.m.state;
    if (rec.direction === 'out' && !rec.active) {
      (rec as OutgoingRecord).reject(endingError(rec as OutgoingRecord));
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

  private state(rec: AnyRecord): void {
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
    this.standing.withdrawAll('the agent shut down');
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
