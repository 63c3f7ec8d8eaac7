/**
 * Figure 4: the cost of one check of a mailbox holding 100, 10,000 and
 * 100,000 foreign messages (written straight into the Maildir), and the
 * time of the first sync of a fresh peerdial account on each.
 */
import { chown, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { MailStack } from '../test/harness/mail-stack.js';
import type { Peer } from '../test/harness/peers.js';
import { connectImap } from '../src/mail/imap.js';
import { InboxWatcher } from '../src/mail/inbox.js';
import { checkOnce } from '../src/agent/mailbox.js';
import type { Received } from '../src/agent/account.js';
import { ImapFlow } from 'imapflow';
import { now, summarize, type Summary } from './lib.js';

const MAIL_UID = 65534;

function foreignMail(n: number, to: string): Buffer {
  const body = `Hello,\r\n\r\nthis is ordinary mail number ${n}, nothing for peerdial.\r\n`.repeat(4);
  return Buffer.from(
    `From: Someone ${n % 97} <someone${n % 97}@elsewhere.test>\r\n` +
      `To: ${to}\r\n` +
      `Subject: ordinary mail ${n}\r\n` +
      `Date: ${new Date(Date.UTC(2025, 0, 1) + n * 60_000).toUTCString()}\r\n` +
      `Message-ID: <foreign-${n}-${process.pid}@elsewhere.test>\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n` +
      body,
  );
}

let fileCounter = 0;

/** Writes `count` foreign mails into the user's Maildir (new/), as a delivery agent would. */
export async function fillMaildir(stack: MailStack, name: string, count: number, first = 0): Promise<number> {
  const u = stack.users[name]!;
  const t0 = now();
  const batch = 256;
  for (let i = 0; i < count; i += batch) {
    const jobs: Promise<void>[] = [];
    for (let j = i; j < Math.min(count, i + batch); j++) {
      jobs.push(
        (async () => {
          const data = foreignMail(first + j, u.email);
          const base = `${1_700_000_000 + first + j}.M${j}P${process.pid}Q${++fileCounter}.bench,S=${data.length}`;
          const tmp = path.join(u.maildir, 'tmp', base);
          await writeFile(tmp, data, { mode: 0o600 });
          await chown(tmp, MAIL_UID, MAIL_UID);
          await rename(tmp, path.join(u.maildir, 'new', base));
        })(),
      );
    }
    await Promise.all(jobs);
  }
  return now() - t0;
}

export interface ScaleResult {
  messages: number;
  fillMs: number;
  /** first `checkOnce` of a fresh account: login, LIST, SELECT (Dovecot indexes the Maildir), check of every message */
  firstSyncMs: number;
  firstSyncCheckMs: number;
  firstSyncScanned: number;
  /** one check on an open connection right after one more foreign mail arrived (and a NOOP saw it) */
  check: Summary;
  /** baseline: a bare imapflow FETCH of one header field of a just-arrived mail, same mailbox */
  bareFetch: Summary;
  checkCommands: number;
  /** `peerdial inbox`-style: connect + login + SELECT + check + logout */
  fullCheck: Summary;
}

/** Measures one mailbox size; `peer` is a fresh account whose mailbox holds `messages` foreign mails. */
export async function measureScale(stack: MailStack, peer: Peer, messages: number, fillMs: number, repeats: number): Promise<ScaleResult> {
  const account = await peer.open();
  const t0 = now();
  const first = await checkOnce(account, () => undefined);
  const firstSyncMs = now() - t0;

  const client = await connectImap(await account.imapTarget());
  const checks: number[] = [];
  let commands = 0;
  try {
    const watcher = new InboxWatcher<Received>({
      client,
      ledger: account.ledger,
      folder: account.account.folder,
      classify: (raw) => account.classify(raw),
      onMail: () => undefined,
    });
    await watcher.prepare();
    await watcher.check();
    let extra = messages + 1_000_000;
    for (let i = 0; i < repeats; i++) {
      await stack.deliverRaw(peer.name, foreignMail(extra++, stack.users[peer.name]!.email));
      // The agent learns of new mail from IDLE's EXISTS and ends IDLE with a
      // NOOP, which makes Dovecot sync the Maildir; do the same, untimed.
      await client.noop();
      const c0 = watcher.commandCount;
      const s = now();
      const r = await watcher.check();
      checks.push(now() - s);
      commands = watcher.commandCount - c0;
      if (r.scanned !== 1) throw new Error(`check scanned ${r.scanned} mails, expected the 1 new one`);
    }
  } finally {
    await client.logout().catch(() => client.close());
  }
  // The baseline at the same size: what any client pays to read the new
  // mail's header (a bare imapflow FETCH of one header field). Dovecot's
  // first access to a new mail's content costs more in a big Maildir.
  const bare = new ImapFlow({ ...stack.imapConfig(peer.name), logger: false, disableAutoIdle: true });
  bare.on('error', () => undefined);
  await bare.connect();
  const fetches: number[] = [];
  try {
    await bare.mailboxOpen('INBOX');
    let extra = messages + 2_000_000;
    let last = 0;
    for (let i = 0; i < repeats; i++) {
      await stack.deliverRaw(peer.name, foreignMail(extra++, stack.users[peer.name]!.email));
      await bare.noop();
      const uids = ((await bare.search({ uid: `${last + 1}:*` }, { uid: true })) || []).filter((u) => u > last);
      last = Math.max(...uids);
      const s = now();
      await bare.fetchAll(String(last), { uid: true, headers: ['peerdial-version'] }, { uid: true });
      fetches.push(now() - s);
    }
  } finally {
    await bare.logout().catch(() => bare.close());
  }
  const full: number[] = [];
  for (let i = 0; i < Math.max(3, Math.floor(repeats / 2)); i++) {
    const s = now();
    await checkOnce(account, () => undefined);
    full.push(now() - s);
  }
  return {
    messages,
    fillMs,
    firstSyncMs,
    firstSyncCheckMs: first.ms,
    firstSyncScanned: first.scanned,
    check: summarize(checks),
    bareFetch: summarize(fetches),
    checkCommands: commands,
    fullCheck: summarize(full),
  };
}
