import { MAX_TIMER_MS } from '../wire/limits.js';

/** The clock the call machines run on; tests pass a fake one. */
export interface Timers {
  now(): Date;
  /**
   * Calls `fn` after `ms`; returns a function that cancels it. A `weak`
   * timer (housekeeping) does not keep the process alive.
   */
  after(ms: number, fn: () => void, opts?: { weak?: boolean }): () => void;
}

/**
 * A delay Node's setTimeout can take: not negative, not NaN, and never past
 * 2^31-1 ms (Node fires those at once, so a mail's far expiry would end a
 * call the moment it starts).
 */
export function clampDelay(ms: number): number {
  if (!(ms > 0)) return 0;
  return Math.min(ms, MAX_TIMER_MS);
}

/**
 * setTimeout for any delay: one longer than 2^31-1 ms is waited in steps,
 * so it fires when due, neither at once nor early.
 */
function longTimeout(ms: number, fn: () => void, weak: boolean): () => void {
  let t: NodeJS.Timeout;
  // NaN or negative: at once, as setTimeout does; Infinity: never.
  const delay = ms > 0 ? ms : 0;
  const due = Date.now() + delay;
  const arm = (left: number): void => {
    t = setTimeout(() => {
      const rest = due - Date.now();
      if (rest > 0) arm(rest);
      else fn();
    }, clampDelay(left));
    if (weak) t.unref();
  };
  arm(delay);
  return () => clearTimeout(t);
}

export const realTimers: Timers = {
  now: () => new Date(),
  after: (ms, fn, opts) => longTimeout(ms, fn, Boolean(opts?.weak)),
};

/** Waits `ms`, or less when `signal` aborts; never rejects. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      cancel();
      signal.removeEventListener('abort', done);
      resolve();
    };
    const cancel = longTimeout(ms, done, false);
    signal.addEventListener('abort', done);
  });
}
