/**
 * The doctor's IDLE timing: a peerdial `announce` to ourselves, timed from
 * SMTP submission until our own IDLE watcher has it. The watcher recognises
 * it by Message-ID and files it into peerdial's folder like any verified
 * peerdial mail; other mail is left alone (a throw-away ledger starting at
 * the current end of the INBOX: the agent's mark is not moved).
 */
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { Account } from '../agent/account.js';
import { connectImap } from '../mail/imap.js';
import { sendRaw, smtpTransport } from '../mail/smtp.js';
import { InboxWatcher, type Verdict } from '../mail/inbox.js';
import { Ledger } from '../store/ledger.js';
import { messageIdOf, selfTestMail } from '../agent/desk.js';
import { PeerdialError } from '../errors.js';
import { watchedMailboxes } from '../agent/mailbox.js';
import { withTimeout } from './result.js';

/** Sends a peerdial `announce` to ourselves and times it until our IDLE watcher has it; files it into peerdial's folder. */
export async function timeIdle(account: Account, timeoutMs: number): Promise<{ ms: number }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'peerdial-doctor-'));
  const client = await connectImap(await account.imapTarget());
  const ac = new AbortController();
  let watching: Promise<void> | undefined;
  try {
    const ledger = new Ledger(dir);
    let ourId = '';
    let resolveSeen!: () => void;
    const seen = new Promise<void>((r) => (resolveSeen = r));
    const watcher = new InboxWatcher<Verdict>({
      client,
      ledger,
      folder: account.account.folder,
      ...watchedMailboxes(account),
      classify: async (raw) => {
        const id = messageIdOf(raw);
        // Only our test mail is "verified" (and so filed); everything else stays where it is, untouched.
        return id && id === ourId
          ? { ok: true, messageId: id, nonce: randomBytes(8).toString('hex'), expires: new Date(Date.now() + 60_000).toISOString() }
          : { ok: false, messageId: id, reason: 'not-doctors', detail: 'not the doctor\'s test mail' };
      },
      onMail: (m) => {
        if (m.verdict.ok) resolveSeen();
      },
    });
    await watcher.prepare();
    // Start at the current end of the INBOX (and the folder): older mail is not the doctor's business.
    const mb = client.mailbox;
    if (mb) await ledger.setMark(mb.path, { uidValidity: String(mb.uidValidity), lastUid: Number(mb.uidNext) - 1 });
    const other = watchedMailboxes(account).alsoCheck;
    const st = other ? await client.status(other, { uidNext: true, uidValidity: true }) : undefined;
    if (other && st) await ledger.setMark(other, { uidValidity: String(st.uidValidity), lastUid: Number(st.uidNext) - 1 });
    const built = await selfTestMail(account);
    ourId = built.messageId;
    watching = watcher.watch({ signal: ac.signal });
    const target = await account.smtpTarget();
    const transport = await smtpTransport(target);
    const t0 = Date.now();
    try {
      await sendRaw(transport, target, { from: account.email, to: [account.email] }, built.raw);
    } finally {
      transport.close();
    }
    await withTimeout(Promise.race([seen, watching!.then(() => Promise.reject(new PeerdialError('IMAP_FAILED', 'the IMAP connection ended')))]), timeoutMs, 'the test mail to yourself');
    return { ms: Date.now() - t0 };
  } finally {
    ac.abort();
    // the watcher's pass ends (its last ledger write) before its ledger is removed
    await watching?.catch(() => undefined);
    await client.logout().catch(() => client.close());
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}
