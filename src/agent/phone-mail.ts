/**
 * The mail the phone (phone.ts) is handed by the inbox watcher, sorted: a
 * verified message to route to its call, or the event a refused one
 * becomes (pure).
 */
import type { InboxMail } from '../mail/inbox.js';
import type { PeerdialMessage } from '../wire/message.js';
import type { Received } from './account.js';
import type { PhoneEvent } from './phone-types.js';

export type SortedMail = { type: 'verified'; message: PeerdialMessage; messageId: string } | { type: 'event'; event: PhoneEvent } | { type: 'nothing' };

/** `knownCall`: does the phone know a call with this id? */
export function sortMail(mail: InboxMail<Received>, knownCall: (callId: string) => boolean): SortedMail {
  const v = mail.verdict;
  if (v.ok && v.parsed?.ok) return { type: 'verified', message: v.parsed.message, messageId: v.parsed.messageId };
  const parsed = v.parsed && !v.parsed.ok ? v.parsed : undefined;
  const stale = parsed?.message;
  if (stale && stale.kind === 'offer' && parsed?.reason === 'expired' && !knownCall(stale.callId)) {
    // Account.classify has logged the missed call
    return {
      type: 'event',
      event: { type: 'ended', callId: stale.callId, direction: 'in', peer: stale.from, state: 'missed', detail: 'the offer had expired when it arrived', states: ['offer-received', 'missed'] },
    };
  }
  if (v.ok) return { type: 'nothing' };
  const from = parsed?.from;
  // The call log holds calls: a rejected mail is an event (strangers' ones are counted by Account.classify).
  // no parse result: the watcher refused it alone (a Message-ID seen before), nobody we know vouches for it
  return {
    type: 'event',
    event: { type: 'mail-rejected', ...(from ? { from } : {}), reason: v.reason, detail: v.detail, ...((v.stranger || !v.parsed) && v.reason !== 'quarantined' ? { stranger: true } : {}) },
  };
}
