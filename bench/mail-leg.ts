/**
 * One mail leg split into its parts (issue 17, item 3): a signed, encrypted
 * offer goes from one peerdial account to another through the real Postfix
 * + Dovecot, and each step is timed from the moment the sender starts its
 * SMTP submission:
 *
 *   submit     SMTP accepted the mail (STARTTLS + AUTH + DATA, fresh connection)
 *   delivery   the mail is in the mailbox: first seen by a second connection
 *              that NOOPs every POLL_MS (an observer, not part of peerdial)
 *   notified   the receiver's own connection got the EXISTS (IDLE's notice,
 *              or a reply check's NOOP when a reply is expected)
 *   fetched    the receiver's watcher has the mail's bytes (search + fetch)
 *   verified   OpenPGP decryption + signature + policy checks done
 *   filed      the mail moved into the peerdial folder: the watcher holds it
 *
 * Every other round expects a reply (InboxWatcher.expectReply, as the
 * caller does from "offer sent" to the answer), so both ways of waiting are
 * measured side by side, each after a quiet spell as before a real answer.
 */
import nodemailer from 'nodemailer';
import type { ImapFlow } from 'imapflow';
import { connectImap } from '../src/mail/imap.js';
import { InboxWatcher, type CheckResult } from '../src/mail/inbox.js';
import type { Received } from '../src/agent/account.js';
import type { MailStack } from '../test/harness/mail-stack.js';
import type { Peer } from '../test/harness/peers.js';
import { now, sleep, summarize, type Summary } from './lib.js';

/** How often the observer connection looks for the delivered mail. */
const POLL_MS = 10;
/** The quiet spell before each mail (IDLE's notice is slowest after one). */
const QUIET_MS = 1_500;

export const LEG_PARTS = ['submit', 'delivery', 'notified', 'fetched', 'verified', 'filed'] as const;
export type LegPart = (typeof LEG_PARTS)[number];

export interface MailLegRound {
  expecting: boolean;
  /** ms from the start of the SMTP submission */
  at: Record<LegPart, number>;
  seenBy?: CheckResult['seenBy'];
  noops: number;
}

export interface MailLegResult {
  rounds: MailLegRound[];
  /** per way of waiting, per part: ms from submit start */
  idle: Record<LegPart, Summary>;
  expected: Record<LegPart, Summary>;
  /** NOOPs the reply checks spent per expected mail */
  noopsPerMail: Summary;
}

async function waitUntil<T>(what: string, f: () => T | undefined, ms = 30_000): Promise<T> {
  const end = now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (now() > end) throw new Error(`mail leg: ${what} did not happen within ${ms} ms`);
    await sleep(2);
  }
}

export async function measureMailLeg(stack: MailStack, sender: Peer, receiver: Peer, roundsPerWay: number): Promise<MailLegResult> {
  const s = await sender.open();
  const r = await receiver.open();
  const target = await r.imapTarget();
  const client: ImapFlow = await connectImap(target);
  const observer: ImapFlow = await connectImap(target);
  await observer.mailboxOpen('INBOX');

  // the receiver's watcher, instrumented at its edges (its own code unchanged)
  let notifiedAt = 0;
  let fetchedAt = 0;
  let verifiedAt = 0;
  let filedAt = 0;
  client.on('exists', () => (notifiedAt ||= now()));
  const fetchOne = client.fetchOne.bind(client);
  client.fetchOne = (async (...args: Parameters<ImapFlow['fetchOne']>) => {
    const res = await fetchOne(...args);
    if ((args[1] as { source?: unknown }).source) fetchedAt ||= now();
    return res;
  }) as ImapFlow['fetchOne'];
  let idles = 0;
  const last: { check?: CheckResult } = {};
  const watcher = new InboxWatcher<Received>({
    client,
    ledger: r.ledger,
    folder: r.account.folder,
    screen: (o) => r.screen(o),
    classify: async (raw) => {
      const v = await r.classify(raw);
      verifiedAt ||= now();
      return v;
    },
    onMail: (m) => {
      if (m.verdict.ok) filedAt ||= now();
      else if (process.env.BENCH_DEBUG) console.error('mail leg: not ok', m.verdict);
    },
    onProgress: (e) => {
      if (e.type === 'idle') idles++;
      if (e.type === 'checked' && e.result.filed > 0) last.check = e.result;
    },
  });
  await watcher.prepare();
  const ac = new AbortController();
  const watching = watcher.watch({ signal: ac.signal });
  const rounds: MailLegRound[] = [];
  try {
    await waitUntil('the watcher in IDLE', () => idles > 0);
    for (let i = 0; i < roundsPerWay * 2; i++) {
      const expecting = i % 2 === 1;
      await sleep(QUIET_MS);
      const q = await s.queue({ kind: 'offer', to: receiver.email, sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n', purpose: 'chat' });
      const raw = await s.outbox.raw(q.entry.id);
      await s.outbox.remove(q.entry.id);
      notifiedAt = fetchedAt = verifiedAt = filedAt = 0;
      delete last.check;
      const noops0 = watcher.replyChecks.noops;
      const cancel = expecting ? watcher.expectReply({ until: new Date(Date.now() + 30_000) }) : () => undefined;
      const transport = nodemailer.createTransport(stack.smtpConfig(senderUser(sender)));
      const t0 = now();
      let submitAt = 0;
      let deliveredAt = 0;
      // the observer's EXISTS: the watcher may file the mail away before the next NOOP, so the count alone could miss it
      const delivered = (e: { count: number; prevCount: number }) => {
        if (e.count > e.prevCount) deliveredAt ||= now();
      };
      observer.on('exists', delivered);
      const polling = (async () => {
        while (!deliveredAt && now() - t0 < 30_000) {
          await observer.noop();
          if (!deliveredAt) await sleep(POLL_MS);
        }
      })();
      try {
        await transport.sendMail({ envelope: { from: sender.email, to: [receiver.email] }, raw });
        submitAt = now();
      } finally {
        transport.close();
      }
      await waitUntil('the receiver holding the filed mail', () => filedAt || undefined);
      cancel();
      await polling;
      observer.off('exists', delivered);
      const ms = (t: number) => (t ? t - t0 : NaN);
      rounds.push({
        expecting,
        at: { submit: ms(submitAt), delivery: ms(deliveredAt), notified: ms(notifiedAt), fetched: ms(fetchedAt), verified: ms(verifiedAt), filed: ms(filedAt) },
        ...seenOf(last.check),
        noops: watcher.replyChecks.noops - noops0,
      });
    }
  } finally {
    ac.abort();
    await watching.catch(() => undefined);
    await client.logout().catch(() => client.close());
    await observer.logout().catch(() => observer.close());
  }
  const per = (expecting: boolean) =>
    Object.fromEntries(LEG_PARTS.map((p) => [p, summarize(rounds.filter((x) => x.expecting === expecting).map((x) => x.at[p]).filter((v) => Number.isFinite(v)))])) as Record<LegPart, Summary>;
  return { rounds, idle: per(false), expected: per(true), noopsPerMail: summarize(rounds.filter((x) => x.expecting).map((x) => x.noops)) };
}

/** Which wait noticed the mail, when the pass says so. */
function seenOf(c: CheckResult | undefined): { seenBy?: CheckResult['seenBy'] } {
  return c?.seenBy ? { seenBy: c.seenBy } : {};
}

/** The mail stack's user name of a peer (the local part of its address). */
function senderUser(p: Peer): string {
  return p.email.slice(0, p.email.indexOf('@'));
}
