/**
 * Timers fed from a mail's expiry: Node fires a setTimeout longer than
 * 2^31-1 ms at once; ours wait the whole time.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { clampDelay, realTimers, sleep } from '../../src/util/timers.js';
import { MAX_TIMER_MS } from '../../src/wire/limits.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('timers', () => {
  it('clampDelay keeps delays inside what setTimeout honours', () => {
    expect(MAX_TIMER_MS).toBe(2147483647);
    expect(clampDelay(-5)).toBe(0);
    expect(clampDelay(Number.NaN)).toBe(0);
    expect(clampDelay(1000)).toBe(1000);
    expect(clampDelay(MAX_TIMER_MS + 1)).toBe(MAX_TIMER_MS);
    expect(clampDelay(Number.POSITIVE_INFINITY)).toBe(MAX_TIMER_MS);
  });

  it('an offer that rings for 30 days does not end at once: the timer fires after 30 days, not before', () => {
    const thirtyDays = 30 * 86_400_000;
    let fired = 0;
    realTimers.after(thirtyDays, () => fired++);
    vi.advanceTimersByTime(1000);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(thirtyDays - MAX_TIMER_MS - 1000 - 1);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(1);
    expect(fired).toBe(1);
  });

  it('a long timer can be cancelled in any of its steps', () => {
    let fired = 0;
    const cancel = realTimers.after(MAX_TIMER_MS * 2, () => fired++);
    vi.advanceTimersByTime(MAX_TIMER_MS + 10);
    cancel();
    vi.advanceTimersByTime(MAX_TIMER_MS * 2);
    expect(fired).toBe(0);
  });

  it('sleep past 2^31-1 ms waits, and an abort ends it early', async () => {
    const ac = new AbortController();
    let done = false;
    const p = sleep(MAX_TIMER_MS + 5000, ac.signal).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(done).toBe(false);
    ac.abort();
    await p;
    expect(done).toBe(true);
  });

  it('a negative or NaN delay fires at once, as setTimeout does', () => {
    let fired = 0;
    realTimers.after(-1, () => fired++);
    realTimers.after(Number.NaN, () => fired++);
    vi.advanceTimersByTime(1);
    expect(fired).toBe(2);
  });
});
