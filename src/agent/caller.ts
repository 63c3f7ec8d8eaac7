/**
 * The caller's state machine: one outgoing call.
 *
 *   gathering -> offer-queued -> offer-sent -> connecting -> connected -> closed
 *   and the endings: declined, busy, cancelled, timed-out, failed
 *   connecting -> gathering again when the connection failed without
 *   timing out (a native failure a fresh offer may cure), at most
 *   OFFERS_PER_CALL offers in all (session/options.ts says why).
 *   one-mail call (the callee's standing answer, agent/one-mail.ts):
 *   gathering -> connecting-one-mail at once, the offer mailed and the
 *   answer made from the standing one applied together; a mailed answer
 *   (the callee refused the standing one) replaces it (-> connecting), a
 *   decline or busy ends it.
 *
 * Inputs are named after who sends them (session, outbox, peer = the
 * callee's mail or channel, user, clock); outputs after who carries them
 * out. The transition table is the last thing in this file.
 */
import { Machine, type Table } from './machine.js';

export type CallerState =
  | 'gathering'
  | 'offer-queued'
  | 'offer-sent'
  | 'connecting'
  /** A one-mail call: connecting on the answer made from the callee's standing answer; a mailed answer may still replace it. */
  | 'connecting-one-mail'
  | 'connected'
  | 'closed'
  | 'declined'
  | 'busy'
  | 'cancelled'
  | 'timed-out'
  | 'failed';

export type CallerEvent =
  | { type: 'session-gathered'; sdp: string }
  /** Gathered, and the callee's standing answer taken: `answer` is made from it for this offer. */
  | { type: 'session-gathered-standing'; sdp: string; answer: string }
  | { type: 'session-connected' }
  | { type: 'session-failed'; reason: string }
  /** The connection failed in a way a fresh offer cures (the runtime counts attempts). */
  | { type: 'session-retry'; reason: string }
  | { type: 'session-closed'; reason: string }
  | { type: 'outbox-queued' }
  | { type: 'outbox-sent' }
  | { type: 'outbox-failed'; reason: string }
  | { type: 'peer-answer'; sdp: string }
  | { type: 'peer-decline'; text?: string }
  | { type: 'peer-busy' }
  | { type: 'peer-hangup'; how: 'channel' | 'mail' }
  | { type: 'user-cancel' }
  | { type: 'user-hangup' }
  | { type: 'clock-ring-timeout' }
  | { type: 'clock-connect-timeout' };

export type CallerOutput =
  | { to: 'outbox'; send: 'offer'; sdp: string }
  | { to: 'outbox'; send: 'cancel' | 'hangup' }
  | { to: 'session'; do: 'apply-answer'; sdp: string; provisional?: true }
  | { to: 'session'; do: 'say-bye' }
  | { to: 'session'; do: 'close' }
  | { to: 'session'; do: 'new-offer' }
  | { to: 'clock'; start: 'ring' | 'connect' }
  | { to: 'clock'; stop: 'all' }
  | { to: 'log'; outcome: string; detail?: string };

export const CALLER_ENDINGS: readonly CallerState[] = ['closed', 'declined', 'busy', 'cancelled', 'timed-out', 'failed'];

export function newCaller(): Machine<CallerState, CallerEvent, CallerOutput> {
  return new Machine<CallerState, CallerEvent, CallerOutput>('gathering', CALLER_TABLE, CALLER_ENDINGS);
}

const end = (to: CallerState, outcome: string, detail?: string, extra: CallerOutput[] = []) => ({
  to,
  out: [...extra, { to: 'session', do: 'close' } as CallerOutput, { to: 'clock', stop: 'all' } as CallerOutput, { to: 'log', outcome, ...(detail ? { detail } : {}) } as CallerOutput],
});

const cancelByMail = (): CallerOutput[] => [{ to: 'outbox', send: 'cancel' }];

