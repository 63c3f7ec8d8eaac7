/**
 * One standing answer's life (wire/standing.ts), the same machine on both
 * sides of a one-mail call: the callee runs one for each standing answer it
 * made and announced, the caller one for each it holds from a contact.
 *
 *   fresh -> used        it served its one call
 *   fresh -> expired     its time ran out first
 *   fresh -> withdrawn   a newer one replaced it, its contact is no longer
 *                        introduced or verified, or the callee can no longer
 *                        keep what it promised (port, certificate)
 *
 * A standing answer serves one call, before it expires, for an introduced
 * or verified contact only; every other use is refused with a stable code
 * (STANDING_ANSWER_USED, _EXPIRED, _UNTRUSTED, _UNKNOWN), and the call goes
 * the two-mail way: the caller mails a plain offer, the callee mails its
 * answer.
 *
 * Inputs are named after who sends them: user (the caller places a call
 * with it), peer (an offer naming it reached the callee), clock, agent.
 * Outputs after who carries them out: phone (use it, or refuse it and call
 * or answer with two mails), keeper (release the kept port and
 * certificate). Pure: times come in the events. The transition table is the
 * last thing in this file.
 */
import { PeerdialError, type ErrorCode } from '../errors.js';
import type { TrustLevel } from '../store/contacts.js';
import { Machine, type Table } from './machine.js';

export type StandingState = 'fresh' | 'used' | 'expired' | 'withdrawn';

export type StandingEvent =
  /** Caller side: alice calls the contact this standing answer came from. */
  | { type: 'user-call'; contact: string; trust: TrustLevel; now: number }
  /** Callee side: an offer naming this standing answer arrived from `from`. */
  | { type: 'peer-offer'; from: string; trust: TrustLevel; now: number }
  | { type: 'clock-expired' }
  | { type: 'agent-withdraw'; reason: string };

export type StandingOutput =
  | { to: 'phone'; use: true }
  | { to: 'phone'; refuse: StandingRefusal }
  | { to: 'keeper'; do: 'release' };

export interface StandingRefusal {
  code: Extract<ErrorCode, `STANDING_ANSWER_${string}`>;
  detail: string;
}

export const STANDING_ENDINGS: readonly StandingState[] = ['used', 'expired', 'withdrawn'];

/** What the machine knows of its standing answer: who the other side is, and until when. */
export interface StandingTerms {
  id: string;
  /** The other side: the caller it was made for (callee side), the callee it came from (caller side). */
  contact: string;
  /** Expiry, ms since the epoch. */
  expires: number;
}

export type StandingMachine = Machine<StandingState, StandingEvent, StandingOutput>;

export function newStanding(terms: StandingTerms, initial: StandingState = 'fresh'): StandingMachine {
  return new Machine<StandingState, StandingEvent, StandingOutput>(initial, standingTable(terms), STANDING_ENDINGS);
}

/** The refusal as the error the phone reports (it then goes on with two mails). */
export function refusalError(r: StandingRefusal): PeerdialError {
  return new PeerdialError(r.code, r.detail, { hint: 'Nothing to do: this call goes with two mails (offer and answer); a fresh standing answer comes with the next announce.' });
}

const refuse = (code: StandingRefusal['code'], detail: string): StandingOutput => ({ to: 'phone', refuse: { code, detail } });
const release: StandingOutput = { to: 'keeper', do: 'release' };
const trusted = (t: TrustLevel) => t === 'introduced' || t === 'verified';

function standingTable(terms: StandingTerms): Table<StandingState, StandingEvent, StandingOutput> {
  const who = (e: { contact: string } | { from: string }) => ('contact' in e ? e.contact : e.from);
  /** A use while fresh: the checks in order (whose, trust, time), then the one use. */
  const use = (e: Extract<StandingEvent, { type: 'user-call' | 'peer-offer' }>) => {
    if (who(e) !== terms.contact) {
      // somebody else names it: refused, and it stays for its own contact
      return { to: 'fresh' as const, out: [refuse('STANDING_ANSWER_UNKNOWN', `standing answer ${terms.id} is not for ${who(e)}`)] };
    }
    if (!trusted(e.trust)) {
      return {
        to: 'withdrawn' as const,
        out: [refuse('STANDING_ANSWER_UNTRUSTED', `${terms.contact}'s key is ${e.trust}: standing answers are only for introduced or verified contacts`), release],
      };
    }
    if (e.now >= terms.expires) {
      return { to: 'expired' as const, out: [refuse('STANDING_ANSWER_EXPIRED', `standing answer ${terms.id} expired at ${new Date(terms.expires).toISOString()}`), release] };
    }
    return { to: 'used' as const, out: [{ to: 'phone', use: true } as StandingOutput] };
  };
  const after = (state: 'used' | 'expired' | 'withdrawn') => {
    const code = state === 'used' ? 'STANDING_ANSWER_USED' : state === 'expired' ? 'STANDING_ANSWER_EXPIRED' : 'STANDING_ANSWER_UNKNOWN';
    const detail =
      state === 'used'
        ? `standing answer ${terms.id} has served its call already`
        : state === 'expired'
          ? `standing answer ${terms.id} expired at ${new Date(terms.expires).toISOString()}`
          : `standing answer ${terms.id} was withdrawn`;
    const again = () => ({ to: state, out: [refuse(code, detail)] });
    return { 'user-call': again, 'peer-offer': again };
  };
  return {
    fresh: {
      'user-call': use,
      'peer-offer': use,
      'clock-expired': () => ({ to: 'expired', out: [release] }),
      'agent-withdraw': () => ({ to: 'withdrawn', out: [release] }),
    },
    used: after('used'),
    expired: after('expired'),
    withdrawn: after('withdrawn'),
  };
}
