/**
 * Delta Chat's SecureJoin setup-contact protocol ("vc-" steps), both ways:
 *
 *   joiner (Bob)                          inviter (Alice)
 *   vc-request            (unencrypted: Secure-Join-Invitenumber, Bob's key in Autocrypt)
 *                                         vc-auth-required      (encrypted to Bob's key)
 *   vc-request-with-auth  (encrypted: Secure-Join-Auth, Secure-Join-Fingerprint = Bob's key)
 *                                         vc-contact-confirm
 *
 * The joiner checks that vc-auth-required is signed by the key whose
 * fingerprint the link named; the inviter that the auth token is one of
 * its open invites (one use, until it expires) and that the fingerprint
 * named is the key that signed. Steps after the first must gossip the
 * recipient's own key back (Autocrypt-Gossip), as Delta Chat checks too.
 * Both end with the other side a contact, verified, marked `deltaChat`
 * (later mail to them goes in Delta Chat's format).
 *
 * Which mail is looked at (wantsChatMail): only chat mail (Chat-Version)
 * while a Delta Chat invite of ours is open or a join of ours waits, and
 * chat mail from contacts marked Delta Chat. Nothing else; and nothing is
 * ever flagged, moved or deleted (mail/inbox-chat-mail.ts only reads).
 */
import { PeerdialError } from '../errors.js';
import type { AnswerMode, Contact } from '../store/contacts.js';
import { composeDeltaChatMail, type ChatHeader } from '../wire/deltachat.js';
import {
  SECURE_JOIN_AUTH_HEADER,
  SECURE_JOIN_FINGERPRINT_HEADER,
  SECURE_JOIN_HEADER,
  SECURE_JOIN_INVITENUMBER_HEADER,
} from '../wire/deltachat-headers.js';
import { headerOf, parseDeltaChatMail, type DeltaChatMail } from '../wire/deltachat-parse.js';
import { fingerprintOf, readPublicKey } from '../wire/identity.js';
import { secureJoinLink, type SecureJoinInvite } from '../wire/securejoin-link.js';
import { sanitizeText } from '../wire/sanitize.js';
import type * as openpgp from 'openpgp';
import type { Account } from './account.js';

/** What became of one chat mail. */
export interface ChatMailResult {
  /** It was a SecureJoin step of ours and was acted on. */
  handled: boolean;
  from?: string;
  step?: string;
  /** A reply waits in the outbox. */
  queued: boolean;
  /** The handshake ended: the contact is verified. */
  verified?: Contact;
  detail: string;
}

/** A Delta Chat invite link (with a one-time AUTH token) for `peerdial invite --delta-chat`. */
export async function createDeltaChatInvite(acc: Account, opts: { ttlSeconds?: number; name?: string; answer?: AnswerMode } = {}): Promise<{ link: string; expires: string }> {
  const pending = await acc.invites.create({ now: acc.clock(), deltaChat: true, ...opts });
  const link = secureJoinLink({
    fingerprint: acc.identity.fingerprint,
    addr: acc.email,
    ...(acc.account.name ? { name: acc.account.name } : {}),
    invitenumber: pending.deltaChat!.invitenumber,
    auth: pending.secret,
  });
  return { link, expires: pending.expires };
}

/** `peerdial join https://i.delta.chat/...`: the contact (fingerprint introduced, no key yet) and the vc-request queued. */
export async function joinDeltaChat(acc: Account, invite: SecureJoinInvite, opts: { name?: string; answer?: AnswerMode } = {}): Promise<{ contact: Contact; messageId: string }> {
  if (invite.addr === acc.email) throw new PeerdialError('INVITE_INVALID', 'That invite is your own.', { hint: 'Give it to the other person; they scan it in Delta Chat.' });
  const contact = await contactFor(acc, invite.addr, opts.name ?? invite.name);
  if (contact.blocked) throw new PeerdialError('CONTACT_BLOCKED', `${contact.email} is blocked.`, { hint: `Unblock with: peerdial contacts unblock ${contact.name}` });
  const now = acc.clock();
  await acc.contacts.introduceKey(contact.email, { fingerprint: invite.fingerprint, replace: true });
  await acc.contacts.update(contact.email, (c) => markDeltaChat(c, opts.answer));
  await acc.invites.addJoin(
    {
      inviter: invite.addr,
      fingerprint: invite.fingerprint,
      secret: invite.auth,
      created: now.toISOString(),
      expires: new Date(now.getTime() + 7 * 86400_000).toISOString(),
      deltaChat: { invitenumber: invite.invitenumber, awaiting: 'vc-auth-required' },
    },
    now,
  );
  const messageId = await send(acc, invite.addr, undefined, 'vc-request', [{ name: SECURE_JOIN_INVITENUMBER_HEADER, value: invite.invitenumber }]);
  return { contact: (await acc.contacts.byEmail(invite.addr))!, messageId };
}

