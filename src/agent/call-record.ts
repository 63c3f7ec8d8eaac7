/**
 * What the phone (phone.ts) keeps about each call: the record of an
 * outgoing or incoming call around its machine (caller.ts, callee.ts), and
 * the pure readings of it: the mail an output asks for, how long a clock
 * runs, which error a failed outgoing call ends with.
 */
import { PeerdialError, type ErrorCode } from '../errors.js';
import { OFFERS_PER_CALL, freshOfferCures, type CallCertificate, type CallSession, type Connected, type SessionFactory } from '../session/index.js';
import type { MediaSpec } from '../session/types.js';
import type { PeerdialMessage, MessageKind } from '../wire/message.js';
import type { PortMapping } from '../address/portmap.js';
import type { TrustLevel } from '../store/contacts.js';
import { sanitizeText } from '../wire/sanitize.js';
import type { Account } from './account.js';
import type { Machine } from './machine.js';
import { newCaller, type CallerEvent, type CallerOutput, type CallerState } from './caller.js';
import { newCallee, type CalleeEvent, type CalleeOutput, type CalleeState } from './callee.js';
import type { ActiveCall, CallOptions, Direction } from './phone-types.js';
import { addressesFromSdp } from './sdp-addresses.js';

export interface CallRecord {
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
  /** One certificate per call (every offer of it); the peer's signed description names its own. */
  certificate?: CallCertificate;
  peerSdp?: string;
  /** This call's sessions when not the phone's own (a browser tab's end of the call, browser-calls.ts). */
  sessions?: SessionFactory;
  cancelTimers: (() => void)[];
  /** Outputs are carried out one after another, in order. */
  chain: Promise<void>;
  endedResolve: (state: string) => void;
  ended: Promise<string>;
  detail?: string;
  active?: ActiveCall;
  /** The call's restarts after an address change (restart-call.ts, wired by phone-restart.ts), once it is connected. */
  restart?: {
    fromMail(msg: PeerdialMessage): void;
    fromControl(raw: string | Buffer): boolean;
    addressChanged(detail?: string, usable?: boolean): void;
    transportLost(reason: string): void;
    stop(): void;
    /** The restart machine's state: 'steady' when no restart is under way. */
    readonly state: string;
  };
  /** Sessions the call has left for a new transport (a restart): their closing is not the call's. */
  left?: WeakSet<CallSession>;
}

export interface OutgoingRecord extends CallRecord {
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
  /** A one-mail call: the id of the callee's standing answer the offer names. */
  standingId?: string;
  /** The caller asked for two mails whatever is held (CallOptions.standing false). */
  noStanding?: boolean;
  /** A pair of a group call: its offers carry the group (agent/group.ts). */
  group?: CallOptions['group'];
}

export interface IncomingRecord extends CallRecord {
  direction: 'in';
  m: Machine<CalleeState, CalleeEvent, CalleeOutput>;
  offer: PeerdialMessage;
  trust?: TrustLevel;
  /** Answered on a standing answer this agent kept: its certificate files go when the call ends. */
  standingKept?: CallCertificate;
}

export type AnyRecord = OutgoingRecord | IncomingRecord;

/** Said over the control channel to hang up. */
export const CONTROL_BYE = JSON.stringify({ t: 'bye' });

/** The caller's record of a call placed now; `connected` resolves with the call once it is up. */
export function newOutgoingRecord(
  callId: string,
  peer: string,
  opts: CallOptions,
  ringSeconds: number,
): { rec: OutgoingRecord; connected: Promise<ActiveCall> } {
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
    ringSeconds,
    attempts: 0,
    ...(opts.plain ? { plain: true } : {}),
    ...(opts.media ? { media: opts.media } : {}),
    resolve,
    reject,
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    ...(opts.standing === false ? { noStanding: true } : {}),
    ...(opts.group ? { group: opts.group } : {}),
    ...(opts.sessions ? { sessions: opts.sessions } : {}),
  };
  return { rec, connected };
}

