/**
 * The doctor's `mail-kept` check: whether another mail client deletes or
 * moves peerdial mail before peerdial can read it.
 */
import type { Account } from '../agent/account.js';
import { connectImap } from '../mail/imap.js';
import { sendRaw, smtpTransport } from '../mail/smtp.js';
import { selfTestMail } from '../agent/desk.js';
import type { Found } from './result.js';

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Sends a peerdial mail to ourselves and leaves it alone for `watchMs`: if
 * it disappears from the INBOX and peerdial's folder meanwhile, another
 * mail client deletes (or moves) peerdial mail before peerdial can read it.
 * The test mail is removed at the end (only it: by UID).
 */
export async function keptCheck(account: Account, timeoutMs: number, watchMs: number): Promise<Found> {
  const folder = account.account.folder;
  const client = await connectImap(await account.imapTarget());
  try {
    const built = await selfTestMail(account);
    const boxes = ['INBOX', folder];
    for (const box of boxes) {
      // the folder may not exist yet (a fresh account)
      if (box !== 'INBOX') await client.mailboxCreate(box).catch(() => undefined);
    }
    const where = async (): Promise<{ box: string; uid: number } | undefined> => {
      for (const box of boxes) {
        await client.mailboxOpen(box);
        const uids = (await client.search({ header: { 'message-id': built.messageId } }, { uid: true })) || [];
        if (uids.length) return { box, uid: uids[0]! };
      }
      return undefined;
    };
    const target = await account.smtpTarget();
    const transport = await smtpTransport(target);
    try {
      await sendRaw(transport, target, { from: account.email, to: [account.email] }, built.raw);
    } finally {
      transport.close();
    }
    const sent = Date.now();
    let seen: { box: string; uid: number } | undefined;
    while (!seen && Date.now() - sent < timeoutMs) {
      seen = await where();
      if (!seen) await pause(250);
    }
    const gone: Found = {
      verdict: 'fail',
      detail: '',
      hint: `Another mail program on this address deletes or moves peerdial mail before peerdial reads it: calls can be lost. Turn on the server-side rule (peerdial init --sieve --force with your usual options), which files peerdial mail into ${folder} at delivery; in Delta Chat, turn off "Delete from server" (Settings, Chats and media, Delete messages from server: never).`,
    };
    if (!seen) {
      return { ...gone, detail: `the test mail to yourself did not show up in INBOX or ${folder} within ${Math.round(timeoutMs / 1000)} s: another mail client deleted or moved it at once, or a filter put it elsewhere (spam?)`, hint: `${gone.hint} If a filter of yours moves it, let mail with the header Peerdial-Version stay in the INBOX.` };
    }
    const firstSeen = seen.box;
    while (Date.now() - sent < watchMs) {
      await pause(500);
      seen = await where();
      if (!seen) {
        return { ...gone, detail: `the test mail to yourself was deleted or moved by another mail client ${Date.now() - sent} ms after it was sent (it had arrived in ${firstSeen}; peerdial had not read it)` };
      }
    }
    // only our own test mail goes: by UID in the mailbox it is in
    await client.mailboxOpen(seen.box);
    await client.messageDelete(String(seen.uid), { uid: true }).catch(() => undefined);
    return {
      verdict: 'ok',
      detail: `a test mail to yourself stayed ${Math.round(watchMs / 1000)} s in ${seen.box} untouched${seen.box === folder && firstSeen === folder ? ' (filed there at delivery by the server-side rule)' : ''}; removed again`,
    };
  } finally {
    await client.logout().catch(() => client.close());
  }
}