/** Is there any Delta Chat mail to read: a Delta Chat invite of ours open, a join waiting, a Delta Chat contact? */
export async function chatMailActive(acc: Account): Promise<boolean> {
  const now = acc.clock();
  if ((await acc.contacts.list()).some((c) => c.deltaChat && !c.blocked)) return true;
  if ((await acc.invites.pending(now)).some((i) => i.deltaChat)) return true;
  return (await acc.invites.joinsPending(now)).some((j) => j.deltaChat);
}

/** Is this chat mail (by its envelope sender) one peerdial should read? Only ours: see the top of this file. */
export async function wantsChatMail(acc: Account, from: string | undefined): Promise<boolean> {
  if (!from) return false;
  const addr = from.toLowerCase();
  const now = acc.clock();
  const contact = await acc.contacts.byEmail(addr);
  if (contact?.blocked) return false;
  if (contact?.deltaChat) return true;
  if (await acc.invites.joinFor(addr, now)) return true;
  return (await acc.invites.pending(now)).some((i) => i.deltaChat);
}

/** Reads one chat mail and takes the SecureJoin step it is; never throws for bad input. */
export async function handleChatMail(acc: Account, raw: Buffer): Promise<ChatMailResult> {
  const contacts = await acc.contacts.list();
  const keys = new Map<string, openpgp.PublicKey>();
  for (const c of contacts) if (c.deltaChat && c.publicKey) keys.set(c.email, await readPublicKey(c.publicKey));
  const r = await parseDeltaChatMail(raw, { self: acc.identity, now: acc.clock(), knownKey: (a) => keys.get(a) });
  if (!r.ok) return { handled: false, queued: false, ...(r.from ? { from: r.from } : {}), detail: `${r.reason}: ${r.detail}` };
  const mail = r.mail;
  const step = headerOf(mail, SECURE_JOIN_HEADER) ?? (headerOf(mail, SECURE_JOIN_INVITENUMBER_HEADER) ? 'vc-request' : undefined);
  const base = { from: mail.from, ...(step ? { step: sanitizeText(step, { max: 40 }) } : {}) };
  const refuse = (detail: string): ChatMailResult => ({ handled: false, queued: false, ...base, detail });
  try {
    switch (step) {
      case 'vc-request':
        return await onRequest(acc, mail, refuse);
      case 'vc-request-with-auth':
        return await onRequestWithAuth(acc, mail, refuse);
      case 'vc-auth-required':
        return await onAuthRequired(acc, mail, refuse);
      case 'vc-contact-confirm':
        return await onContactConfirm(acc, mail, refuse);
      default:
        return refuse(step ? `SecureJoin step ${sanitizeText(step, { max: 40 })} is not one peerdial takes` : 'a chat mail, not a SecureJoin step');
    }
  } catch (err) {
    return refuse(sanitizeText(`could not take the step: ${(err as Error).message}`));
  }
}

type Refuse = (detail: string) => ChatMailResult;

/** Inviter: a joiner asks with our invite number; answer with vc-auth-required, encrypted to the key it sent. */
async function onRequest(acc: Account, mail: DeltaChatMail, refuse: Refuse): Promise<ChatMailResult> {
  const number = headerOf(mail, SECURE_JOIN_INVITENUMBER_HEADER);
  const invite = (await acc.invites.pending(acc.clock())).find((i) => i.deltaChat && number !== undefined && i.deltaChat.invitenumber === number);
  if (!invite) return refuse('vc-request with an invite number of no open invite');
  if (!mail.senderKey) return refuse('vc-request without a key (Autocrypt) for its sender');
  const existing = await acc.contacts.byEmail(mail.from);
  if (existing?.blocked) return refuse(`${mail.from} is blocked`);
  await send(acc, mail.from, mail.senderKey, 'vc-auth-required', [], mail);
  return { handled: true, queued: true, from: mail.from, step: 'vc-request', detail: 'answered with vc-auth-required' };
}