/** The callee's record of an offer seen now. */
export function newIncomingRecord(offer: PeerdialMessage, messageId: string, trust: TrustLevel | undefined): IncomingRecord {
  let endedResolve!: (s: string) => void;
  return {
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
    trust,
  };
}

/** The mail an outbox output asks for; an answer is good for `answerTtlMs` (as long as the callee waits for the connection). */
export function outboxMail(rec: AnyRecord, out: Extract<CallerOutput | CalleeOutput, { to: 'outbox' }>, answerTtlMs: number): Parameters<Account['queue']>[0] {
  const kind: MessageKind = out.send === 'busy' ? 'decline' : out.send;
  const text = out.send === 'busy' ? 'busy' : 'text' in out ? out.text : undefined;
  const sdp = 'sdp' in out ? out.sdp : undefined;
  return {
    kind,
    to: rec.peer,
    callId: rec.callId,
    ...(sdp ? { sdp, addresses: addressesFromSdp(sdp) } : {}),
    ...(text ? { text } : {}),
    ...(kind === 'offer' ? { purpose: rec.purpose, ttlSeconds: (rec as OutgoingRecord).ringSeconds } : {}),
    ...(kind === 'offer' && (rec as OutgoingRecord).standingId ? { standingId: (rec as OutgoingRecord).standingId } : {}),
    ...(kind === 'offer' && (rec as OutgoingRecord).group ? { group: (rec as OutgoingRecord).group } : {}),
    // an answer is good for as long as this side waits for the connection
    ...(kind === 'answer' ? { ttlSeconds: Math.ceil(answerTtlMs / 1000) } : {}),
    ...(rec.offerMessageId && kind !== 'offer' ? { inReplyTo: rec.offerMessageId } : {}),
    ...(rec.direction === 'out' && (rec as OutgoingRecord).plain ? { plain: true } : {}),
  };
}

/** How long the ring clock runs: the caller's ring time, or until the callee's offer expires. */
export function ringMs(rec: AnyRecord, now: Date): number {
  return rec.direction === 'out' ? (rec as OutgoingRecord).ringSeconds * 1000 : Math.max(0, Date.parse((rec as IncomingRecord).offer.expires) - now.getTime());
}

/**
 * A connection failure: on the caller, one that a fresh offer cures (the
 * fingerprint race, a failed DTLS handshake; not a timeout, which means
 * there is no path) leads to one more offer for the same call.
 */
export function failureEvent(rec: AnyRecord, err: unknown): { type: 'session-failed' | 'session-retry'; reason: string } {
  const reason = (err as Error).message;
  if (rec.direction === 'out' && rec.m.state === 'connecting' && freshOfferCures(reason) && (rec as OutgoingRecord).attempts < OFFERS_PER_CALL) return { type: 'session-retry', reason };
  return { type: 'session-failed', reason };
}

const ENDING_ERRORS: Record<string, [ErrorCode, string, string]> = {
  declined: ['CALL_DECLINED', 'declined the call', 'Try again later, or send a message.'],
  busy: ['CALL_BUSY', 'is busy in another call', 'Try again in a few minutes.'],
  cancelled: ['CALL_CANCELLED', 'call cancelled', ''],
  'timed-out': ['CALL_TIMEOUT', 'did not answer', 'Their agent may be offline: it sees your offer when it comes back and logs a missed call. Try again later.'],
  failed: ['SESSION_FAILED', 'could not be reached directly', 'Call again so that a fresh offer is sent; if it keeps failing, run peerdial doctor.'],
  closed: ['SESSION_CLOSED', 'hung up before the call was connected', ''],
};

/** What placing an outgoing call that ended before it was connected rejects with. */
export function endingError(rec: OutgoingRecord): PeerdialError {
  const state = rec.m.state;
  const [code, what, hint] = ENDING_ERRORS[state] ?? ['SESSION_FAILED', state, ''];
  const text = code === 'CALL_CANCELLED' ? 'Call cancelled.' : `${rec.peer} ${what}${rec.detail ? ` (${sanitizeText(rec.detail)})` : ''}.`;
  return new PeerdialError(code, text, hint ? { hint } : {});
}
