/**
 * A browser tab as one end of a peerdial call (issue 13): the tab's own
 * RTCPeerConnection makes the offer or the answer, and this agent carries it
 * by mail exactly like its own. The call is an ordinary call of the phone
 * (phone.ts): same call ids, policy and trust rules, signed and encrypted
 * mail, call log. Only its session is different: a TabSession
 * (browser-calls-session.ts) stands where a node-datachannel session would be, and
 * hands descriptions to and from the tab.
 *
 * What the tab must do (the page in src/web/ builds it):
 * - open a data channel labelled "control" before it makes an offer (a
 *   peerdial callee waits for the caller's first channel), and, as the
 *   callee, accept the caller's;
 * - wait for ICE gathering to complete and hand over the complete
 *   description (non-trickle); `bundlePolicy: 'max-bundle'` keeps it short;
 * - run where its addresses are real ones, not mDNS names (Chromium:
 *   --disable-features=WebRtcHideLocalIpsWithMdns, or a camera permission);
 * - hang up with hangup(callId) when its connection closes or a `{"t":"bye"}`
 *   comes on the control channel (the peer's hang-up goes there, not to this
 *   agent), and say that same bye on the control channel when it hangs up.
 *
 * The agent does not see the tab's connection: such a call is "connected"
 * in the phone's sense once the peer's answer is handed to the tab (caller)
 * or the tab's answer is queued (callee); its path is logged as unknown.
 */
import { PeerdialError } from '../errors.js';
import { browserDescriptionProblem, fromBrowser, mediaSummary } from '../session/sdp-browser.js';
import type { SessionFactory } from '../session/index.js';
import type { PeerdialMessage } from '../wire/message.js';
import type { BrowserCalls, BrowserOffer } from './browser-calls-types.js';
import { answeringTab, offeringTab } from './browser-calls-session.js';
import type { ActiveCall, CallOptions, PhoneEvent, RingingCall } from './phone-types.js';

export type { BrowserCalls, BrowserOffer } from './browser-calls-types.js';
export { isTabSession } from './browser-calls-session.js';

/** What BrowserCalls uses of the phone: placing a call. */
export interface BrowserCallsPhone {
  call(who: string, opts: CallOptions): Promise<ActiveCall>;
}

/** An incoming call a tab was offered. */
interface Offered {
  offer: PeerdialMessage;
  /** Resolved with the tab's answer (made fit for peerdial), rejected when the tab declines or the call ends. */
  answer: { promise: Promise<string>; resolve(sdp: string): void; reject(err: Error): void };
  answered: boolean;
  ringing?: RingingCall;
  active?: ActiveCall;
}

