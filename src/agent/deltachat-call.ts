/**
 * Calls with Delta Chat users, at the account's mail edge: a Delta Chat
 * contact's call mail (`Chat-Content: call`, `call-accepted`,
 * `call-ended`; src/wire/deltachat-call.ts maps them) is read into the
 * peerdial message the phone takes, and peerdial's offer, answer,
 * decline, cancel and hang-up to a Delta Chat contact are written in
 * Delta Chat's dialect (src/wire/deltachat.ts composes the mail). From
 * there on a Delta Chat call is a call like any: the policy, ringing,
 * auto-answer and the camera do not know the difference.
 *
 * The watcher hands over a Delta Chat contact's chat mail (mail/inbox-
 * chat-mail.ts; only contacts marked as Delta Chat users: `contacts
 * import-vcard`, SecureJoin); Account.classifyDeltaChatCall keeps the call
 * signals, signed by the key pinned for the contact, and leaves the rest
 * (SecureJoin steps, messages) to agent/securejoin.ts. Nothing is moved.
 */
import { mediaSummary } from '../session/sdp-browser.js';
import type * as openpgp from 'openpgp';
import type { Contact } from '../store/contacts.js';
import { composeDeltaChatMail } from '../wire/deltachat.js';
import { CHAT_VERSION_HEADER } from '../wire/deltachat-headers.js';
import { parseDeltaChatMail } from '../wire/deltachat-parse.js';
import { callMessage, callSignalHeaders, offerMessageId, readCallSignal } from '../wire/deltachat-call.js';
import type { BuiltMail } from '../wire/build.js';
import { headerValues, HEADER_VERSION, type HeaderSource } from '../wire/headers.js';
import type { Identity } from '../wire/identity.js';
import type { PeerdialMessage } from '../wire/message.js';
import type { ParseResult } from '../wire/parse.js';
import { sanitizeText } from '../wire/sanitize.js';

/** A Delta Chat chat mail (Chat-Version, no Peerdial-Version), from its outer headers. */
export function isDeltaChatMail(headers: HeaderSource): boolean {
  return headerValues(headers, CHAT_VERSION_HEADER).length > 0 && headerValues(headers, HEADER_VERSION).length === 0;
}

/**
 * Reads one Delta Chat mail from a Delta Chat contact: a call signal
 * becomes a verified peerdial message; everything else is a rejection
 * (`not-ours` for chat mail that is no call). An offer that rang out
 * already is `expired` (a missed call).
 */
export async function classifyDeltaChat(
  raw: Buffer,
  ctx: { self: Identity; now: Date; contact: (email: string) => Contact | undefined; key: (c: Contact) => Promise<openpgp.PublicKey | undefined> },
): Promise<ParseResult> {
  const keys = new Map<string, openpgp.PublicKey>();
  const fromLine = /^From:[^\r\n]*<([^<>\s]+)>/im.exec(raw.subarray(0, 64 * 1024).toString('latin1'))?.[1]?.toLowerCase();
  const contact = fromLine ? ctx.contact(fromLine) : undefined;
  if (contact?.deltaChat) {
    const k = await ctx.key(contact);
    if (k) keys.set(contact.email, k);
  }
  const parsed = await parseDeltaChatMail(raw, { self: ctx.self, now: ctx.now, knownKey: (addr) => keys.get(addr.toLowerCase()) });
  if (!parsed.ok) return { ok: false, reason: parsed.reason, detail: parsed.detail, ...(parsed.messageId ? { messageId: parsed.messageId } : {}), ...(parsed.from ? { from: parsed.from } : {}) };
  const mail = parsed.mail;
  const c = ctx.contact(mail.from);
  const no = (reason: 'not-ours' | 'key-mismatch' | 'malformed' | 'expired', detail: string, message?: PeerdialMessage): ParseResult => ({
    ok: false,
    reason,
    detail: sanitizeText(detail),
    messageId: mail.messageId,
    from: mail.from,
    ...(message ? { message } : {}),
  });
  if (!c?.deltaChat) return no('not-ours', `a Delta Chat mail from ${mail.from}, who is no Delta Chat contact here`);
  // what is no call (a SecureJoin step, a message) is not this reader's business, whatever key signed it
  const read = readCallSignal(mail);
  if (!read.ok) return no(read.reason === 'not-a-call' ? 'not-ours' : 'malformed', read.detail);
  if (!mail.encrypted || !mail.senderKey || !mail.senderFingerprint) return no('not-ours', 'an unencrypted Delta Chat call: calls come encrypted');
  if (mail.keyFromMail || mail.senderFingerprint !== c.fingerprint) return no('key-mismatch', `signed by key ${mail.senderFingerprint}, not by the ${c.trust ?? 'pinned'} key ${c.fingerprint ?? '(none)'} of ${mail.from}`);
  const message = callMessage(read.call, mail, ctx.self.email, ctx.now, mediaSummary);
  if (message.kind === 'offer' && Date.parse(message.expires) <= ctx.now.getTime()) return no('expired', `the Delta Chat call from ${mail.from} had stopped ringing when it arrived`, message);
  return {
    ok: true,
    message,
    messageId: mail.messageId,
    ...(mail.inReplyTo ? { inReplyTo: mail.inReplyTo } : {}),
    senderKey: mail.senderKey,
    senderFingerprint: mail.senderFingerprint,
    learnedKey: false,
    encrypted: true,
  };
}

/** peerdial's call message to a Delta Chat contact, as Delta Chat's call mail (signed, encrypted to `key`). */
export async function composeDeltaChatCall(
  message: PeerdialMessage,
  o: { sender: Identity; senderName?: string; contact: Contact; key: openpgp.PublicKey; date: Date; inReplyTo?: string },
): Promise<BuiltMail> {
  const { headers, text } = callSignalHeaders(message, mediaSummary);
  return composeDeltaChatMail({
    sender: o.sender,
    ...(o.senderName ? { senderName: o.senderName } : {}),
    to: o.contact.email,
    recipientKey: o.key,
    date: o.date,
    // the offer's Message-ID carries the call id: Delta Chat's answer names it in In-Reply-To
    ...(message.kind === 'offer' ? { messageId: offerMessageId(message.callId, o.sender.email) } : {}),
    ...(o.inReplyTo ? { inReplyTo: o.inReplyTo, references: [o.inReplyTo] } : {}),
    headers,
    text,
  });
}
