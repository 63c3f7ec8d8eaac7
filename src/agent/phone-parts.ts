/**
 * What the phone (phone.ts) lends the files that carry out its steps
 * (phone-offer.ts, phone-answer.ts, phone-session.ts, phone-standing.ts):
 * its options and parts, and its ways to feed a call's machine and tell
 * what happens. Types only, so those files need not import phone.ts.
 */
import type { PreparedStanding, SessionFactory } from '../session/index.js';
import type { Timers } from '../util/timers.js';
import type { StandingKeeper } from './one-mail.js';
import type { CallerEvent } from './caller.js';
import type { CalleeEvent } from './callee.js';
import type { AnyRecord } from './call-record.js';
import type { PhoneEvent, PhoneOptions } from './phone-types.js';

export interface PhoneParts {
  readonly o: PhoneOptions;
  readonly timers: Timers;
  readonly sessions: SessionFactory;
  /** The standing answers this phone announced (one-mail calls): what is kept for each. */
  readonly standing: StandingKeeper<PreparedStanding>;
  /** Hands an event to the call's machine and carries out what it says. */
  feed(rec: AnyRecord, e: CallerEvent | CalleeEvent): void;
  /** Tells the phone's listener. */
  emit(e: PhoneEvent): void;
}
