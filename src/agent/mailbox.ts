/**
 * The agent's side of the mail edges: it owns reconnects (with backoff and
 * jitter) for the inbox watcher and the timer that drains the outbox. The
 * adapters in src/mail/ never retry by themselves.
 */
import type { ImapFlow } from 'imapflow';
import { connectImap } from '../mail/imap.js';
import { InboxWatcher, type CheckResult, type InboxMail, type ReplyCheckCount } from '../mail/inbox.js';
import { OutboxSender, type DrainResult } from '../mail/outbox-sender.js';
import type { Account, Received } from './account.js';
import { clampDelay, sleep } from '../util/timers.js';
import { recheckKept } from './kept.js';
import { chatMailActive, handleChatMail, wantsChatMail, type ChatMailResult } from './securejoin.js';

export type MailboxEvent =
  | { type: 'connecting'; attempt: number }
  | { type: 'connected'; idle: boolean }
  | { type: 'idle' }
  | { type: 'checked'; result: CheckResult }
  | { type: 'disconnected'; error: Error; retryInMs: number }
  | { type: 'sent'; to: string[]; kind: string; messageId: string }
  | { type: 'send-retry'; to: string[]; error: Error; retryInMs: number }
  | { type: 'send-failed'; to: string[]; error: Error }
  /** A Delta Chat chat mail peerdial read (a SecureJoin step; agent/securejoin.ts). */
  | { type: 'chat-mail'; result: ChatMailResult };

/** What the agent may ask of the watcher of the current connection. */
export interface MailboxWatcher {
  poke(): void;
  readonly supportsIdle: boolean;
  expectReply(opts: { until: Date }): () => void;
  readonly replyChecks: ReplyCheckCount;
}

/**
 * Replies the agent expects (the caller's offer has gone), kept across
 * reconnects: each is handed to the watcher of the current connection,
 * and again to the next one, until cancelled or past its deadline.
 */
export class ReplyExpectations {
  private readonly open = new Map<number, { until: Date; cancel?: () => void }>();
  private ids = 0;
  private watcher?: MailboxWatcher;
  /** Counts of the watchers before the current one. */
  private readonly before: ReplyCheckCount = { noops: 0, found: 0 };

  /** What the checks for expected replies cost so far (NOOPs) and how often they saw a new mail before IDLE did. */
  get checks(): ReplyCheckCount {
    const now = this.watcher?.replyChecks ?? { noops: 0, found: 0 };
    return { noops: this.before.noops + now.noops, found: this.before.found + now.found };
  }

  expect(opts: { until: Date }): () => void {
    const id = ++this.ids;
    const entry: { until: Date; cancel?: () => void } = { until: opts.until };
    this.open.set(id, entry);
    if (this.watcher) entry.cancel = this.watcher.expectReply({ until: opts.until });
    return () => {
      if (!this.open.delete(id)) return;
      entry.cancel?.();
    };
  }

  /** Expectations not cancelled yet (also those past their deadline until the next watcher). */
  get size(): number {
    return this.open.size;
  }

  watcherChanged(watcher: MailboxWatcher | undefined): void {
    if (this.watcher && this.watcher !== watcher) {
      const c = this.watcher.replyChecks;
      this.before.noops += c.noops;
      this.before.found += c.found;
    }
    this.watcher = watcher;
    const now = Date.now();
    for (const [id, entry] of this.open) {
      if (entry.until.getTime() <= now) {
        this.open.delete(id);
        continue;
      }
      entry.cancel = watcher?.expectReply({ until: entry.until });
    }
  }
}

export function reconnectDelayMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(60_000, 1_000 * 2 ** Math.min(attempt, 6));
  return Math.round(base * (0.5 + random()));
}


export interface MailboxOptions {
  signal: AbortSignal;
  onMail: (mail: InboxMail<Received>) => Promise<void> | void;
  onEvent?: (e: MailboxEvent) => void;
  /** The watcher of the current connection (undefined while there is none): to ask it for a check now, or to expect a reply. */
  onWatcher?: (watcher: MailboxWatcher | undefined) => void;
  /** Decides a mail before the account does (the agent's own test mail for `peerdial doctor`). */
  classifyFirst?: (raw: Buffer) => Received | undefined;
}

/**
 * Where peerdial mail arrives: with the server-side rule on (sieve_port
 * set by `init --sieve`) it is delivered into peerdial's folder, so the
 * watcher idles there and checks the INBOX on each pass for mail that came
 * before the rule; without it, the INBOX.
 */
export function watchedMailboxes(account: Account): { mailbox?: string; alsoCheck?: string } {
  return account.account.sievePort ? { mailbox: account.account.folder, alsoCheck: 'INBOX' } : {};
}

