/** The clock the call machines run on; tests pass a fake one. */
export interface Timers {
  now(): Date;
  /**
   * Calls `fn` after `ms`; returns a function that cancels it. A `weak`
   * timer (housekeeping) does not keep the process alive.
   */
  after(ms: number, fn: () => void, opts?: { weak?: boolean }): () => void;
}

export const realTimers: Timers = {
  now: () => new Date(),
  after: (ms, fn, opts) => {
    const t = setTimeout(fn, ms);
    if (opts?.weak) t.unref();
    return () => clearTimeout(t);
  },
};

/** Waits `ms`, or less when `signal` aborts; never rejects. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}
