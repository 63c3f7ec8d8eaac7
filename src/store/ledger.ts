/**
 * The ledger of processed mail: where the inbox watcher stopped (per
 * folder: UIDVALIDITY and last UID) and which Message-IDs and nonces were
 * already handled (replay protection). Nonces are kept until the mail that
 * carried them expires (plus a margin): after that the mail is rejected as
 * expired anyway, so the ledger does not grow without bound.
 */
import path from 'node:path';
import { Mutex, readJson, writeJsonAtomic } from './files.js';

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

export class Ledger {
  private readonly file: string;
  private readonly mutex = new Mutex();
  private cache?: LedgerFile;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'ledger.json');
  }

  private async load(): Promise<LedgerFile> {
    if (!this.cache) {
      this.cache = await readJson<LedgerFile>(this.file, { version: 1, mailboxes: {}, messages: {}, nonces: {} });
    }
    return this.cache;
  }

  async mark(mailbox: string): Promise<MailboxMark | undefined> {
    return (await this.load()).mailboxes[mailbox];
  }

  async setMark(mailbox: string, mark: MailboxMark): Promise<void> {
    await this.mutex.run(async () => {
      const data = await this.load();
      data.mailboxes[mailbox] = mark;
      await writeJsonAtomic(this.file, data);
    });
  }

  /** Synchronous replay check against what is loaded (call `ready()` first). */
  seen(nonce: string, messageId: string): boolean {
    const data = this.cache;
    if (!data) throw new Error('Ledger.seen() before ready()');
    return (nonce !== '' && nonce in data.nonces) || (messageId !== '' && messageId in data.messages && data.messages[messageId]!.result !== EXAMINING);
  }

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

  async record(entry: { messageId: string; nonce?: string; result: string; expires?: string; now: Date }): Promise<void> {
    await this.mutex.run(async () => {
      const data = await this.load();
      const expires = entry.expires ? Date.parse(entry.expires) : NaN;
      const keepUntil = new Date(
        Math.max(Number.isFinite(expires) ? expires : 0, entry.now.getTime()) + MARGIN_MS,
      ).toISOString();
      if (entry.messageId) data.messages[entry.messageId] = { at: entry.now.toISOString(), result: entry.result, keepUntil };
      if (entry.nonce) data.nonces[entry.nonce] = keepUntil;
      this.prune(data, entry.now);
      await writeJsonAtomic(this.file, data);
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
