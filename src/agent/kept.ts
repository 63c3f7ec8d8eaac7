/**
 * A second look at kept mail (src/store/kept.ts): mail that arrived from
 * somebody before they became a contact. It is still in INBOX, untouched;
 * when its sender is a contact now, it is fetched again by its Message-ID
 * and sorted like new mail (its own expiry still applies), then handed on
 * like any other. Run when the agent starts, when `contacts add` asks the
 * running agent, and by `peerdial inbox`.
 */
import { connectImap } from '../mail/imap.js';
import type { InboxMail } from '../mail/inbox.js';
import { LIMITS } from '../wire/limits.js';
import type { Account, Received } from './account.js';

export interface RecheckResult {
  /** Kept mails from senders who are contacts now, looked at again. */
  looked: number;
  /** Of those, accepted now. */
  accepted: number;
}

export async function recheckKept(acc: Account, onMail: (mail: InboxMail<Received>) => Promise<void> | void, only?: string): Promise<RecheckResult> {
  const now = acc.clock();
  const contacts = (await acc.contacts.list()).filter((c) => !c.blocked && (!only || c.email === only.toLowerCase()));
  const due = await acc.kept.from(new Set(contacts.map((c) => c.email)), now);
  const result: RecheckResult = { looked: 0, accepted: 0 };
  if (!due.length) return result;
  const client = await connectImap(await acc.imapTarget());
  try {
    await client.mailboxOpen('INBOX');
    for (const k of due) {
      const uids = ((await client.search({ header: { 'message-id': k.messageId } }, { uid: true })) || []).sort((a, b) => a - b);
      const uid = uids[0];
      const meta = uid === undefined ? undefined : await client.fetchOne(String(uid), { uid: true, size: true, source: { maxLength: LIMITS.mailBytes } }, { uid: true });
      await acc.kept.drop(k.messageId);
      if (!meta || !meta.source || (meta.size ?? 0) > LIMITS.mailBytes) continue;
      result.looked++;
      const verdict = await acc.classify(meta.source, { recheck: k.messageId });
      await acc.ledger.record({
        messageId: k.messageId,
        result: verdict.ok ? 'accepted' : verdict.reason,
        now: acc.clock(),
        ...(verdict.nonce ? { nonce: verdict.nonce } : {}),
        ...(verdict.expires ? { expires: verdict.expires } : {}),
      });
      let folder = 'INBOX';
      if (verdict.ok) {
        result.accepted++;
        await client.messageMove(String(uid), acc.account.folder, { uid: true });
        folder = acc.account.folder;
      }
      await onMail({ uid: uid!, verdict, folder });
    }
  } finally {
    await client.logout().catch(() => client.close());
  }
  return result;
}
