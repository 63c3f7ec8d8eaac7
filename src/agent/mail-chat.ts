/**
 * The chat by mail of a call that found no path (wire/mail-chat.ts says
 * how both sides agree on it and how it ends): lines and small files go
 * as `message` mails of this account, signed and (with the peer's key)
 * encrypted; the peer's come back through the agent's inbox watcher and
 * are handed to `handle`. Rates: mail-chat-flow.ts.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Account } from './account.js';
import type { PeerdialMessage } from '../wire/message.js';
import { LIMITS } from '../wire/limits.js';
import { sanitizeText } from '../wire/sanitize.js';
import { MAIL_CHAT, MAIL_CHAT_LINE_CHARS, MAIL_CHAT_TTL_SECONDS, checkMailChatFile, mailChatFileName, readMailChat, type MailChatCall } from '../wire/mail-chat.js';
import { IncomingGate, OutgoingLines } from './mail-chat-flow.js';
import { createPrivateFile, resolveDownloadDir } from '../carriers/download-dir.js';

export type MailChatEvent =
  | { type: 'line'; text: string }
  | { type: 'file'; name: string; path: string; bytes: number; sha256: string }
  | { type: 'file-failed'; name: string; reason: string }
  /** `count` of the peer's mails were not shown (too many too fast); they are in `peerdial messages`. */
  | { type: 'held-back'; count: number }
  /** A mail carried more lines than are shown; the rest are in `peerdial messages`. */
  | { type: 'hidden-lines'; count: number }
  /** The peer is in the chat too (its open arrived). */
  | { type: 'peer-open' }
  | { type: 'peer-left' }
  /** Some of our lines went by mail (the outbox took them). */
  | { type: 'queued'; lines: number }
  | { type: 'error'; error: Error };

export interface MailChatOptions extends MailChatCall {
  account: Account;
  /** Something was queued in the outbox: send it soon. */
  poke: () => void;
  /** Files of this size and more do not go (`[call] mail_fallback_max_kib`). */
  maxFileBytes: number;
  /** Where files that came by mail are saved. */
  downloadDir: string;
  on: (e: MailChatEvent) => void;
  /** A mail of the peer was shown in the chat (it need not wait in `peerdial messages` as unread). */
  shown?: (msg: PeerdialMessage) => void;
  now?: () => number;
}

export type SendResult = { ok: true; name: string; bytes: number; sha256: string } | { ok: false; message: string };

export class MailChat {
  private readonly out: OutgoingLines;
  private readonly gate: IncomingGate;
  private readonly now: () => number;
  /** Mails go one after another, in the order they were asked for. */
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private done = false;
  private resolveEnded!: (how: 'quit' | 'peer-left') => void;
  /** How the chat ended: this side quit, or the peer left. */
  readonly ended = new Promise<'quit' | 'peer-left'>((r) => (this.resolveEnded = r));

  constructor(private readonly o: MailChatOptions) {
    this.now = o.now ?? Date.now;
    this.out = new OutgoingLines(this.now());
    this.gate = new IncomingGate(this.now());
  }

  get callId(): string {
    return this.o.callId;
  }

  get peer(): string {
    return this.o.peer;
  }

  private queue(input: { purpose: string; text?: string; attachment?: PeerdialMessage['attachment'] }): Promise<void> {
    const run = this.chain.then(async () => {
      await this.o.account.queue({ kind: 'message', to: this.o.peer, callId: this.o.callId, ttlSeconds: MAIL_CHAT_TTL_SECONDS, ...input });
      this.o.poke();
    });
    this.chain = run.catch((err: Error) => this.o.on({ type: 'error', error: err }));
    return run;
  }

  /** Tells the peer this side is in the chat by mail now. */
  open(): Promise<void> {
    return this.queue({ purpose: MAIL_CHAT.open, text: 'No direct path for our call: the chat goes on by mail.' });
  }

  /** One typed line; refused (with why) when it cannot go. */
  say(line: string): { ok: true } | { ok: false; message: string } {
    if (this.done) return { ok: false, message: 'the chat has ended' };
    if (line.length > MAIL_CHAT_LINE_CHARS) return { ok: false, message: `that line is ${line.length} characters; by mail a line may have at most ${MAIL_CHAT_LINE_CHARS}. Not sent.` };
    // what the peer's validator refuses (controls) is made visible here, not lost there
    this.out.push(sanitizeText(line, { max: MAIL_CHAT_LINE_CHARS * 2, tabs: true }));
    this.flush();
    return { ok: true };
  }