/** Inviter: the joiner proves the AUTH token, encrypted and signed by the key it names: it becomes a verified contact. */
async function onRequestWithAuth(acc: Account, mail: DeltaChatMail, refuse: Refuse): Promise<ChatMailResult> {
  if (!mail.encrypted || !mail.senderKey) return refuse('vc-request-with-auth must be encrypted and signed');
  const auth = headerOf(mail, SECURE_JOIN_AUTH_HEADER);
  const named = headerOf(mail, SECURE_JOIN_FINGERPRINT_HEADER)?.replace(/\s/g, '').toUpperCase();
  if (named !== mail.senderFingerprint) return refuse(`Secure-Join-Fingerprint ${sanitizeText(named ?? 'missing', { max: 70 })} is not the signing key ${mail.senderFingerprint}`);
  if (!gossipsUs(acc, mail)) return refuse('vc-request-with-auth does not gossip our key back');
  const now = acc.clock();
  const invite = (await acc.invites.pending(now)).find((i) => i.deltaChat && auth !== undefined && i.secret === auth);
  if (!invite) return refuse('vc-request-with-auth with an AUTH token of no open invite (used, expired or never ours)');
  if (!(await acc.invites.consume(invite.secret, now))) return refuse('the invite was used meanwhile');
  const existing = await acc.contacts.byEmail(mail.from);
  if (existing?.blocked) return refuse(`${mail.from} is blocked`);
  const contact = await contactFor(acc, mail.from, invite.name ?? mail.fromName);
  const verified = await verifyKey(acc, contact, mail.senderKey, invite.answer);
  await send(acc, mail.from, mail.senderKey, 'vc-contact-confirm', [], mail);
  return { handled: true, queued: true, from: mail.from, step: 'vc-request-with-auth', verified, detail: `${verified.name} <${verified.email}> joined: verified, key ${verified.fingerprint}` };
}

/** Joiner: the inviter answered, signed by the key the link named: it is verified; prove the AUTH token. */
async function onAuthRequired(acc: Account, mail: DeltaChatMail, refuse: Refuse): Promise<ChatMailResult> {
  const now = acc.clock();
  const join = await acc.invites.joinFor(mail.from, now);
  if (!join?.deltaChat || join.deltaChat.awaiting !== 'vc-auth-required') return refuse('vc-auth-required without a join of ours waiting for it');
  if (!mail.encrypted || !mail.senderKey) return refuse('vc-auth-required must be encrypted and signed');
  if (mail.senderFingerprint !== join.fingerprint) return refuse(`vc-auth-required signed by ${mail.senderFingerprint}, not by the key ${join.fingerprint} the invite named`);
  if (!gossipsUs(acc, mail)) return refuse('vc-auth-required does not gossip our key back');
  const contact = (await acc.contacts.byEmail(mail.from)) ?? (await contactFor(acc, mail.from, mail.fromName));
  const verified = await verifyKey(acc, contact, mail.senderKey);
  await acc.invites.updateJoin(mail.from, now, (j) => (j.deltaChat!.awaiting = 'vc-contact-confirm'));
  await send(
    acc,
    mail.from,
    mail.senderKey,
    'vc-request-with-auth',
    [
      { name: SECURE_JOIN_AUTH_HEADER, value: join.secret },
      { name: SECURE_JOIN_FINGERPRINT_HEADER, value: acc.identity.fingerprint },
    ],
    mail,
  );
  return { handled: true, queued: true, from: mail.from, step: 'vc-auth-required', verified, detail: `${verified.name} <${verified.email}> verified by the invite's fingerprint; vc-request-with-auth sent` };
}

