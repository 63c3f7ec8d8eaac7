/**
 * The inbox watcher: one IMAP connection that finds peerdial mail by its
 * outer header alone, looks at its size and outer headers first (a
 * stranger's mail costs a header fetch and nothing more), fetches the body
 * only of mail that passes, hands the raw bytes to a classifier, files
 * verified mail into peerdial's folder and leaves every
 * other mail exactly as it was (no flags, no moves: fetches use
 * BODY.PEEK). Where it stopped is kept in the ledger, so a restart
 * neither reprocesses nor misses mail. One new mail at a time is handled in
 * src/mail/inbox-new-mail.ts; the types are in src/mail/inbox-types.ts.
 *
 * Before a body is classified the ledger marks the mail as being
 * examined; a mail still marked so on the next pass killed the process
 * once: it is quarantined (reported once, never classified again, left in
 * INBOX untouched).
 *
 * While a reply is expected (expectReply: the caller after its offer) the
 * watcher also checks on a schedule (src/mail/reply-checks.ts): it leaves
 * IDLE with a NOOP, which brings the server's EXISTS at once, instead of
 * waiting for IDLE's own notice (~0.5 s late on Dovecot after a quiet
 * spell). With nothing expected it uses IDLE alone.
 *
 * It does not reconnect: when the connection drops, watch() rejects and
 * the owner (src/agent/mailbox.ts) builds a fresh watcher after a backoff.
 */
import { PeerdialError } from '../errors.js';
import { IMAP_SEARCH_QUERY } from '../wire/headers.js';
import { handleNewMail } from './inbox-new-mail.js';
import { CHAT_MAIL_SEARCH, handleChatMail } from './inbox-chat-mail.js';
import type { CheckResult, InboxOptions, ReplyCheckCount, Verdict } from './inbox-types.js';
import { REPLY_CHECKS, replyCheckOffsets } from './reply-checks.js';

export type { CheckResult, InboxMail, InboxOptions, ReplyCheckCount, Verdict } from './inbox-types.js';

export class InboxWatcher<V extends Verdict> {
  private readonly mailbox: string;
  private idling = false;
  /** IDLE commands entered so far (tells one IDLE from the next). */
  private idles = 0;
  private dirty = false;
  private wake?: () => void;
  private commands = 0;
  /** Expected replies: id -> deadline (ms since the epoch). */
  private readonly expected = new Map<number, number>();
  private expectIds = 0;
  private checkTimer?: ReturnType<typeof setTimeout>;
  /** The NOOP of a reply check, while it is on the wire. */
  private checkNoop?: Promise<unknown>;
  private seenBy?: 'idle' | 'reply-check';
  private readonly replyCount: ReplyCheckCount = { noops: 0, found: 0 };
  /** While `alsoCheck` is selected (and the watched mailbox selected again), EXISTS is not new mail of the watched one. */
  private switching = false;

  constructor(private readonly o: InboxOptions<V>) {
    this.mailbox = o.mailbox ?? 'INBOX';
  }

  /** IMAP commands this watcher has issued (idle figure for benchmarks). */
  get commandCount(): number {
    return this.commands;
  }

  /** NOOPs sent for expected replies, and how often they noticed new mail before IDLE did. */
  get replyChecks(): ReplyCheckCount {
    return { ...this.replyCount };
  }

  /**
   * A reply is expected until `until`: check the mailbox on a short,
   * backing-off schedule on top of IDLE until then (or until cancelled).
   * Counted: expectations overlap; each new one starts the schedule again
   * (a mail just went), running to the latest deadline. The returned
   * function cancels this one (idempotent); with none left, IDLE alone.
   */
  expectReply(opts: { until: Date }): () => void {
    const id = ++this.expectIds;
    this.expected.set(id, opts.until.getTime());
    this.planChecks();
    return () => {
      if (!this.expected.delete(id)) return;
      if (this.expected.size === 0) this.stopChecks();
    };
  }

  /** Replies expected now (deadline not passed, not cancelled). */
  get expecting(): number {
    const now = Date.now();
    let n = 0;
    for (const until of this.expected.values()) if (until > now) n++;
    return n;
  }

