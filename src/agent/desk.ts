/**
 * What commands run beside the agent ask of it over the control socket, so
 * that one process alone consumes the account's mailbox and outbox:
 *   - `peerdial inbox`: a check now, and every mail the agent handled since
 *     the last time somebody asked (what `inbox` alone would have listed);
 *   - `messages`: a check now;
 *   - `announce`: queue and send through the agent's outbox;
 *   - `outbox flush`: one pass of the agent's own sender;
 *   - `doctor`: the agent's mailbox connection, and the IDLE timing done
 *     with the agent's own watcher (a test mail to itself, filed like the
 *     doctor files it, never handed to the phone).
 * The agent feeds it what its mailbox does (watcherChanged, checked,
 * handled, classifyFirst) and serves requests().
 */
import { randomBytes } from 'node:crypto';
import { PeerdialError } from '../errors.js';
import type { Account, Received } from './account.js';
import type { OutboxLoop } from './mailbox.js';
import type { ControlRequests } from './control.js';
import type { CheckResult, InboxMail } from '../mail/inbox.js';
import type { DrainResult } from '../mail/outbox-sender.js';
import { sendRaw, smtpTransport } from '../mail/smtp.js';
import { buildMail } from '../wire/build.js';
import { newId } from '../wire/ids.js';
import { headerValues } from '../wire/headers.js';
import { announce, type AnnounceResult } from './announce.js';
import type { StandingAnswer } from '../wire/standing.js';
import { inboxItem, type InboxItem } from './inbox-item.js';

/** Mails kept for the next `peerdial inbox` (the oldest go first beyond this). */
const KEEP_ITEMS = 500;
/** How long an `inbox` request waits for the check it asked for. */
const CHECK_WAIT_MS = 60_000;

/** The request names, shared by the agent and the commands. */
export const DESK = {
  inbox: 'inbox',
  check: 'check',
  announce: 'announce',
  flush: 'outbox-flush',
  mailbox: 'mailbox',
  idleTiming: 'idle-timing',
} as const;

export interface DeskInbox {
  items: InboxItem[];
  result: CheckResult;
}

export interface DeskMailbox {
  connected: boolean;
  idle: boolean;
  pid: number;
}

/** A peerdial `announce` to oneself, the mail `peerdial doctor` times from submission to IDLE. */
export async function selfTestMail(account: Account): Promise<{ raw: Buffer; messageId: string }> {
  const now = new Date();
  const built = await buildMail(
    {
      v: 1,
      kind: 'announce',
      from: account.email,
      to: account.email,
      callId: newId(),
      created: now.toISOString(),
      expires: new Date(now.getTime() + 120_000).toISOString(),
      nonce: newId(16),
      // an announce needs an address; a documentation address (RFC 5737) says nothing
      // about this machine, and the announce rule takes it (loopback it refuses)
      addresses: [{ ip: '192.0.2.1', source: 'interface', scope: 'documentation' }],
      text: 'peerdial doctor: test of the mail path',
    },
    { sender: account.identity, date: now },
  );
  return { raw: built.raw, messageId: built.messageId };
}

/** The Message-ID of a raw mail (from its header section). */
export function messageIdOf(raw: Buffer): string {
  return headerValues(raw.subarray(0, 65536), 'message-id')[0] ?? '';
}

const NOTHING: CheckResult = { scanned: 0, ours: 0, filed: 0, left: 0, ms: 0 };

/** A voicemail's bytes stay in the message store; an inbox line over the socket carries no attachment data. */
function withoutAttachmentData(item: InboxItem): InboxItem {
  if (!item.message?.attachment) return item;
  return { ...item, message: { ...item.message, attachment: { ...item.message.attachment, data: '' } } };
}

export class Desk {
  private items: InboxItem[] = [];
  private watcher?: { poke(): void; readonly supportsIdle: boolean };
  private waiting = new Set<(r: CheckResult) => void>();
  private lastCheck?: CheckResult;
  private selfTests = new Map<string, () => void>();

  constructor(
    private readonly account: Account,
    private readonly outbox: OutboxLoop,
    /** A standing answer for an announce's recipient (one-mail calls), when this agent makes them. */
    private readonly standingFor?: (to: string) => Promise<StandingAnswer | undefined>,
  ) {}

  // ---- what the agent's mailbox reports

  watcherChanged(watcher: { poke(): void; readonly supportsIdle: boolean } | undefined): void {
    this.watcher = watcher;
  }

