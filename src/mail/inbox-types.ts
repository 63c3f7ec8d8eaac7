/**
 * What the inbox watcher (src/mail/inbox.ts) is given and what it reports:
 * the classifier's verdict on a mail, a mail handled, the result of a pass,
 * the count of reply checks, and the watcher's options.
 */
import type { ImapFlow } from 'imapflow';
import type { Ledger } from '../store/ledger.js';
import type { MailOutline } from '../wire/parse.js';
import type { ReplyCheckPlan } from './reply-checks.js';

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
  /** New mail in this pass was first noticed by IDLE's EXISTS or by a check for an expected reply (a NOOP's EXISTS). */
  seenBy?: 'idle' | 'reply-check';
}

/** What the reply checks cost: IMAP NOOPs sent for them, and passes whose new mail they noticed first. */
export interface ReplyCheckCount {
  noops: number;
  found: number;
}

export interface InboxOptions<V extends Verdict> {
  client: ImapFlow;
  ledger: Ledger;
  folder: string;
  mailbox?: string;
  /**
   * Another mailbox to check on every pass, beside the watched one (IDLE
   * stays on `mailbox`): the INBOX while a server-side rule delivers
   * peerdial mail into the folder, for mail that came before the rule.
   * Checked with a STATUS; selected only when it has new mail.
   */
  alsoCheck?: string;
  /**
   * First look, from size and outer headers only: a verdict here (a
   * rejection) means the body is never fetched. Undefined: fetch it.
   */
  screen?: (outline: MailOutline, uid: number) => Promise<V | undefined>;
  classify: (raw: Buffer, uid: number) => Promise<V>;
  onMail: (mail: InboxMail<V>) => Promise<void> | void;
  pollMs?: number;
  now?: () => Date;
  onProgress?: (e: { type: 'checked'; result: CheckResult } | { type: 'idle' } | { type: 'poll'; ms: number } | { type: 'reply-check' }) => void;
  /**
   * Delta Chat chat mail (src/mail/inbox-chat-mail.ts): which senders'
   * mail the owner reads (`wants`, from the envelope sender) and what it
   * does with it. Without it chat mail is not looked at. Never moved.
   */
  chatMail?: {
    /** Anything to read at all (an invite or join of its own open, a Delta Chat contact)? When not, no search is made. */
    active: () => Promise<boolean>;
    wants: (from: string | undefined) => Promise<boolean>;
    /** A verdict comes back for a mail that is a call (a Delta Chat call signal): it is reported through onMail like peerdial's own. */
    handle: (raw: Buffer) => Promise<{ handled: boolean; verdict?: V }>;
  };
  /** The schedule of checks while a reply is expected (REPLY_CHECKS). */
  replyChecks?: ReplyCheckPlan;
}
