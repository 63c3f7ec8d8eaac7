/**
 * Mail from strangers, counted instead of logged one by one. The call log
 * holds calls; a rejected mail whose sender is not a contact (or is a
 * blocked one) only moves this tally: how many since when, by reason, and
 * the last one. `peerdial log`, `peerdial inbox` and the agent show it as
 * one line: "12 mails from strangers ignored since 10:02 (last: x@y,
 * bad-signature)". The sender and reason are kept sanitised and short.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { sanitizeText } from '../wire/sanitize.js';
import { Mutex, ensurePrivateDir, readJson } from './files.js';

export interface StrangerTally {
  /** When the first counted mail arrived. */
  since: string;
  count: number;
  byReason: Record<string, number>;
  last: { at: string; from?: string; reason: string };
}

/** Pure: the tally after one more ignored mail. */
export function countStranger(tally: StrangerTally | undefined, at: Date, from: string | undefined, reason: string): StrangerTally {
  const when = at.toISOString();
  const safeReason = sanitizeText(reason, { max: 40 });
  const next: StrangerTally = tally
    ? { ...tally, byReason: { ...tally.byReason } }
    : { since: when, count: 0, byReason: {}, last: { at: when, reason: safeReason } };
  next.count += 1;
  next.byReason[safeReason] = (next.byReason[safeReason] ?? 0) + 1;
  next.last = { at: when, reason: safeReason, ...(from ? { from: sanitizeText(from, { max: 120 }) } : {}) };
  return next;
}

function clock(iso: string, now: Date): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '?';
  const hhmm = iso.slice(11, 16);
  return now.getTime() - d.getTime() < 20 * 3600 * 1000 ? `${hhmm} UTC` : `${iso.slice(0, 10)} ${hhmm} UTC`;
}

/** One line: "12 mails from strangers ignored since 10:02 UTC (last: x@y, bad-signature)". */
export function describeStrangers(t: { count: number; since: string; last: StrangerTally['last'] }, now: Date = new Date(), opts: { since?: boolean } = {}): string {
  const since = opts.since === false ? '' : ` since ${clock(t.since, now)}`;
  return `${t.count} mail${t.count === 1 ? '' : 's'} from strangers ignored${since} (last: ${t.last.from ?? 'no sender'}, ${t.last.reason})`;
}

/** The tally of one account, on disk (strangers.json in its state dir). */
export class StrangerLog {
  private readonly file: string;
  private readonly mutex = new Mutex();

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'strangers.json');
  }

  async read(): Promise<StrangerTally | undefined> {
    const t = await readJson<StrangerTally | null>(this.file, null);
    return t && typeof t.count === 'number' && t.count > 0 ? t : undefined;
  }

  async note(at: Date, from: string | undefined, reason: string): Promise<StrangerTally> {
    return this.mutex.run(async () => {
      const next = countStranger(await this.read(), at, from, reason);
      // Atomic (rename) but not fsynced: a counter may lose its last steps in a crash, and a flood of
      // strangers' mail must not cost a disk flush each.
      await ensurePrivateDir(path.dirname(this.file));
      const tmp = `${this.file}.${randomBytes(6).toString('hex')}.tmp`;
      await fs.writeFile(tmp, JSON.stringify(next) + '\n', { mode: 0o600, flag: 'wx' });
      await fs.rename(tmp, this.file).catch(async (err) => {
        await fs.rm(tmp, { force: true });
        throw err;
      });
      return next;
    });
  }
}

/**
 * Strangers' rejected mail in the agent's log: the first one of a window
 * (15 minutes) gets its own line; the others are counted and summarised
 * in one line when the window ends ("7 mails from strangers ignored since
 * 10:02 UTC (last: x@y, bad-signature)"). `peerdial log` shows the total.
 */
export class StrangerLines {
  private pending: StrangerTally | undefined;
  private windowEnd = 0;

  constructor(readonly windowMs = 15 * 60 * 1000) {}

  /** A stranger's mail: a line to print now, or undefined when it is only counted. */
  note(e: { from?: string; reason: string }, now: Date): string | undefined {
    if (now.getTime() >= this.windowEnd && !this.pending) {
      this.windowEnd = now.getTime() + this.windowMs;
      return `mail from a stranger ignored: ${e.from ? sanitizeText(e.from, { max: 120 }) : 'no sender'} (${sanitizeText(e.reason, { max: 40 })}); more within ${Math.round(this.windowMs / 60000)} min are counted, not listed`;
    }
    this.pending = countStranger(this.pending, now, e.from, e.reason);
    return undefined;
  }

  /** When the summary of what is counted is due (the window's end), or undefined with nothing counted: no timer needed. */
  summaryDue(): Date | undefined {
    return this.pending ? new Date(this.windowEnd) : undefined;
  }

  /** The summary of what was counted since the last line, if anything; opens a new window. */
  flush(now: Date): { line: string; tally: StrangerTally } | undefined {
    const tally = this.pending;
    if (!tally) return undefined;
    this.pending = undefined;
    this.windowEnd = now.getTime() + this.windowMs;
    return { line: describeStrangers(tally, now), tally };
  }
}