/** While the offer is out: the same reactions whether it was sent yet or only queued. */
const whileRinging = {
  'peer-answer': (e: { sdp: string }) => ({
    to: 'connecting' as const,
    out: [{ to: 'session', do: 'apply-answer', sdp: e.sdp } as CallerOutput, { to: 'clock', start: 'connect' } as CallerOutput],
  }),
  'peer-decline': (e: { text?: string }) => end('declined', 'declined', e.text),
  'peer-busy': () => end('busy', 'busy'),
  'user-cancel': () => end('cancelled', 'cancelled', undefined, cancelByMail()),
  'clock-ring-timeout': () => end('timed-out', 'timed-out', 'no answer before the offer expired', cancelByMail()),
  'session-failed': (e: { reason: string }) => end('failed', 'failed', e.reason, cancelByMail()),
  'outbox-failed': (e: { reason: string }) => end('failed', 'failed', `the offer could not be sent: ${e.reason}`),
};

/** Connecting, on a mailed answer or one made from a standing answer. */
const whileConnecting: NonNullable<Table<CallerState, CallerEvent, CallerOutput>['connecting']> = {
  'session-connected': () => ({ to: 'connected', out: [{ to: 'clock', stop: 'all' }, { to: 'log', outcome: 'connected' }] }),
  'session-failed': (e) => end('failed', 'failed', e.reason, [{ to: 'outbox', send: 'hangup' }]),
  // Same call, a fresh offer: the callee answers it without ringing again.
  'session-retry': (e) => ({
    to: 'gathering',
    out: [{ to: 'session', do: 'close' }, { to: 'clock', stop: 'all' }, { to: 'log', outcome: 'retrying', detail: e.reason }, { to: 'session', do: 'new-offer' }],
  }),
  'clock-connect-timeout': () => end('failed', 'failed', 'no direct path: the connection did not come up', [{ to: 'outbox', send: 'hangup' }]),
  'user-cancel': () => end('cancelled', 'cancelled', undefined, [{ to: 'outbox', send: 'hangup' }]),
  'peer-hangup': () => end('closed', 'hung-up', 'by the callee'),
};

export const CALLER_TABLE: Table<CallerState, CallerEvent, CallerOutput> = {
  gathering: {
    'session-gathered': (e) => ({ to: 'offer-queued', out: [{ to: 'outbox', send: 'offer', sdp: e.sdp }, { to: 'clock', start: 'ring' }] }),
    // one mail: the offer goes, and the answer the caller already holds is applied at once; the ring time bounds the connect
    'session-gathered-standing': (e) => ({
      to: 'connecting-one-mail',
      out: [{ to: 'outbox', send: 'offer', sdp: e.sdp }, { to: 'session', do: 'apply-answer', sdp: e.answer, provisional: true }, { to: 'clock', start: 'ring' }],
    }),
    'session-failed': (e) => end('failed', 'failed', e.reason),
    'user-cancel': () => end('cancelled', 'cancelled'),
  },
  'offer-queued': {
    'outbox-sent': () => ({ to: 'offer-sent' }),
    ...whileRinging,
  },
  'offer-sent': {
    ...whileRinging,
  },
  connecting: {
    ...whileConnecting,
  },
  'connecting-one-mail': {
    ...whileConnecting,
    // one-mail call: the callee refused the standing answer and mailed its own, or declined, or is busy
    'peer-answer': (e) => ({
      to: 'connecting',
      out: [{ to: 'session', do: 'apply-answer', sdp: e.sdp }, { to: 'clock', stop: 'all' }, { to: 'clock', start: 'connect' }],
    }),
    'peer-decline': (e) => end('declined', 'declined', e.text),
    'peer-busy': () => end('busy', 'busy'),
    'clock-ring-timeout': () => end('failed', 'failed', 'no connection before the offer expired', [{ to: 'outbox', send: 'hangup' }]),
  },
  connected: {
    'user-hangup': () => ({ to: 'closed', out: [{ to: 'session', do: 'say-bye' }, { to: 'session', do: 'close' }, { to: 'log', outcome: 'hung-up', detail: 'by the caller' }] }),
    'user-cancel': () => ({ to: 'closed', out: [{ to: 'session', do: 'say-bye' }, { to: 'session', do: 'close' }, { to: 'log', outcome: 'hung-up', detail: 'by the caller' }] }),
    'peer-hangup': () => end('closed', 'hung-up', 'by the callee'),
    // The channel died without a bye: tell the peer by mail, it may not know.
    'session-closed': (e) => end('closed', 'hung-up', `connection lost (${e.reason})`, [{ to: 'outbox', send: 'hangup' }]),
    'session-failed': (e) => end('closed', 'hung-up', `connection lost (${e.reason})`, [{ to: 'outbox', send: 'hangup' }]),
  },
};