  checked(result: CheckResult): void {
    this.lastCheck = result;
    for (const w of [...this.waiting]) w(result);
    this.waiting.clear();
  }

  /** A mail the agent's watcher handled. True when it was the doctor's test mail: nobody else's business. */
  handled(mail: InboxMail<Received>): boolean {
    const done = this.selfTests.get(mail.verdict.messageId);
    if (done) {
      done();
      return true;
    }
    this.items.push(withoutAttachmentData(inboxItem(mail)));
    if (this.items.length > KEEP_ITEMS) this.items.splice(0, this.items.length - KEEP_ITEMS);
    return false;
  }

  /** The doctor's test mail is decided here (verified, so it is filed); every other mail by the account. */
  classifyFirst(raw: Buffer): Received | undefined {
    if (this.selfTests.size === 0) return undefined;
    const id = messageIdOf(raw);
    if (!id || !this.selfTests.has(id)) return undefined;
    return { ok: true, messageId: id, nonce: randomBytes(8).toString('hex'), expires: new Date(Date.now() + 120_000).toISOString() };
  }

  // ---- what commands ask

  requests(): ControlRequests {
    return {
      [DESK.inbox]: async (): Promise<DeskInbox> => {
        const result = await this.checkNow();
        return { items: this.items.splice(0), result };
      },
      [DESK.check]: (): Promise<CheckResult> => this.checkNow(),
      [DESK.announce]: async (a): Promise<AnnounceResult> => {
        const to = Array.isArray(a.to) ? a.to.filter((x): x is string => typeof x === 'string') : [];
        const r = await announce(this.account, {
          ...(to.length ? { to } : {}),
          ...(typeof a.validSeconds === 'number' && Number.isFinite(a.validSeconds) ? { validSeconds: a.validSeconds } : {}),
          queueOnly: true,
          plain: a.plain === true,
          ...(this.standingFor ? { standingFor: this.standingFor } : {}),
        });
        if (a.queueOnly !== true) r.drain = await this.outbox.flush();
        else this.outbox.poke();
        return r;
      },
      [DESK.flush]: (a): Promise<DrainResult> => this.outbox.flush({ force: a.force === true }),
      [DESK.mailbox]: (): DeskMailbox => ({ connected: this.watcher !== undefined, idle: this.watcher?.supportsIdle ?? false, pid: process.pid }),
      [DESK.idleTiming]: (a) => this.timeIdle(typeof a.timeoutMs === 'number' ? a.timeoutMs : 20_000),
    };
  }

  /** Asks the watcher for a pass now and waits for it (the last result when no watcher is connected). */
  private async checkNow(): Promise<CheckResult> {
    const watcher = this.watcher;
    if (!watcher) return this.lastCheck ?? NOTHING;
    let timer: NodeJS.Timeout | undefined;
    const next = new Promise<CheckResult | undefined>((resolve) => {
      this.waiting.add(resolve);
      timer = setTimeout(() => {
        this.waiting.delete(resolve);
        resolve(undefined);
      }, CHECK_WAIT_MS);
    });
    watcher.poke();
    const r = await next;
    clearTimeout(timer);
    return r ?? this.lastCheck ?? NOTHING;
  }

  /** Sends the doctor's test mail to ourselves and times it until our own watcher has it. */
  private async timeIdle(timeoutMs: number): Promise<{ ms: number }> {
    if (!this.watcher) {
      throw new PeerdialError('IMAP_FAILED', 'The running agent is not connected to its mailbox right now.', { hint: 'See why: peerdial status' });
    }
    const mail = await selfTestMail(this.account);
    let timer: NodeJS.Timeout | undefined;
    const seen = new Promise<void>((resolve, reject) => {
      this.selfTests.set(mail.messageId, resolve);
      timer = setTimeout(() => reject(new PeerdialError('TCP_FAILED', `the test mail to yourself: not seen by the agent within ${Math.round(timeoutMs / 1000)} s`, { hint: 'Check that mail to yourself arrives in the INBOX (filters, spam folder).' })), timeoutMs);
    });
    seen.catch(() => undefined);
    try {
      const target = await this.account.smtpTarget();
      const transport = await smtpTransport(target);
      const t0 = Date.now();
      try {
        await sendRaw(transport, target, { from: this.account.email, to: [this.account.email] }, mail.raw);
      } finally {
        transport.close();
      }
      await seen;
      return { ms: Date.now() - t0 };
    } finally {
      clearTimeout(timer);
      this.selfTests.delete(mail.messageId);
    }
  }
}