/** Joiner: the inviter confirms; the join is over. */
async function onContactConfirm(acc: Account, mail: DeltaChatMail, refuse: Refuse): Promise<ChatMailResult> {
  const now = acc.clock();
  const join = await acc.invites.joinFor(mail.from, now);
  if (!join?.deltaChat) return refuse('vc-contact-confirm without a join of ours');
  if (!mail.encrypted || mail.senderFingerprint !== join.fingerprint) return refuse('vc-contact-confirm not signed by the invite\'s key');
  await acc.invites.dropJoin(mail.from, now);
  const contact = await acc.contacts.byEmail(mail.from);
  return { handled: true, queued: false, from: mail.from, step: 'vc-contact-confirm', ...(contact ? { verified: contact } : {}), detail: 'the inviter confirmed the contact' };
}

function gossipsUs(acc: Account, mail: DeltaChatMail): boolean {
  const k = mail.gossip.get(acc.email);
  return k !== undefined && fingerprintOf(k) === acc.identity.fingerprint;
}

/** The contact for `addr`, made (with a free name) when there is none. */
async function contactFor(acc: Account, addr: string, wanted?: string): Promise<Contact> {
  const existing = await acc.contacts.byEmail(addr);
  if (existing) return existing;
  const taken = new Set((await acc.contacts.list()).map((c) => c.name.toLowerCase()));
  const base = (wanted ?? addr.slice(0, addr.indexOf('@'))).replace(/[^A-Za-z0-9._-]/g, '').slice(0, 32) || 'contact';
  let name = base;
  for (let n = 2; taken.has(name.toLowerCase()); n++) name = `${base}${n}`;
  return acc.contacts.add({ name, email: addr });
}

/** Pin the key SecureJoin proved, as verified, and mark the contact a Delta Chat user. */
async function verifyKey(acc: Account, contact: Contact, key: openpgp.PublicKey, answer?: AnswerMode): Promise<Contact> {
  await acc.contacts.introduceKey(contact.email, { fingerprint: fingerprintOf(key), armored: key.armor(), replace: true });
  await acc.contacts.verify(contact.email);
  return acc.contacts.update(contact.email, (c) => markDeltaChat(c, answer));
}

/** A Delta Chat contact: their mail program reads Delta Chat's format only, so peerdial's announces do not go to them. */
function markDeltaChat(c: Contact, answer?: AnswerMode): void {
  c.deltaChat = true;
  c.announce = false;
  if (answer) c.answer = answer;
}

/** Compose one SecureJoin step in Delta Chat's format and queue it (steps after the first gossip the recipient's key back). */
function send(acc: Account, to: string, key: openpgp.PublicKey | undefined, step: string, extra: ChatHeader[], replyTo?: DeltaChatMail): Promise<string> {
  return queueDeltaChatMail(acc, {
    to,
    ...(key ? { key, gossip: true } : {}),
    headers: [{ name: SECURE_JOIN_HEADER, value: step }, ...extra],
    text: `Secure-Join: ${step}`,
    ...(replyTo ? { inReplyTo: replyTo.messageId } : {}),
    kind: `securejoin ${step}`,
  });
}

/**
 * Compose a mail in Delta Chat's format (wire/deltachat.ts) from this
 * account and queue it in the outbox; its Message-ID. Encrypted to `key`
 * (and signed); without a key only the first SecureJoin step may go.
 * `gossip`: put the recipient's own key in Autocrypt-Gossip.
 */
export async function queueDeltaChatMail(
  acc: Account,
  m: { to: string; key?: openpgp.PublicKey; gossip?: boolean; headers: ChatHeader[]; text: string; inReplyTo?: string; references?: string[]; kind: string; callId?: string },
): Promise<string> {
  const now = acc.clock();
  const built = await composeDeltaChatMail({
    sender: acc.identity,
    ...(acc.account.name ? { senderName: acc.account.name } : {}),
    to: m.to,
    ...(m.key ? { recipientKey: m.key } : {}),
    ...(m.key && m.gossip ? { gossip: [{ addr: m.to, key: m.key }] } : {}),
    date: now,
    ...(m.inReplyTo ? { inReplyTo: m.inReplyTo, references: m.references ?? [m.inReplyTo] } : {}),
    headers: m.headers,
    text: m.text,
  });
  await acc.outbox.enqueue({ raw: built.raw, messageId: built.messageId, from: acc.email, to: [m.to], kind: m.kind, ...(m.callId ? { callId: m.callId } : {}), now });
  return built.messageId;
}
