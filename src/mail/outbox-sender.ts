/**
 * Drains the outbox: sends every queued mail whose time has come, retries
 * transient failures with exponential backoff and jitter, and keeps mail
 * refused permanently (5xx) as `failed` for the user to see. Each mail is
 * claimed in the outbox before it is sent, so two processes draining one
 * outbox never send the same mail.
 */
import type { Transporter } from 'nodemailer';
import { isPeerdialError } from '../errors.js';
import type { Outbox, OutboxEntry } from '../store/outbox.js';
import { Mutex } from '../store/files.js';
import { sendRaw, smtpTransport, type SmtpTarget } from './smtp.js';

export interface OutboxEvents {
  onSent?: (e: OutboxEntry) => void;
  onRetry?: (e: OutboxEntry, err: Error, delayMs: number) => void;
  onFailed?: (e: OutboxEntry, err: Error) => void;
}

export function backoffMs(attempts: number, random: () => number = Math.random): number {
  const base = Math.min(300_000, 2_000 * 2 ** Math.max(0, attempts - 1));
  return Math.round(base * (0.75 + random() * 0.5));
}

export interface DrainResult {
  sent: number;
  deferred: number;
  failed: number;
  /** Earliest time a deferred mail is due again. */
  nextDue?: Date;
  /** Entries another process was sending at the time (left to it). */
  elsewhere?: number;
}

export class OutboxSender {
  private transport?: Transporter;
  /** The OAuth2 token the open transport logged in with: a new token means a new transport. */
  private transportToken?: string;
  private readonly passes = new Mutex();

  constructor(
    private readonly outbox: Outbox,
    private readonly target: () => Promise<SmtpTarget>,
    private readonly events: OutboxEvents = {},
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * One pass over the queue. Never throws for a single mail's failure.
   * Passes of one sender run one after the other; an entry that another
   * process is sending right now is left to it (counted in `elsewhere`).
   */
  drain(opts: { force?: boolean } = {}): Promise<DrainResult> {
    return this.passes.run(() => this.pass(opts));
  }

  private async pass(opts: { force?: boolean }): Promise<DrainResult> {
    const result: DrainResult = { sent: 0, deferred: 0, failed: 0 };
    const defer = (due: Date) => {
      result.deferred++;
      if (!result.nextDue || due < result.nextDue) result.nextDue = due;
    };
    for (const listed of await this.outbox.list()) {
      if (listed.state !== 'queued') continue;
      if (!opts.force && new Date(listed.nextAttemptAt) > this.now()) {
        defer(new Date(listed.nextAttemptAt));
        continue;
      }
      const claim = await this.outbox.claim(listed.id);
      if (!claim) {
        result.elsewhere = (result.elsewhere ?? 0) + 1;
        continue;
      }
      try {
        // as it is now, under the claim: another process may have tried it meanwhile
        const entry = claim.entry;
        if (entry.state !== 'queued') continue;
        const due = new Date(entry.nextAttemptAt);
        if (!opts.force && due > this.now()) {
          defer(due);
          continue;
        }
        await this.sendOne(entry, result, defer);
      } finally {
        await claim.release();
      }
    }
    return result;
  }

  private async sendOne(entry: OutboxEntry, result: DrainResult, defer: (due: Date) => void): Promise<void> {
    try {
      const t = await this.target();
      if (this.transport && t.accessToken !== this.transportToken) this.close();
      this.transport ??= await smtpTransport(t);
      this.transportToken = t.accessToken;
      await sendRaw(this.transport, t, { from: entry.from, to: entry.to }, await this.outbox.raw(entry.id));
      await this.outbox.remove(entry.id);
      result.sent++;
      this.events.onSent?.(entry);
    } catch (err) {
      const e = err as Error;
      entry.attempts++;
      entry.lastError = e.message;
      this.transport?.close();
      this.transport = undefined;
      if (isPeerdialError(err, 'SMTP_PERMANENT')) {
        entry.state = 'failed';
        await this.outbox.save(entry);
        result.failed++;
        this.events.onFailed?.(entry, e);
      } else {
        const delay = backoffMs(entry.attempts);
        const due2 = new Date(this.now().getTime() + delay);
        entry.nextAttemptAt = due2.toISOString();
        await this.outbox.save(entry);
        defer(due2);
        this.events.onRetry?.(entry, e, delay);
      }
    }
  }

  close(): void {
    this.transport?.close();
    this.transport = undefined;
  }
}
