/**
 * The callee's state machine: one incoming offer.
 *
 *   offer-received -> ringing | answering -> answer-queued -> connecting -> connected -> closed
 *   one-mail call (the offer names a standing answer this agent honours,
 *   agent/one-mail.ts): answering -> connecting, no answer is mailed
 *   and the endings: missed, declined, busy, denied, cancelled, failed
 *
 * The policy decision (src/agent/policy.ts) arrives as an event, as does
 * the user's choice while ringing. The transition table is the last thing
 * in this file.
 */
import { Machine, type Table } from './machine.js';
import type { PolicyDecision } from './policy.js';

export type CalleeState =
  | 'offer-received'
  | 'ringing'
  | 'answering'
  | 'answer-queued'
  | 'connecting'
  | 'connected'
  | 'closed'
  | 'missed'
  | 'declined'
  | 'busy'
  | 'denied'
  | 'cancelled'
  | 'failed';

export type CalleeEvent =
  | PolicyDecision
  | { type: 'user-accept' }
  | { type: 'user-decline'; text?: string }
  | { type: 'user-hangup' }
  | { type: 'peer-cancel' }
  | { type: 'peer-hangup'; how: 'channel' | 'mail' }
  | { type: 'session-answered'; sdp: string }
  /** Answered on the identity of a standing answer the caller already holds: nothing to mail. */
  | { type: 'session-answered-standing' }
  | { type: 'session-connected' }
  | { type: 'session-failed'; reason: string }
  | { type: 'session-closed'; reason: string }
  | { type: 'outbox-sent' }
  | { type: 'clock-ring-timeout' }
  | { type: 'clock-connect-timeout' };

export type CalleeOutput =
  | { to: 'session'; do: 'answer' }
  | { to: 'session'; do: 'say-bye' }
  | { to: 'session'; do: 'close' }
  | { to: 'outbox'; send: 'answer'; sdp: string }
  | { to: 'outbox'; send: 'decline' | 'busy' | 'hangup'; text?: string }
  | { to: 'user'; ring: true }
  | { to: 'user'; stopRinging: true }
  | { to: 'clock'; start: 'ring' | 'connect' }
  | { to: 'clock'; stop: 'all' }
  | { to: 'log'; outcome: string; detail?: string };

export const CALLEE_ENDINGS: readonly CalleeState[] = ['closed', 'missed', 'declined', 'busy', 'denied', 'cancelled', 'failed'];

export function newCallee(): Machine<CalleeState, CalleeEvent, CalleeOutput> {
  return new Machine<CalleeState, CalleeEvent, CalleeOutput>('offer-received', CALLEE_TABLE, CALLEE_ENDINGS);
}

const finish = (to: CalleeState, outcome: string, detail?: string, extra: CalleeOutput[] = []) => ({
  to,
  out: [...extra, { to: 'session', do: 'close' } as CalleeOutput, { to: 'clock', stop: 'all' } as CalleeOutput, { to: 'log', outcome, ...(detail ? { detail } : {}) } as CalleeOutput],
});

const answer = () => ({ to: 'answering' as const, out: [{ to: 'session', do: 'answer' } as CalleeOutput] });

/** From the answer being queued until the channel is open. */
const whileConnecting = {
  'session-connected': () => ({ to: 'connected' as const, out: [{ to: 'clock', stop: 'all' } as CalleeOutput, { to: 'log', outcome: 'connected' } as CalleeOutput] }),
  'session-failed': (e: { reason: string }) => finish('failed', 'failed', e.reason),
  'clock-connect-timeout': () => finish('failed', 'failed', 'the caller never connected'),
  'peer-cancel': () => finish('cancelled', 'cancelled'),
  'peer-hangup': () => finish('cancelled', 'cancelled', 'the caller gave up'),
};

export const CALLEE_TABLE: Table<CalleeState, CalleeEvent, CalleeOutput> = {
  'offer-received': {
    'policy-auto-answer': answer,
    'policy-ring': () => ({ to: 'ringing', out: [{ to: 'user', ring: true }, { to: 'clock', start: 'ring' }] }),
    // A denied caller learns nothing: no mail back, no packet to its addresses.
    'policy-deny': (e) => finish('denied', 'rejected', e.reason),
    'policy-busy': () => finish('busy', 'busy', 'already in a call', [{ to: 'outbox', send: 'busy' }]),
    'policy-expired': () => finish('missed', 'missed', 'the offer had expired when it arrived'),
    'policy-refuse': (e) => finish('declined', 'declined', e.text, [{ to: 'outbox', send: 'decline', text: e.text }]),
  },
  ringing: {
    'user-accept': () => ({ to: 'answering', out: [{ to: 'user', stopRinging: true }, { to: 'session', do: 'answer' }] }),
    'user-decline': (e) => finish('declined', 'declined', e.text, [{ to: 'user', stopRinging: true }, { to: 'outbox', send: 'decline', ...(e.text ? { text: e.text } : {}) }]),
    'peer-cancel': () => finish('missed', 'missed', 'the caller hung up while it rang', [{ to: 'user', stopRinging: true }]),
    'clock-ring-timeout': () => finish('missed', 'missed', 'nobody answered', [{ to: 'user', stopRinging: true }]),
  },
  answering: {
    'session-answered': (e) => ({ to: 'answer-queued', out: [{ to: 'outbox', send: 'answer', sdp: e.sdp }, { to: 'clock', start: 'connect' }] }),
    'session-answered-standing': () => ({ to: 'connecting', out: [{ to: 'clock', start: 'connect' }] }),
    'session-failed': (e) => finish('failed', 'failed', e.reason, [{ to: 'outbox', send: 'decline', text: 'the callee could not set up a session' }]),
    'peer-cancel': () => finish('cancelled', 'cancelled'),
  },
  'answer-queued': {
    'outbox-sent': () => ({ to: 'connecting' }),
    ...whileConnecting,
  },
  connecting: {
    ...whileConnecting,
  },
  connected: {
    'user-hangup': () => ({ to: 'closed', out: [{ to: 'session', do: 'say-bye' }, { to: 'session', do: 'close' }, { to: 'log', outcome: 'hung-up', detail: 'by the callee' }] }),
    'peer-hangup': () => finish('closed', 'hung-up', 'by the caller'),
    'session-closed': (e) => finish('closed', 'hung-up', `connection lost (${e.reason})`, [{ to: 'outbox', send: 'hangup' }]),
    'session-failed': (e) => finish('closed', 'hung-up', `connection lost (${e.reason})`, [{ to: 'outbox', send: 'hangup' }]),
  },
};
