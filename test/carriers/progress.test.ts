import { describe, expect, it } from 'vitest';
import { ProgressMeter, estimateRate } from '../../src/carriers/progress.js';

describe('progress', () => {
  it('rate and ETA from samples', () => {
    expect(estimateRate([], 100)).toEqual({ rate: 0, etaSeconds: undefined });
    expect(estimateRate([{ at: 0, bytes: 0 }], 100)).toEqual({ rate: 0, etaSeconds: undefined });
    expect(estimateRate([{ at: 0, bytes: 0 }, { at: 2000, bytes: 1000 }], 3000)).toEqual({ rate: 500, etaSeconds: 4 });
    expect(estimateRate([{ at: 0, bytes: 0 }, { at: 1000, bytes: 3000 }], 3000)).toEqual({ rate: 3000, etaSeconds: 0 });
    expect(estimateRate([{ at: 0, bytes: 0 }, { at: 1000, bytes: 10 }])).toEqual({ rate: 10, etaSeconds: undefined });
  });

  it('a resumed transfer: the rate counts only bytes moved now, the ETA what is left', () => {
    let now = 0;
    const meter = new ProgressMeter({ now: () => now, total: 10_000 });
    meter.update(6000); // resumed at 6000
    now = 1000;
    expect(meter.update(7000)).toEqual({ bytes: 7000, total: 10_000, rate: 1000, etaSeconds: 3 });
  });

  it('the rate follows the last few seconds only', () => {
    let now = 0;
    const meter = new ProgressMeter({ now: () => now, windowMs: 2000 });
    for (; now <= 10_000; now += 500) meter.update(now * 10); // 10 kB/s
    for (let i = 0; i < 8; i++, now += 500) meter.update(100_000 + (now - 10_000)); // then 1 kB/s
    expect(meter.update(100_000 + (now - 10_000)).rate).toBeCloseTo(1000, 0);
  });

  it('report() throttles, unless forced', () => {
    let now = 0;
    const meter = new ProgressMeter({ now: () => now, intervalMs: 100 });
    expect(meter.report(1)).toBeDefined();
    now = 50;
    expect(meter.report(2)).toBeUndefined();
    expect(meter.report(3, true)).toBeDefined();
    now = 200;
    expect(meter.report(4)).toBeDefined();
  });
});