/** Opens one watcher on a fresh connection. */
async function openWatcher(account: Account, onMail: MailboxOptions['onMail'], onEvent?: (e: MailboxEvent) => void, classifyFirst?: MailboxOptions['classifyFirst']): Promise<{ client: ImapFlow; watcher: InboxWatcher<Received> }> {
  const client = await connectImap(await account.imapTarget(), { maxIdleMs: account.config.idleSeconds * 1000 });
  account.warmExaminer();
  const watcher = new InboxWatcher<Received>({
    client,
    ledger: account.ledger,
    folder: account.account.folder,
    ...watchedMailboxes(account),
    // the doctor's own test mail (decided by classifyFirst) is not screened
    screen: async (outline) =>
      outline.messageId && classifyFirst?.(Buffer.from(`Message-ID: ${outline.messageId}\r\n\r\n`)) ? undefined : account.screen(outline),
    classify: async (raw) => classifyFirst?.(raw) ?? account.classify(raw),
    onMail,
    chatMail: {
      active: () => chatMailActive(account),
      wants: (from) => wantsChatMail(account, from),
      handle: async (raw) => {
        // a Delta Chat contact's call signal goes to the phone like peerdial's offers and answers
        const call = await account.classifyDeltaChatCall(raw);
        if (call) return { handled: call.ok, verdict: call };
        const result = await handleChatMail(account, raw);
        onEvent?.({ type: 'chat-mail', result });
        return result;
      },
    },
    pollMs: account.config.pollSeconds * 1000,
    now: account.clock,
    onProgress: (e) => {
      if (e.type === 'checked') onEvent?.({ type: 'checked', result: e.result });
      else if (e.type === 'idle') onEvent?.({ type: 'idle' });
    },
  });
  try {
    await watcher.prepare();
  } catch (err) {
    client.close();
    throw err;
  }
  return { client, watcher };
}

/** One check of the mailbox, then log out (`peerdial inbox`, `agent --once`). */
export async function checkOnce(account: Account, onMail: MailboxOptions['onMail'], onEvent?: (e: MailboxEvent) => void): Promise<CheckResult> {
  const { client, watcher } = await openWatcher(account, onMail, onEvent);
  try {
    const result = await watcher.check();
    // mail that came before its sender was a contact gets its second look
    await recheckKept(account, onMail);
    return result;
  } finally {
    await client.logout().catch(() => client.close());
  }
}

/** Watches the inbox until `signal` aborts, reconnecting after failures. */
export async function watchInbox(account: Account, opts: MailboxOptions): Promise<void> {
  let attempt = 0;
  while (!opts.signal.aborted) {
    opts.onEvent?.({ type: 'connecting', attempt });
    let client: ImapFlow | undefined;
    try {
      const opened = await openWatcher(account, opts.onMail, opts.onEvent, opts.classifyFirst);
      client = opened.client;
      attempt = 0;
      opts.onEvent?.({ type: 'connected', idle: opened.watcher.supportsIdle });
      opts.onWatcher?.(opened.watcher);
      await opened.watcher.watch({ signal: opts.signal });
    } catch (err) {
      if (opts.signal.aborted) break;
      const delay = reconnectDelayMs(attempt++);
      opts.onEvent?.({ type: 'disconnected', error: err as Error, retryInMs: delay });
      await sleep(delay, opts.signal);
    } finally {
      opts.onWatcher?.(undefined);
      if (client) await client.logout().catch(() => client!.close());
    }
  }
}

/** Drains the outbox now and whenever it is poked or a retry is due, until `signal` aborts. */
export class OutboxLoop {
  private readonly sender: OutboxSender;
  private wake?: () => void;
  private running?: Promise<void>;
  private pokes = 0;

  constructor(private readonly account: Account, private readonly onEvent?: (e: MailboxEvent) => void) {
    this.sender = new OutboxSender(account.outbox, () => account.smtpTarget(), {
      onSent: (e) => onEvent?.({ type: 'sent', to: e.to, kind: e.kind, messageId: e.messageId }),
      onRetry: (e, error, retryInMs) => onEvent?.({ type: 'send-retry', to: e.to, error, retryInMs }),
      onFailed: (e, error) => onEvent?.({ type: 'send-failed', to: e.to, error }),
    }, account.clock);
  }

  /** Drains once and closes the connection (for commands that do not run the agent). */
  async drainOnce(opts: { force?: boolean } = {}): Promise<DrainResult> {
    try {
      return await this.sender.drain(opts);
    } finally {
      this.sender.close();
    }
  }

  /** Drains now, after (never beside) a pass the loop may be running; keeps the connection (`outbox flush` through the agent). */
  flush(opts: { force?: boolean } = {}): Promise<DrainResult> {
    return this.sender.drain(opts);
  }

  start(signal: AbortSignal): void {
    this.running = (async () => {
      while (!signal.aborted) {
        const seen = this.pokes;
        const r = await this.sender.drain().catch(() => ({ nextDue: new Date(Date.now() + 5000) }) as DrainResult);
        if (this.pokes !== seen || signal.aborted) continue;
        // a retry due: wake then; nothing due: no timer at all, a queued mail pokes (the agent's own, or a command's through the control socket)
        const wait = r.nextDue ? Math.max(50, r.nextDue.getTime() - Date.now()) : undefined;
        await new Promise<void>((resolve) => {
          const stop = () => {
            if (t) clearTimeout(t);
            signal.removeEventListener('abort', stop);
            resolve();
          };
          const t = wait !== undefined ? setTimeout(stop, clampDelay(wait)) : undefined;
          this.wake = stop;
          signal.addEventListener('abort', stop, { once: true });
        });
        this.wake = undefined;
      }
    })();
  }

  /** A mail was queued: send it now. */
  poke(): void {
    this.pokes++;
    this.wake?.();
  }

  /** Waits for the loop to end and gives the outbox one last chance to drain. */
  async stop(): Promise<void> {
    this.wake?.();
    await this.running;
    await this.sender.drain().catch(() => undefined);
    this.sender.close();
  }
}