function pendingAnswer(): Offered['answer'] {
  let resolve!: (sdp: string) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<string>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // a decline before the phone asked for the answer is not an unhandled rejection
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** How long a tab's call id is remembered after the call ended (a late fresh offer for it is refused). */
const REMEMBER_MS = 10 * 60_000;

/** The sessions of a fresh offer for a call a tab answered already: the tab's connection cannot take it. */
const REFUSE_FRESH_OFFER: SessionFactory = {
  createOffer: () => Promise.reject(new PeerdialError('USAGE', 'this call is answered by a tab')),
  acceptOffer: () => Promise.reject(new PeerdialError('SESSION_FAILED', 'a browser tab answered this call already: call again')),
};

function usage(problem: string): PeerdialError {
  return new PeerdialError('USAGE', problem);
}

/** The agent's side of browser calls; `phoneEvent` must see every event of the phone. */
export class AgentBrowserCalls implements BrowserCalls {
  private readonly listeners = new Set<(offer: BrowserOffer) => void>();
  private readonly offered = new Map<string, Offered>();
  /** Ids of incoming calls a tab was offered, also for a while after they ended. */
  private readonly tabCallIds = new Set<string>();
  /** Connected calls the tab placed, by call id. */
  private readonly placed = new Map<string, ActiveCall>();

  constructor(private readonly phone: BrowserCallsPhone) {}

  async call(contact: string, offerSdp: string, opts: { video: boolean; audio: boolean }): Promise<{ callId: string; answerSdp: string }> {
    const problem = browserDescriptionProblem(offerSdp, 'offer');
    if (problem) throw usage(problem);
    const offer = fromBrowser(offerSdp);
    const media = mediaSummary(offer);
    if (opts.video !== media.video || opts.audio !== media.audio) {
      throw usage(`the offer carries ${media.video ? '' : 'no '}video and ${media.audio ? '' : 'no '}audio, not what the call asks for`);
    }
    let answerSdp: string | undefined;
    const sessions = offeringTab(offer, (sdp) => (answerSdp = sdp));
    // a tab that only receives is looking at a camera
    const purpose = (media.video || media.audio) && !media.sends ? 'view' : 'media';
    const active = await this.phone.call(contact, { purpose, sessions, standing: false });
    this.placed.set(active.callId, active);
    void active.ended.then(() => this.placed.delete(active.callId));
    return { callId: active.callId, answerSdp: answerSdp! };
  }

  async answer(callId: string, answerSdp: string): Promise<void> {
    const o = this.offered.get(callId);
    if (!o) throw usage(`no offer ${callId} is waiting for a tab's answer`);
    if (o.answered) throw usage(`the offer ${callId} has been answered already`);
    const problem = browserDescriptionProblem(answerSdp, 'answer');
    if (problem) throw usage(problem);
    o.answered = true;
    o.answer.resolve(fromBrowser(answerSdp));
    // a ringing call is accepted now; an auto-answered one is waiting for this answer already
    o.ringing?.accept();
  }

  async hangup(callId: string): Promise<void> {
    const placed = this.placed.get(callId);
    if (placed) return placed.hangup();
    const o = this.offered.get(callId);
    if (!o) throw usage(`no call ${callId} of a tab`);
    if (o.active) return o.active.hangup();
    if (o.ringing && !o.answered) return o.ringing.decline();
    o.answer.reject(new PeerdialError('CALL_DECLINED', 'the tab declined'));
  }

  onOffer(listener: (offer: BrowserOffer) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * PhoneOptions.sessionsFor: an allowed media call while a tab listens is
   * the tab's to answer; its offer goes to the listeners.
   */
  sessionsFor(offer: PeerdialMessage): SessionFactory | undefined {
    // the caller's fresh offer (after a failed connection) for a call a tab took is not this agent's to answer
    if (this.tabCallIds.has(offer.callId)) return REFUSE_FRESH_OFFER;
    if (offer.purpose !== 'media' || !offer.sdp || this.listeners.size === 0) return undefined;
    const o: Offered = { offer, answer: pendingAnswer(), answered: false };
    this.offered.set(offer.callId, o);
    this.tabCallIds.add(offer.callId);
    const media = mediaSummary(offer.sdp);
    const told: BrowserOffer = { callId: offer.callId, from: offer.from, offerSdp: offer.sdp, video: media.video, audio: media.audio };
    // after the phone has rung or started answering
    setImmediate(() => {
      for (const l of this.listeners) {
        try {
          l(told);
        } catch (err) {
          queueMicrotask(() => {
            throw err;
          });
        }
      }
    });
    return answeringTab(o.answer.promise);
  }

  /** Every event of the phone: ringing, connected and ended calls of the tabs. */
  phoneEvent(e: PhoneEvent): void {
    if (e.type === 'ringing') {
      const o = this.offered.get(e.call.callId);
      if (o) o.ringing = e.call;
    } else if (e.type === 'connected') {
      const o = this.offered.get(e.call.callId);
      if (o && e.call.direction === 'in') o.active = e.call;
    } else if (e.type === 'ended' && e.direction === 'in') {
      const o = this.offered.get(e.callId);
      if (!o) return;
      o.answer.reject(new PeerdialError('CALL_CANCELLED', `the call ended (${e.state})`));
      this.offered.delete(e.callId);
      setTimeout(() => this.tabCallIds.delete(e.callId), REMEMBER_MS).unref();
    }
  }
}
