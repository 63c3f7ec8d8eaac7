import { describe, expect, it } from 'vitest';
import { REPLY_CHECKS, replyCheckOffsets } from '../../src/mail/reply-checks.js';

const gaps = (offsets: number[]) => offsets.map((t, i) => t - (i === 0 ? 0 : offsets[i - 1]!));

describe('the checks while a reply is expected', () => {
  it('starts 100 ms after the mail went and backs off by 1.5 up to 1 s apart', () => {
    const o = replyCheckOffsets(60_000);
    expect(o.slice(0, 6)).toEqual([100, 250, 475, 813, 1319, 2078]);
    const g = gaps(o);
    for (let i = 1; i < g.length; i++) expect(g[i]!).toBeGreaterThanOrEqual(g[i - 1]! - 1);
    expect(Math.max(...g)).toBe(1_000);
    // strictly increasing
    for (let i = 1; i < o.length; i++) expect(o[i]!).toBeGreaterThan(o[i - 1]!);
  });

  it('is bounded in count however long the reply may take', () => {
    expect(replyCheckOffsets(60_000)).toHaveLength(REPLY_CHECKS.maxChecks);
    expect(replyCheckOffsets(3_600_000)).toHaveLength(REPLY_CHECKS.maxChecks);
    expect(replyCheckOffsets(3_600_000, { ...REPLY_CHECKS, maxChecks: 5 })).toEqual([100, 250, 475, 813, 1319]);
  });

  it('stops at the deadline', () => {
    expect(replyCheckOffsets(1_000)).toEqual([100, 250, 475, 813]);
    expect(replyCheckOffsets(812)).toEqual([100, 250, 475]);
    expect(replyCheckOffsets(100)).toEqual([]);
    expect(replyCheckOffsets(0)).toEqual([]);
    expect(replyCheckOffsets(-5)).toEqual([]);
    expect(replyCheckOffsets(Number.NaN)).toEqual([]);
    for (const t of replyCheckOffsets(20_000)) expect(t).toBeLessThan(20_000);
  });
});
