/**
 * Messages and voicemail that came by mail (kind `message`): one JSON file
 * each, the attachment (a recorded voice message) saved beside it. Saving
 * and marking read run under the folder's cross-process lock (the agent and
 * `peerdial messages` may touch it at once).
 */
import path from 'node:path';
import { ensurePrivateDir, readJson, readJsonDir, StoreLock, writeFileAtomic, writeJsonAtomic } from './files.js';
import type { PeerdialMessage } from '../wire/message.js';

export interface StoredMessage {
  id: string;
  from: string;
  received: string;
  sent: string;
  text?: string;
  /** Saved attachment: file name inside the messages folder. */
  attachment?: { filename: string; contentType: string; file: string; bytes: number };
  /** The call this message followed, when it was left for an unanswered call. */
  callId: string;
  read: boolean;
}

/** The id a verified `message` is stored under (markRead takes it). */
export function storedMessageId(msg: Pick<PeerdialMessage, 'created' | 'nonce'>): string {
  return `${Date.parse(msg.created).toString(36)}-${msg.nonce.slice(0, 12)}`;
}

export class MessageStore {
  readonly dir: string;
  private readonly lock: StoreLock;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, 'messages');
    this.lock = new StoreLock(this.dir);
  }

  /** Saves a verified `message`; the same nonce is never saved twice. */
  async save(msg: PeerdialMessage, received: Date): Promise<StoredMessage> {
    await ensurePrivateDir(this.dir);
    return this.lock.run(() => this.saveLocked(msg, received));
  }

  private async saveLocked(msg: PeerdialMessage, received: Date): Promise<StoredMessage> {
    const id = storedMessageId(msg);
    const file = path.join(this.dir, `${id}.json`);
    const existing = await readJson<StoredMessage | null>(file, null);
    if (existing) return existing;
    const stored: StoredMessage = { id, from: msg.from, received: received.toISOString(), sent: msg.created, callId: msg.callId, read: false };
    if (msg.text !== undefined) stored.text = msg.text;
    if (msg.attachment) {
      const data = Buffer.from(msg.attachment.data, 'base64');
      // the sender's file name is shown, never used as a path
      const ext = (/\.([a-z0-9]{1,8})$/i.exec(msg.attachment.filename)?.[1] ?? 'bin').toLowerCase();
      const name = `${id}.${ext}`;
      await writeFileAtomic(path.join(this.dir, name), data);
      stored.attachment = { filename: msg.attachment.filename, contentType: msg.attachment.contentType, file: name, bytes: data.length };
    }
    await writeJsonAtomic(file, stored);
    return stored;
  }

  async list(): Promise<StoredMessage[]> {
    return (await readJsonDir<StoredMessage>(this.dir)).sort((a, b) => a.sent.localeCompare(b.sent));
  }

  async markRead(id: string): Promise<void> {
    const file = path.join(this.dir, `${id}.json`);
    await this.lock.run(async () => {
      const m = await readJson<StoredMessage | null>(file, null);
      if (m && !m.read) await writeJsonAtomic(file, { ...m, read: true });
    });
  }

  attachmentPath(m: StoredMessage): string | undefined {
    return m.attachment ? path.join(this.dir, m.attachment.file) : undefined;
  }
}