  private flush(): void {
    if (this.timer) return;
    for (;;) {
      const n = this.out.waiting;
      const next = this.out.next(this.now());
      if (next.text !== undefined) {
        const lines = n - this.out.waiting;
        void this.queue({ purpose: MAIL_CHAT.line, text: next.text }).then(() => this.o.on({ type: 'queued', lines }), () => undefined);
      }
      if (next.waitMs !== undefined && next.waitMs > 0) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.flush();
        }, next.waitMs);
        return;
      }
      if (next.text === undefined) return;
    }
  }

  /** A small file, as one mail; refused (nothing sent) at the size limit and above. */
  async sendFile(file: string): Promise<SendResult> {
    const st = await fs.stat(file).catch((err: NodeJS.ErrnoException) => err);
    const shown = path.basename(file);
    if (st instanceof Error) return { ok: false, message: `${shown}: ${st.code === 'ENOENT' ? 'no such file' : (st.code ?? st.message)}. Nothing was sent.` };
    if (!st.isFile()) return { ok: false, message: `${shown}: not a regular file. Nothing was sent.` };
    const check = checkMailChatFile(shown, st.size, Math.min(this.o.maxFileBytes, LIMITS.voicemailBytes + 1));
    if (!check.ok) return check;
    const data = await fs.readFile(file);
    // the size checked is the size sent (the file may have grown meanwhile)
    const again = checkMailChatFile(shown, data.length, Math.min(this.o.maxFileBytes, LIMITS.voicemailBytes + 1));
    if (!again.ok) return again;
    const name = mailChatFileName(shown);
    await this.queue({ purpose: MAIL_CHAT.line, text: `(file ${name}, ${data.length} bytes)`, attachment: { filename: name, contentType: 'application/octet-stream', data: data.toString('base64') } });
    return { ok: true, name, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
  }

  /** A verified mail from the inbox: true when it belonged to this chat (and was dealt with). */
  handle(msg: PeerdialMessage): boolean {
    const item = readMailChat(msg, this.o);
    if (!item) return false;
    if (this.done) return true;
    if (item.type === 'end') {
      this.o.shown?.(msg);
      this.finish('peer-left');
      this.o.on({ type: 'peer-left' });
      return true;
    }
    const gate = this.gate.admit(this.now());
    if (gate.dropped > 0) this.o.on({ type: 'held-back', count: gate.dropped });
    if (!gate.show) return true;
    this.o.shown?.(msg);
    if (item.type === 'open') this.o.on({ type: 'peer-open' });
    else {
      // a file's text only names it (for `peerdial messages`): the chat shows the file itself
      if (item.type === 'file') void this.saveFile(item.name, item.data);
      else {
        for (const text of item.lines) this.o.on({ type: 'line', text });
        if (item.hidden > 0) this.o.on({ type: 'hidden-lines', count: item.hidden });
      }
    }
    return true;
  }

  private async saveFile(offered: string, data: Buffer): Promise<void> {
    const name = mailChatFileName(offered);
    try {
      if (data.length >= this.o.maxFileBytes) throw new Error(`${data.length} bytes, over this side's limit ([call] mail_fallback_max_kib); it is kept in peerdial messages`);
      const dir = await resolveDownloadDir(this.o.downloadDir);
      const ext = path.extname(name);
      const stem = name.slice(0, name.length - ext.length) || 'file';
      for (let i = 0; ; i++) {
        const candidate = i === 0 ? name : `${stem} (${i})${ext}`;
        const fh = await createPrivateFile(dir, candidate).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'EEXIST' && i < 100) return undefined;
          throw err;
        });
        if (!fh) continue;
        try {
          await fh.writeFile(data);
        } finally {
          await fh.close();
        }
        this.o.on({ type: 'file', name, path: path.join(dir, candidate), bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') });
        return;
      }
    } catch (err) {
      this.o.on({ type: 'file-failed', name, reason: (err as Error).message });
    }
  }

  private finish(how: 'quit' | 'peer-left'): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.resolveEnded(how);
  }

  /**
   * This side leaves: lines still waiting go now (the user typed them), then
   * the end mail. Resolves when both are in the outbox.
   */
  async quit(): Promise<void> {
    if (this.done) return this.chain;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const text of this.out.drain()) void this.queue({ purpose: MAIL_CHAT.line, text }).catch(() => undefined);
    this.finish('quit');
    await this.queue({ purpose: MAIL_CHAT.end, text: 'left the chat' }).catch(() => undefined);
    await this.chain;
  }
}
