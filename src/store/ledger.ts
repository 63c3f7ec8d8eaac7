/**
 * The ledger of processed mail: where the inbox watcher stopped (per
 * folder: UIDVALIDITY and last UID) and which Message-IDs and nonces were
 * already handled (replay protection). Nonces are kept until the mail that
 * carried them expires (plus a margin): after that the mail is rejected as
 * expired anyway, so the ledger does not grow without bound.
 *
 * Two processes of one account may share it (the agent and a command, or
 * two commands). Every change runs under the file's cross-process lock and
 * starts from the file as it is on disk then, never from this process's
 * copy; a mark only moves forward; and `claim()` checks and records a nonce
 * in one locked step, so one mail is acted on by one process only. Reads
 * re-read the file when its stamp (inode, size, mtime) changed: a stat, not
 * a parse, when nothing changed.
 */
import path from 'node:path';
import { fileStamp, readJson, StoreLock, writeJsonAtomic } from './files.js';

export interface MailboxMark {
  uidValidity: string;
  lastUid: number;
}

export interface ProcessedEntry {
  at: string;
  /** 'accepted' or the rejection reason. */
  result: string;
  /** Prune after this time. */
  keepUntil: string;
}

interface LedgerFile {
  version: 1;
  mailboxes: Record<string, MailboxMark>;
  messages: Record<string, ProcessedEntry>;
  nonces: Record<string, string>;
}

const MARGIN_MS = 24 * 3600 * 1000;
/** The result of a mail whose parse has begun and not ended. */
export const EXAMINING = 'examining';

function keepUntilOf(expires: string | undefined, now: Date): string {
  const t = expires ? Date.parse(expires) : NaN;
  return new Date(Math.max(Number.isFinite(t) ? t : 0, now.getTime()) + MARGIN_MS).toISOString();
}

export class Ledger {
  private readonly file: string;
  private readonly lock: StoreLock;
  private cache?: LedgerFile;
  /** The stamp of the file `cache` was read from (or written as). */
  private stamp?: string;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'ledger.json');
    this.lock = new StoreLock(this.file);
  }

  /** The ledger as it is on disk now: re-read only when the file changed since we last saw it. */
  private async load(): Promise<LedgerFile> {
    const stamp = await fileStamp(this.file);
    if (!this.cache || stamp !== this.stamp) {
      const data = await readJson<LedgerFile>(this.file, { version: 1, mailboxes: {}, messages: {}, nonces: {} });
      data.mailboxes ??= {};
      data.messages ??= {};
      data.nonces ??= {};
      this.cache = data;
      this.stamp = stamp;
    }
    return this.cache;
  }

  /** One locked read-modify-write: `change` sees the file as it is now; false from it means "nothing to write". */
  private async change<T>(change: (data: LedgerFile) => { write: boolean; result: T }): Promise<T> {
    return this.lock.run(async () => {
      const data = await this.load();
      try {
        const { write, result } = change(data);
        if (write) {
          await writeJsonAtomic(this.file, data);
          this.stamp = await fileStamp(this.file);
        }
        return result;
      } catch (err) {
        // the copy may hold a change that never reached the file: read it again next time
        this.cache = undefined;
        throw err;
      }
    });
  }

  async mark(mailbox: string): Promise<MailboxMark | undefined> {
    return (await this.load()).mailboxes[mailbox];
  }

  /**
   * Moves the mark of `mailbox` forward. A mark that another process moved
   * further (same UIDVALIDITY) is kept: a mark never goes back.
   */
  async setMark(mailbox: string, mark: MailboxMark): Promise<void> {
    await this.change((data) => {
      const old = data.mailboxes[mailbox];
      if (old && old.uidValidity === mark.uidValidity && old.lastUid >= mark.lastUid) return { write: false, result: undefined };
      data.mailboxes[mailbox] = { uidValidity: mark.uidValidity, lastUid: mark.lastUid };
      return { write: true, result: undefined };
    });
  }

  /**
   * Synchronous replay check against the ledger as of the last `ready()`
   * (call it right before deciding a mail). The final word is `claim()`.
   */
  seen(nonce: string, messageId: string): boolean {
    const data = this.cache;
    if (!data) throw new Error('Ledger.seen() before ready()');
    return (nonce !== '' && nonce in data.nonces) || (messageId !== '' && messageId in data.messages && data.messages[messageId]!.result !== EXAMINING);
  }

  /** Brings the copy `seen()` reads up to date with the file (a stat when nothing changed). */
  async ready(): Promise<void> {
    await this.load();
  }

  async hasMessage(messageId: string): Promise<boolean> {
    return messageId in (await this.load()).messages;
  }

  /** What became of a mail: 'accepted', a rejection reason, 'examining' (its parse never ended); undefined when never seen. */
  async resultOf(messageId: string): Promise<string | undefined> {
    return (await this.load()).messages[messageId]?.result;
  }

  /**
   * Written (durably) before a mail is parsed: when the process dies during
   * the parse, the mail is still 'examining' after the restart and is
   * quarantined instead of parsed again. `record()` replaces the mark.
   */
  async beginExamining(messageId: string, now: Date): Promise<void> {
    await this.record({ messageId, result: EXAMINING, now });
  }

  /**
   * Checks and records a nonce in one locked step: true when this process
   * is the first to claim it, false when it was recorded before (by any
   * process). A mail is acted on only after its nonce was claimed.
   */
  async claim(nonce: string, opts: { expires?: string; now: Date }): Promise<boolean> {
    if (!nonce) return false;
    return this.change((data) => {
      if (nonce in data.nonces) return { write: false, result: false };
      data.nonces[nonce] = keepUntilOf(opts.expires, opts.now);
      return { write: true, result: true };
    });
  }

  async record(entry: { messageId: string; nonce?: string; result: string; expires?: string; now: Date }): Promise<void> {
    await this.change((data) => {
      const keepUntil = keepUntilOf(entry.expires, entry.now);
      if (entry.messageId) data.messages[entry.messageId] = { at: entry.now.toISOString(), result: entry.result, keepUntil };
      if (entry.nonce) {
        const had = data.nonces[entry.nonce];
        data.nonces[entry.nonce] = had && had > keepUntil ? had : keepUntil;
      }
      this.prune(data, entry.now);
      return { write: true, result: undefined };
    });
  }

  private prune(data: LedgerFile, now: Date): void {
    const t = now.getTime();
    for (const [id, e] of Object.entries(data.messages)) if (Date.parse(e.keepUntil) < t) delete data.messages[id];
    for (const [n, until] of Object.entries(data.nonces)) if (Date.parse(until) < t) delete data.nonces[n];
  }

  async size(): Promise<{ messages: number; nonces: number }> {
    const data = await this.load();
    return { messages: Object.keys(data.messages).length, nonces: Object.keys(data.nonces).length };
  }
}
