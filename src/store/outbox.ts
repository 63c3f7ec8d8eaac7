/**
 * The persistent outbox. Writing a mail only queues it here (raw bytes in
 * `ID.eml`, state in `ID.json`); a separate sender drains the queue. A mail
 * is in the queue from the moment `enqueue` resolves until the SMTP server
 * has accepted it, so a crash loses nothing. A crash in the instant after
 * the server accepted it and before the entry is removed sends it once
 * more after restart; the receiver's ledger drops that copy as a replay of
 * the same Message-ID, so the user sees it once.
 *
 * Two processes may drain one outbox (the agent and `peerdial outbox flush`,
 * or two commands): a sender first claims an entry (the entry's own lock,
 * held while it sends) and re-reads it under the claim; an entry claimed by
 * a live process is skipped, so no mail is sent twice. The claim of a
 * process that was killed goes stale and is taken over (LOCK_STALE_MS).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ensurePrivateDir, lockFile, LOCK_STALE_MS, readJson, readJsonDir, writeFileAtomic, writeJsonAtomic } from './files.js';

export interface OutboxEntry {
  id: string;
  messageId: string;
  from: string;
  to: string[];
  kind: string;
  callId?: string;
  created: string;
  attempts: number;
  /** Not before this time (backoff). */
  nextAttemptAt: string;
  lastError?: string;
  /** 'queued' until sent; 'failed' after a permanent (5xx) refusal, kept for the user to see. */
  state: 'queued' | 'failed';
}

export class Outbox {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'outbox');
  }

  async enqueue(input: { raw: Buffer; messageId: string; from: string; to: string[]; kind: string; callId?: string; now?: Date }): Promise<OutboxEntry> {
    await ensurePrivateDir(this.dir);
    const now = input.now ?? new Date();
    const id = `${now.getTime().toString(36)}-${randomBytes(5).toString('hex')}`;
    const entry: OutboxEntry = {
      id,
      messageId: input.messageId,
      from: input.from,
      to: input.to,
      kind: input.kind,
      ...(input.callId ? { callId: input.callId } : {}),
      created: now.toISOString(),
      attempts: 0,
      nextAttemptAt: now.toISOString(),
      state: 'queued',
    };
    // The .eml first: an entry exists only once its bytes are safe on disk.
    await writeFileAtomic(path.join(this.dir, `${id}.eml`), input.raw);
    await writeJsonAtomic(path.join(this.dir, `${id}.json`), entry);
    return entry;
  }

  async list(): Promise<OutboxEntry[]> {
    return readJsonDir<OutboxEntry>(this.dir);
  }

  /**
   * Claims entry `id` for sending: the entry as it is on disk now, and the
   * release. While another process holds it (sends it), waits until it is
   * done or, when that process was killed, until its claim is stale; still
   * held after that: undefined, as when the entry is gone (it was sent).
   * Save or remove it before releasing.
   */
  async claim(id: string): Promise<{ entry: OutboxEntry; release: () => Promise<void> } | undefined> {
    const file = path.join(this.dir, `${id}.json`);
    const release = await lockFile(file, { giveUpAfterMs: LOCK_STALE_MS + 5_000 });
    if (!release) return undefined;
    const done = () => release().catch(() => undefined);
    try {
      const entry = await readJson<OutboxEntry | null>(file, null);
      if (entry) return { entry, release: done };
    } catch (err) {
      await done();
      throw err;
    }
    await done();
    return undefined;
  }

  async raw(id: string): Promise<Buffer> {
    return fs.readFile(path.join(this.dir, `${id}.eml`));
  }

  async save(entry: OutboxEntry): Promise<void> {
    await writeJsonAtomic(path.join(this.dir, `${entry.id}.json`), entry);
  }

  /** Removes a sent entry: state file first, so a half-removed entry is never sent again. */
  async remove(id: string): Promise<void> {
    await fs.rm(path.join(this.dir, `${id}.json`), { force: true });
    await fs.rm(path.join(this.dir, `${id}.eml`), { force: true });
  }

  async pending(): Promise<number> {
    return (await this.list()).filter((e) => e.state === 'queued').length;
  }
}
