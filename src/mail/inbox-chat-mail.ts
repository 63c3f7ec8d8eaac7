/**
 * Delta Chat chat mail (a `Chat-Version` header) as the inbox watcher
 * (src/mail/inbox.ts) hands it over, when its owner asks for it
 * (InboxOptions.chatMail): envelope and size first, then the owner says
 * whether it wants this sender's mail at all (a SecureJoin of its own, a
 * Delta Chat contact); only then is the body read. Read only: BODY.PEEK,
 * never a flag, a move or a deletion; the mail stays where it is for
 * whatever else reads the mailbox. Each mail read is recorded in the
 * ledger, so it is read once.
 */
import { LIMITS } from '../wire/limits.js';
import type { InboxOptions, Verdict } from './inbox-types.js';

/** The IMAP SEARCH criterion for chat mail: the header is there, whatever its value. */
export const CHAT_MAIL_SEARCH = { header: { 'Chat-Version': true } } as const;

/** Reads the chat mail with this UID when the owner wants it; true when it was handed over. */
export async function handleChatMail<V extends Verdict>(o: InboxOptions<V>, uid: number, box: string, countCommand: () => void): Promise<boolean> {
  const chat = o.chatMail;
  if (!chat) return false;
  const c = o.client;
  const now = o.now?.() ?? new Date();
  countCommand();
  const meta = await c.fetchOne(String(uid), { uid: true, size: true, envelope: true }, { uid: true });
  if (!meta || !meta.size || meta.size > LIMITS.mailBytes) return false;
  const from = meta.envelope?.from?.length === 1 ? meta.envelope.from[0]?.address?.toLowerCase() : undefined;
  const messageId = meta.envelope?.messageId || '';
  if (!messageId || !(await chat.wants(from))) return false;
  if ((await o.ledger.resultOf(messageId)) !== undefined) return false;
  countCommand();
  const body = await c.fetchOne(String(uid), { uid: true, source: { maxLength: LIMITS.mailBytes } }, { uid: true });
  if (!body || !body.source || body.source.length === 0) return false;
  const result = await chat.handle(body.source);
  await o.ledger.record({ messageId, result: result.handled ? 'accepted' : 'chat-mail-left', now });
  // a call signal (agent/deltachat-call.ts) goes to the owner like peerdial's own mail; it stays where it is
  if (result.verdict) await o.onMail({ uid, verdict: result.verdict, folder: box });
  return true;
}