  private planChecks(): void {
    this.stopChecks();
    const start = Date.now();
    const deadline = Math.max(...this.expected.values());
    const offsets = replyCheckOffsets(deadline - start, this.o.replyChecks ?? REPLY_CHECKS);
    let i = 0;
    const next = () => {
      this.checkTimer = undefined;
      if (i >= offsets.length) return;
      const t = setTimeout(() => {
        i++;
        this.replyCheck();
        next();
      }, Math.max(0, start + offsets[i]! - Date.now()));
      t.unref?.();
      this.checkTimer = t;
    };
    next();
  }

  private stopChecks(): void {
    if (this.checkTimer) clearTimeout(this.checkTimer);
    this.checkTimer = undefined;
    for (const [id, until] of this.expected) if (until <= Date.now()) this.expected.delete(id);
  }

  /** One scheduled check: a NOOP ends IDLE and brings any EXISTS now; while a pass runs, another pass follows it. */
  private replyCheck(): void {
    const c = this.o.client;
    if (!c.usable) return;
    this.o.onProgress?.({ type: 'reply-check' });
    if (!this.idling) {
      this.dirty = true;
      return;
    }
    if (this.checkNoop) return;
    this.commands++;
    this.replyCount.noops++;
    const noop: Promise<unknown> = c
      .noop()
      .catch(() => undefined)
      .finally(() => {
        if (this.checkNoop === noop) this.checkNoop = undefined;
      });
    this.checkNoop = noop;
  }

  get supportsIdle(): boolean {
    return this.o.client.capabilities.has('IDLE');
  }

  /** Creates the peerdial folder when missing and opens the watched mailbox. */
  async prepare(): Promise<void> {
    const c = this.o.client;
    this.commands += 2;
    const list = await c.list();
    if (!list.some((m) => m.path === this.o.folder)) {
      this.commands++;
      try {
        await c.mailboxCreate(this.o.folder);
      } catch (err) {
        if (!(err as { serverResponseCode?: string }).serverResponseCode?.includes('ALREADYEXISTS')) throw err;
      }
    }
    await c.mailboxOpen(this.mailbox);
    await this.o.ledger.ready();
  }

  /** One pass: everything new since the last mark. Reported as `checked`, also when nothing was new. */
  async check(): Promise<CheckResult> {
    const before = this.seenBy;
    this.seenBy = undefined;
    const result = await this.pass();
    // an EXISTS that arrives while the pass runs may announce the very mail
    // this pass found: it counts for this pass, not for an empty next one
    const seenBy = before ?? this.seenBy;
    if (seenBy && result.scanned > 0) {
      this.seenBy = undefined;
      result.seenBy = seenBy;
      if (seenBy === 'reply-check') this.replyCount.found++;
    }
    this.o.onProgress?.({ type: 'checked', result });
    return result;
  }

  private async pass(): Promise<CheckResult> {
    const result = await this.passOn(this.mailbox);
    const other = this.o.alsoCheck;
    if (!other || other === this.mailbox) return result;
    const c = this.o.client;
    this.commands++;
    const st = await c.status(other, { uidNext: true, uidValidity: true });
    const mark = await this.o.ledger.mark(other);
    if (mark && st && mark.uidValidity === String(st.uidValidity) && Number(st.uidNext) - 1 <= mark.lastUid) return result;
    this.switching = true;
    try {
      this.commands += 2;
      await c.mailboxOpen(other);
      const more = await this.passOn(other);
      await c.mailboxOpen(this.mailbox);
      for (const k of ['scanned', 'ours', 'filed', 'left'] as const) result[k] += more[k];
      result.ms += more.ms;
    } finally {
      this.switching = false;
    }
    return result;
  }

