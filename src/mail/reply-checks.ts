/**
 * When to look at the mailbox while a reply is expected. Dovecot's IDLE
 * reports the first new mail after a quiet spell ~0.5 s after it was
 * delivered; a side that knows a reply is coming (the caller after its
 * offer) checks at a short interval on top of IDLE, so the reply is seen
 * at delivery time. Pure: no clock, no client; the watcher
 * (src/mail/inbox.ts) runs the schedule.
 */

export interface ReplyCheckPlan {
  /** Delay of the first check after the mail went (ms). */
  firstMs: number;
  /** Each delay is the previous one times this. */
  factor: number;
  /** Longest delay between two checks (ms). */
  maxMs: number;
  /** Hard cap on the checks of one expectation, whatever its deadline. */
  maxChecks: number;
}

/**
 * 100, 150, 225, ... ms apart, at most 1 s apart (a check more than ~1 s
 * after the last one would rarely beat IDLE's own notice), at most 30
 * checks (the first ~26 s of the wait; IDLE alone after that).
 */
export const REPLY_CHECKS: ReplyCheckPlan = { firstMs: 100, factor: 1.5, maxMs: 1_000, maxChecks: 30 };

/**
 * The checks for a reply expected within `forMs` from now: offsets (ms from
 * now, increasing), each before the deadline, at most `plan.maxChecks`.
 */
export function replyCheckOffsets(forMs: number, plan: ReplyCheckPlan = REPLY_CHECKS): number[] {
  const out: number[] = [];
  if (!(forMs > 0) || !(plan.firstMs > 0) || !(plan.factor >= 1) || !(plan.maxMs > 0)) return out;
  let delay = Math.min(plan.firstMs, plan.maxMs);
  let at = delay;
  while (out.length < plan.maxChecks && at < forMs) {
    out.push(Math.round(at));
    delay = Math.min(plan.maxMs, delay * plan.factor);
    at += delay;
  }
  return out;
}
