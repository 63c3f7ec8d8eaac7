/**
 * How fast the chat by mail may go (agent/mail-chat.ts), as pure state
 * driven by the clock it is given: neither side can make it flood a
 * mailbox or a terminal.
 *
 * - Out: lines typed while a mail may not go yet are gathered into the
 *   next one (a paste of a thousand lines is a handful of mails, each at
 *   most LIMITS.textChars). A burst of OUT_BURST mails goes at once, then
 *   one every OUT_REFILL_MS.
 * - In: a peer's mails are shown while a bucket of IN_BURST lasts, refilled
 *   one every IN_REFILL_MS; beyond that they are counted, not shown (they
 *   are kept in `peerdial messages` all the same), and the user is told
 *   how many once the bucket has room again.
 */
import { LIMITS } from '../wire/limits.js';

export const OUT_BURST = 5;
export const OUT_REFILL_MS = 4_000;
export const IN_BURST = 20;
export const IN_REFILL_MS = 2_000;

/** A token bucket: `capacity` at once, one more every `refillMs`. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly capacity: number,
    private readonly refillMs: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.last = now;
  }

  private refill(now: number): void {
    if (now <= this.last) return;
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.last) / this.refillMs);
    this.last = now;
  }

  /** Takes one token when there is one. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until a token is there (0: now). */
  waitMs(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) * this.refillMs);
  }
}

/** Lines waiting to go by mail, gathered into as few mails as the rate allows. */
export class OutgoingLines {
  private pending: string[] = [];
  private readonly bucket: TokenBucket;

  constructor(
    now: number,
    private readonly maxChars = LIMITS.textChars,
    burst = OUT_BURST,
    refillMs = OUT_REFILL_MS,
  ) {
    this.bucket = new TokenBucket(burst, refillMs, now);
  }

  push(line: string): void {
    this.pending.push(line);
  }

  get waiting(): number {
    return this.pending.length;
  }

  /**
   * The text of the next mail when one may go now (as many waiting lines as
   * fit), else how long to wait before asking again; `{}` when nothing waits.
   */
  next(now: number): { text?: string; waitMs?: number } {
    if (this.pending.length === 0) return {};
    const wait = this.bucket.waitMs(now);
    if (wait > 0) return { waitMs: wait };
    this.bucket.take(now);
    let text = this.pending.shift()!;
    while (this.pending.length > 0 && text.length + 1 + this.pending[0]!.length <= this.maxChars) text += `\n${this.pending.shift()!}`;
    return this.pending.length > 0 ? { text, waitMs: this.bucket.waitMs(now) } : { text };
  }

  /** Every waiting line, as the texts of as few mails as fit, whatever the rate (this side is leaving). */
  drain(): string[] {
    const texts: string[] = [];
    while (this.pending.length > 0) {
      let text = this.pending.shift()!;
      while (this.pending.length > 0 && text.length + 1 + this.pending[0]!.length <= this.maxChars) text += `\n${this.pending.shift()!}`;
      texts.push(text);
    }
    return texts;
  }
}

/** Which of a peer's chat mails are shown, and how many were not. */
export class IncomingGate {
  private readonly bucket: TokenBucket;
  private dropped = 0;

  constructor(now: number, burst = IN_BURST, refillMs = IN_REFILL_MS) {
    this.bucket = new TokenBucket(burst, refillMs, now);
  }

  /**
   * Show this mail? `dropped`: how many were held back before it (say so
   * once, then the count starts again).
   */
  admit(now: number): { show: boolean; dropped: number } {
    if (!this.bucket.take(now)) {
      this.dropped += 1;
      return { show: false, dropped: 0 };
    }
    const dropped = this.dropped;
    this.dropped = 0;
    return { show: true, dropped };
  }
}