  private async passOn(box: string): Promise<CheckResult> {
    const started = Date.now();
    const c = this.o.client;
    const mb = c.mailbox;
    if (!mb) throw new PeerdialError('IMAP_FAILED', 'The mailbox is not open.');
    const uidValidity = String(mb.uidValidity);
    const mark = await this.o.ledger.mark(box);
    const lastUid = mark && mark.uidValidity === uidValidity ? mark.lastUid : 0;
    const result: CheckResult = { scanned: 0, ours: 0, filed: 0, left: 0, ms: 0 };
    if (mb.exists === 0) {
      result.ms = Date.now() - started;
      return result;
    }
    // All new UIDs first, then ours among exactly those: a mail arriving in
    // between is seen by the next pass, never skipped.
    this.commands++;
    const all = ((await c.search({ uid: `${lastUid + 1}:*` }, { uid: true })) || []).filter((u) => u > lastUid);
    result.scanned = all.length;
    if (all.length === 0) {
      result.ms = Date.now() - started;
      return result;
    }
    const maxUid = Math.max(...all);
    this.commands++;
    const ours = ((await c.search({ uid: `${lastUid + 1}:${maxUid}`, ...IMAP_SEARCH_QUERY }, { uid: true })) || [])
      .filter((u) => u > lastUid && u <= maxUid)
      .sort((a, b) => a - b);
    result.ours = ours.length;
    for (const uid of ours) {
      const filed = await handleNewMail(this.o, uid, box, () => this.commands++);
      if (filed) result.filed++;
      else result.left++;
      // Mail by mail: after a crash, what was handled is not reported again.
      if (uid < maxUid) await this.o.ledger.setMark(box, { uidValidity, lastUid: uid });
    }
    if (this.o.chatMail && (await this.o.chatMail.active())) {
      // Delta Chat mail among the same new UIDs: read (never moved) only when the owner wants its sender's
      this.commands++;
      const chat = ((await c.search({ uid: `${lastUid + 1}:${maxUid}`, ...CHAT_MAIL_SEARCH }, { uid: true })) || [])
        .filter((u) => u > lastUid && u <= maxUid && !ours.includes(u))
        .sort((a, b) => a - b);
      for (const uid of chat) await handleChatMail(this.o, uid, box, () => this.commands++);
    }
    await this.o.ledger.setMark(box, { uidValidity, lastUid: maxUid });
    result.ms = Date.now() - started;
    return result;
  }

  /**
   * Watches until `signal` aborts (resolves) or the connection fails
   * (rejects with IMAP_FAILED). IDLE when offered, polling otherwise.
   */
  async watch(opts: { signal: AbortSignal }): Promise<void> {
    const c = this.o.client;
    const onExists = () => {
      if (this.switching) return;
      // an EXISTS while a reply check's NOOP is on the wire was brought by it
      this.seenBy ??= this.checkNoop ? 'reply-check' : 'idle';
      this.poke();
    };
    const onClose = () => this.wake?.();
    c.on('exists', onExists);
    c.on('close', onClose);
    const onAbort = () => this.poke();
    opts.signal.addEventListener('abort', onAbort);
    try {
      let quiet = false;
      while (!opts.signal.aborted) {
        if (!c.usable) throw new PeerdialError('IMAP_FAILED', 'The IMAP connection was closed.');
        if (!quiet) {
          this.dirty = false;
          await this.check();
        }
        quiet = false;
        if (this.dirty || opts.signal.aborted) continue;
        if (this.supportsIdle) {
          this.idling = true;
          this.idles++;
          this.o.onProgress?.({ type: 'idle' });
          this.commands++;
          await c.idle();
          this.idling = false;
          const noop = this.checkNoop;
          if (noop) {
            // IDLE ended for a reply check: its NOOP's EXISTS (if any) sets dirty; nothing new, back to IDLE
            await noop;
            quiet = !this.dirty;
          }
        } else {
          const ms = this.o.pollMs ?? 60_000;
          this.o.onProgress?.({ type: 'poll', ms });
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, ms);
            this.wake = () => {
              clearTimeout(t);
              resolve();
            };
          });
          this.wake = undefined;
        }
      }
    } catch (err) {
      if (opts.signal.aborted) return;
      if (err instanceof PeerdialError) throw err;
      throw new PeerdialError('IMAP_FAILED', `IMAP connection lost: ${(err as Error).message}`, { cause: err });
    } finally {
      this.idling = false;
      this.stopChecks();
      c.off('exists', onExists);
      c.off('close', onClose);
      opts.signal.removeEventListener('abort', onAbort);
    }
  }

  /** Something changed (new mail, shutdown): end IDLE or the poll sleep now. */
  poke(): void {
    this.dirty = true;
    if (this.idling && this.o.client.usable) {
      const inFlight = this.checkNoop;
      const idleNoop = () => {
        this.commands++;
        this.o.client.noop().catch(() => undefined);
      };
      if (!inFlight) idleNoop();
      else {
        // a reply check's NOOP is on the wire; should it have run before IDLE began, end IDLE once it is back
        const idle = this.idles;
        void inFlight.then(() => {
          if (this.idling && this.idles === idle && this.o.client.usable) idleNoop();
        });
      }
    }
    this.wake?.();
  }
}
