/**
 * One-mail calls as the phone (phone.ts) runs them: the callee announces a
 * standing answer; the caller makes its answer from it for an offer and
 * sends only the offer; the callee honours the standing answer the offer
 * names. Otherwise a call takes two mails (offer, answer).
 */
import { answerFromStanding, answerableByStanding, prepareStanding, type PreparedStanding } from '../session/index.js';
import type { StandingAnswer } from '../wire/standing.js';
import { makeStanding, takeStanding } from './one-mail.js';
import { decide, isTrusted, trustOf } from './policy.js';
import type { IncomingRecord, OutgoingRecord } from './call-record.js';
import type { PhoneParts } from './phone-parts.js';

/**
 * Caller side: the answer made from the callee's standing answer for this
 * offer, when one is held and may serve this call (first offer of the
 * call, a data-channel call); it is used up here. Otherwise undefined (two
 * mails), and a refusal is told as 'standing-refused'.
 */
export async function standingAnswerFor(p: PhoneParts, rec: OutgoingRecord, offer: string): Promise<string | undefined> {
  if (rec.noStanding || rec.attempts > 1 || !answerableByStanding(offer)) return undefined;
  const acc = p.o.account;
  if (!(await acc.standing.peek(rec.peer))) return undefined;
  // the account's clock: the one the offer's times are written with
  const taken = await takeStanding(acc.standing, rec.peer, trustOf(await acc.contacts.byEmail(rec.peer)), acc.clock());
  if (!taken.ok) {
    p.emit({ type: 'standing-refused', callId: rec.callId, direction: 'out', peer: rec.peer, code: taken.error.code, detail: taken.error.message });
    return undefined;
  }
  const answer = answerFromStanding(offer, taken.standing);
  if (answer) rec.standingId = taken.standing.id;
  return answer;
}

/**
 * Callee side: a standing answer for `to`, to go with an announce, when
 * `to` is introduced or verified and its calls are answered automatically;
 * undefined otherwise. Its identity is kept in `p.standing` until an offer
 * names it, it expires, or a newer one replaces it.
 */
export async function issueStanding(p: PhoneParts, to: string, seconds?: number): Promise<StandingAnswer | undefined> {
  const acc = p.o.account;
  const now = p.timers.now();
  p.standing.sweep(now);
  const contact = await acc.contacts.byEmail(to);
  if (!contact || contact.blocked || !isTrusted(contact)) return undefined;
  const decided = decide({
    from: contact.email,
    contact,
    whoMayCall: acc.config.whoMayCall,
    defaultAnswer: acc.config.answer,
    activeCalls: 0,
    singleCall: false,
    expires: new Date(now.getTime() + 60_000).toISOString(),
    now,
    purpose: 'chat',
  });
  if (decided.type !== 'policy-auto-answer') return undefined;
  const prepared = await prepareStanding(p.sessions, p.o.ice);
  const standing = makeStanding(acc.email, contact.email, prepared.identity, now, seconds);
  p.standing.issue(standing, prepared);
  return standing;
}

/** Callee side: the kept identity of the standing answer the offer names, if it is honoured (else two mails). */
export function honourStanding(p: PhoneParts, inc: IncomingRecord): PreparedStanding | undefined {
  const id = inc.offer.standing;
  if (!id) return undefined;
  const r = p.standing.honour(id, inc.peer, inc.trust ?? 'learned', p.timers.now());
  if (r.ok) return r.kept;
  p.emit({ type: 'standing-refused', callId: inc.callId, direction: 'in', peer: inc.peer, code: r.error.code, detail: r.error.message });
  return undefined;
}
