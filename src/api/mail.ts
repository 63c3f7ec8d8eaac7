/**
 * Mail-level operations: announce this machine's addresses to contacts,
 * send what is queued, and check the inbox once. Announcing and the inbox
 * line live in agent/ (the agent uses them too); this is their public face.
 */
import type { Account } from '../agent/account.js';
import { checkOnce } from '../agent/mailbox.js';
import { flushOutbox } from '../agent/announce.js';
import { inboxItem, type InboxItem } from '../agent/inbox-item.js';
import type { CheckResult } from '../mail/inbox.js';
import type { ChatMailResult } from '../agent/securejoin.js';

export { addressEntries, announce, flushOutbox, type AnnounceOptions, type AnnounceResult } from '../agent/announce.js';
export { inboxItem, type InboxItem } from '../agent/inbox-item.js';
export type { ChatMailResult } from '../agent/securejoin.js';

/** Checks the inbox once: fetch, verify and list what arrived. */
export async function checkInbox(account: Account, onItem?: (item: InboxItem) => void): Promise<{ items: InboxItem[]; result: CheckResult; chat: ChatMailResult[] }> {
  const items: InboxItem[] = [];
  const chat: ChatMailResult[] = [];
  const result = await checkOnce(
    account,
    (mail) => {
      const item = inboxItem(mail);
      items.push(item);
      onItem?.(item);
    },
    (e) => {
      if (e.type === 'chat-mail') chat.push(e.result);
    },
  );
  // an accepted introduction (or a SecureJoin step) left its answer in the outbox: send it now
  if (items.some((i) => i.ok && i.kind === 'introduce') || chat.some((c) => c.queued)) await flushOutbox(account).catch(() => undefined);
  return { items, result, chat };
}
