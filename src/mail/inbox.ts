/**
 * The inbox watcher: one IMAP connection that finds peerdial mail by its
 * outer header alone, looks at its size and outer headers first (a
 * stranger's mail costs a header fetch and nothing more), fetches the body
 * only of mail that passes, hands the raw bytes to a classifier, files
 * verified mail into peerdial's folder and leaves every
 * other mail exactly as it was (no flags, no moves: fetches use
 * BODY.PEEK). Where it stopped is kept in the ledger, so a restart
 * neither reprocesses nor misses mail.
 *
 * Before a body is classified the ledger marks the mail as being
 * examined; a mail still marked so on the next pass killed the process
 * once: it is quarantined (reported once, never classified again, left in
 * INBOX untouched).
 *
 * It does not reconnect: when the connection drops, watch() rejects and
 * the owner (src/agent/mailbox.ts) builds a fresh watcher after a backoff.
 */
import type { ImapFlow } from 'imapflow';
import { PeerdialError } from '../errors.js';
import type { Ledger } from '../store/ledger.js';
import { EXAMINING } from '../store/ledger.js';
import { HEADER_SIGNER, HEADER_VERSION, IMAP_SEARCH_QUERY } from '../wire/headers.js';
import { LIMITS } from '../wire/limits.js';
import { sanitizeText } from '../wire/sanitize.js';
import type { MailOutline } from '../wire/parse.js';

/** What the classifier says about one mail. */
export type Verdict =
  | { ok: true; messageId: string; nonce: string; expires: string; detail?: string }
  | { ok: false; messageId: string; reason: string; detail: string; nonce?: string; expires?: string };

export interface InboxMail<V extends Verdict> {
  uid: number;
  verdict: V;
  /** Where the mail is now: the peerdial folder when verified, else INBOX. */
  folder: string;
}

export interface CheckResult {
  scanned: number;
  ours: number;
  filed: number;
  left: number;
  ms: number;
}

export interface InboxOptions<V extends Verdict> {
  client: ImapFlow;
  ledger: Ledger;
  folder: string;
  mailbox?: string;
  /**
   * First look, from size and outer headers only: a verdict here (a
   * rejection) means the body is never fetched. Undefined: fetch it.
   */
  screen?: (outline: MailOutline, uid: number) => Promise<V | undefined>;
  classify: (raw: Buffer, uid: number) => Promise<V>;
  onMail: (mail: InboxMail<V>) => Promise<void> | void;
  pollMs?: number;
  now?: () => Date;
  onProgress?: (e: { type: 'checked'; result: CheckResult } | { type: 'idle' } | { type: 'poll'; ms: number }) => void;
}

export class InboxWatcher<V extends Verdict> {
  private readonly mailbox: string;
  private idling = false;
  private dirty = false;
  private wake?: () => void;
  private commands = 0;

  constructor(private readonly o: InboxOptions<V>) {
    this.mailbox = o.mailbox ?? 'INBOX';
  }

  /** IMAP commands this watcher has issued (idle figure for benchmarks). */
  get commandCount(): number {
    return this.commands;
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
    const result = await this.pass();
    this.o.onProgress?.({ type: 'checked', result });
    return result;
  }

