/**
 * Strangers fill nothing: their rejected mail is counted, and shown as one
 * line (`peerdial log`, `inbox`, the agent's log), never one line each.
 */
import { promises as fs } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { StrangerLines, StrangerLog, countStranger, describeStrangers } from '../../src/store/strangers.js';
import { tempDir } from '../harness/peers.js';

const T = (min: number): Date => new Date(Date.UTC(2026, 11, 1, 10, 2 + min));

describe('mallory and friends write to hitoshi all day', () => {
  it('the tally counts by reason and keeps the last sender, sanitised', () => {
    let t = countStranger(undefined, T(0), 'a@x.test', 'unknown-sender');
    t = countStranger(t, T(1), undefined, 'malformed');
    t = countStranger(t, T(2), 'mal\x1b[31mlory\u202e@x.test', 'bad-signature');
    expect(t).toMatchObject({ since: T(0).toISOString(), count: 3, byReason: { 'unknown-sender': 1, malformed: 1, 'bad-signature': 1 } });
    expect(t.last.from).toBe('mal\\x1b[31mlory\\u{202e}@x.test');
    expect(describeStrangers(t, T(3))).toBe('3 mails from strangers ignored since 10:02 UTC (last: mal\\x1b[31mlory\\u{202e}@x.test, bad-signature)');
    expect(describeStrangers(countStranger(undefined, T(0), undefined, 'malformed'), T(0), { since: false })).toBe('1 mail from strangers ignored (last: no sender, malformed)');
    // a day later the date is shown too
    expect(describeStrangers(t, new Date(T(0).getTime() + 48 * 3600_000))).toContain('since 2026-12-01 10:02 UTC');
  });

  it('the tally survives restarts in the state dir', async () => {
    const dir = await tempDir('strangers');
    try {
      const log = new StrangerLog(dir);
      expect(await log.read()).toBeUndefined();
      for (let i = 0; i < 12; i++) await log.note(T(i), `s${i}@x.test`, 'unknown-sender');
      const again = await new StrangerLog(dir).read();
      expect(again).toMatchObject({ count: 12, last: { from: 's11@x.test', reason: 'unknown-sender' } });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it("the agent's log: the first of a window gets a line, the rest one summary when the window ends", () => {
    const lines = new StrangerLines(15 * 60_000);
    expect(lines.note({ from: 'a@x.test', reason: 'unknown-sender' }, T(0))).toMatch(/^mail from a stranger ignored: a@x\.test \(unknown-sender\)/);
    for (let i = 1; i <= 40; i++) expect(lines.note({ from: `b${i}@x.test`, reason: 'bad-signature' }, T(i / 10))).toBeUndefined();
    expect(lines.flush(T(15))?.line).toBe('40 mails from strangers ignored since 10:02 UTC (last: b40@x.test, bad-signature)');
    expect(lines.flush(T(15))).toBeUndefined();
    // a quiet window later: the next one gets its own line again
    expect(lines.note({ from: 'c@x.test', reason: 'malformed' }, T(31))).toMatch(/^mail from a stranger ignored: c@x\.test/);
  });

  it('the summary is due at the end of a window that counted mail, and never while nothing is counted (the idle agent keeps no timer for it)', () => {
    const lines = new StrangerLines(15 * 60_000);
    expect(lines.summaryDue()).toBeUndefined();
    lines.note({ from: 'a@x.test', reason: 'unknown-sender' }, T(0));
    // the first one has its own line: nothing to summarise yet
    expect(lines.summaryDue()).toBeUndefined();
    lines.note({ from: 'b@x.test', reason: 'bad-signature' }, T(4));
    expect(lines.summaryDue()).toEqual(T(15));
    expect(lines.flush(T(15))?.tally.count).toBe(1);
    expect(lines.summaryDue()).toBeUndefined();
    // counted in the window the flush opened: due at its end
    lines.note({ from: 'c@x.test', reason: 'malformed' }, T(20));
    expect(lines.summaryDue()).toEqual(T(30));
  });
});