  private async pass(): Promise<CheckResult> {
    const started = Date.now();
    const c = this.o.client;
    const mb = c.mailbox;
    if (!mb) throw new PeerdialError('IMAP_FAILED', 'The mailbox is not open.');
    const uidValidity = String(mb.uidValidity);
    const mark = await this.o.ledger.mark(this.mailbox);
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
      const filed = await this.handleOne(uid);
      if (filed) result.filed++;
      else result.left++;
      // Mail by mail: after a crash, what was handled is not reported again.
      if (uid < maxUid) await this.o.ledger.setMark(this.mailbox, { uidValidity, lastUid: uid });
    }
    await this.o.ledger.setMark(this.mailbox, { uidValidity, lastUid: maxUid });
    result.ms = Date.now() - started;
    return result;
  }

  private async handleOne(uid: number): Promise<boolean> {
    const c = this.o.client;
    const now = this.o.now?.() ?? new Date();
    this.commands++;
    // First round trip: envelope, size and two outer headers, never the body
    // (BODY.PEEK[HEADER.FIELDS]: no \Seen on anything).
    const meta = await c.fetchOne(String(uid), { uid: true, size: true, envelope: true, headers: [HEADER_VERSION, HEADER_SIGNER] }, { uid: true });
    const messageId = (meta && meta.envelope?.messageId) || '';
    const id = messageId || `uid:${uid}`;
    const reject = (reason: string, detail: string): V => ({ ok: false, messageId, reason, detail: sanitizeText(detail) }) as V;
    if (!meta || !meta.size) {
      // Found by the search, gone before the first fetch (no data, size 0): another mail client took it.
      await this.o.onMail({ uid, verdict: reject('vanished', vanished(`UID ${uid}`)), folder: this.mailbox });
      return false;
    }
    const before = await this.o.ledger.resultOf(id);
    if (before === EXAMINING) {
      // The process died while examining it: report it once, never look inside again.
      await this.o.ledger.record({ messageId: id, result: 'quarantined', now });
      await this.o.onMail({ uid, verdict: reject('quarantined', `examining ${id} stopped the process once; it stays in ${this.mailbox}, never parsed again`), folder: this.mailbox });
      return false;
    }
    if (before === 'quarantined') return false;
    if (before !== undefined) {
      // Already handled once (a copy, a replay, or a restart after a crash): report, leave alone.
      await this.o.onMail({ uid, verdict: reject('replayed', `Message-ID ${id} was processed before`), folder: this.mailbox });
      return false;
    }
    const outline: MailOutline = {
      size: meta.size ?? 0,
      from: (meta.envelope?.from ?? []).map((a) => a.address ?? ''),
      headers: meta.headers ?? '',
      ...(messageId ? { messageId } : {}),
    };
    let verdict: V | undefined = await this.o.screen?.(outline, uid);
    if (!verdict && outline.size > LIMITS.mailBytes) {
      verdict = reject('too-large', `mail is ${outline.size} bytes, more than ${LIMITS.mailBytes} (LIMITS.mailBytes)`);
    }
    if (!verdict) {
      await this.o.ledger.beginExamining(id, now);
      this.commands++;
      const body = await c.fetchOne(String(uid), { uid: true, source: { maxLength: LIMITS.mailBytes } }, { uid: true });
      // A mail expunged by another client meanwhile comes back without (or with an empty) source.
      verdict = body && body.source && body.source.length > 0 ? await this.o.classify(body.source, uid) : reject('vanished', vanished(id));
    }
    await this.o.ledger.record({
      messageId: id,
      result: verdict.ok ? 'accepted' : verdict.reason,
      now,
      ...(verdict.nonce ? { nonce: verdict.nonce } : {}),
      ...(verdict.expires ? { expires: verdict.expires } : {}),
    });
    if (verdict.ok && verdict.messageId && verdict.messageId !== id) {
      // The parser's Message-ID names the same mail: remember it too.
      await this.o.ledger.record({ messageId: verdict.messageId, result: 'accepted', now, ...(verdict.expires ? { expires: verdict.expires } : {}) });
    }
    let folder = this.mailbox;
    if (verdict.ok) {
      this.commands++;
      await c.messageMove(String(uid), this.o.folder, { uid: true });
      folder = this.o.folder;
    }
    await this.o.onMail({ uid, verdict, folder });
    return verdict.ok;
  }

  /**
   * Watches until `signal` aborts (resolves) or the connection fails
   * (rejects with IMAP_FAILED). IDLE when offered, polling otherwise.
   */
  async watch(opts: { signal: AbortSignal }): Promise<void> {
    const c = this.o.client;
    const onExists = () => this.poke();
    const onClose = () => this.wake?.();
    c.on('exists', onExists);
    c.on('close', onClose);
    const onAbort = () => this.poke();
    opts.signal.addEventListener('abort', onAbort);
    try {
      while (!opts.signal.aborted) {
        if (!c.usable) throw new PeerdialError('IMAP_FAILED', 'The IMAP connection was closed.');
        this.dirty = false;
        await this.check();
        if (this.dirty || opts.signal.aborted) continue;
        if (this.supportsIdle) {
          this.idling = true;
          this.o.onProgress?.({ type: 'idle' });
          this.commands++;
          await c.idle();
          this.idling = false;
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
      c.off('exists', onExists);
      c.off('close', onClose);
      opts.signal.removeEventListener('abort', onAbort);
    }
  }

  /** Something changed (new mail, shutdown): end IDLE or the poll sleep now. */
  poke(): void {
    this.dirty = true;
    if (this.idling && this.o.client.usable) {
      this.commands++;
      this.o.client.noop().catch(() => undefined);
    }
    this.wake?.();
  }
}

/** What a mail that another client deleted or moved before peerdial read it is reported as. */
function vanished(what: string): string {
  return `${what} was deleted or moved by another mail client before peerdial read it (a client that deletes from the server at once, or a filter, can lose calls; see "Using peerdial beside other mail clients" in the README)`;
}
