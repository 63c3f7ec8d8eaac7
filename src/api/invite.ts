/**
 * Invites and joining (src/wire/invite.ts describes the exchange):
 * `peerdial invite` makes a one-time secret and prints the code, the
 * `peerdial:` URI and a QR code; `peerdial join CODE` on the other side
 * adds the inviter as introduced and mails the introduction.
 */
import * as openpgp from 'openpgp';
import { PeerdialError } from '../errors.js';
import type { Account } from '../agent/account.js';
import { inviteCode, inviteUri, introductionMac, parseInvite, type Invite } from '../wire/invite.js';
import { fingerprintOf } from '../wire/identity.js';
import type { AnswerMode, Contact, TrustLevel } from '../store/contacts.js';
import type { DrainResult } from '../mail/outbox-sender.js';
import { flushOutbox } from './mail.js';
import { createDeltaChatInvite, joinDeltaChat } from '../agent/securejoin.js';
import { looksLikeSecureJoinLink, parseSecureJoinLink } from '../wire/securejoin-link.js';

export { createDeltaChatInvite } from '../agent/securejoin.js';

/** `peerdial invite --delta-chat`: Delta Chat's invite link (SecureJoin), good once. */
export async function createDeltaChatInviteLink(acc: Account, opts: { ttlSeconds?: number; name?: string; answer?: AnswerMode } = {}): Promise<{ link: string; expires: string }> {
  checkTtl(opts.ttlSeconds);
  return createDeltaChatInvite(acc, opts);
}

function checkTtl(ttlSeconds: number | undefined): void {
  if (ttlSeconds !== undefined && (!Number.isFinite(ttlSeconds) || ttlSeconds < 60 || ttlSeconds > 30 * 86400)) {
    throw new PeerdialError('USAGE', 'An invite is good for 60 seconds to 30 days.', { hint: 'e.g. --expires 3600' });
  }
}

export interface CreatedInvite {
  code: string;
  uri: string;
  expires: string;
}

export async function createInvite(acc: Account, opts: { ttlSeconds?: number; name?: string; answer?: AnswerMode } = {}): Promise<CreatedInvite> {
  if (opts.ttlSeconds !== undefined && (!Number.isFinite(opts.ttlSeconds) || opts.ttlSeconds < 60 || opts.ttlSeconds > 30 * 86400)) {
    throw new PeerdialError('USAGE', 'An invite is good for 60 seconds to 30 days.', { hint: 'e.g. --expires 3600' });
  }
  const pending = await acc.invites.create({ now: acc.clock(), ...opts });
  const invite: Invite = {
    email: acc.email,
    fingerprint: acc.identity.fingerprint,
    secret: pending.secret,
    key: Buffer.from(acc.identity.publicKey.write()).toString('base64url'),
  };
  return { code: inviteCode(invite), uri: inviteUri(invite), expires: pending.expires };
}

export interface JoinResult {
  contact: Contact;
  /** A key that was pinned before (learned) and is replaced by the introduced one. */
  replaced?: { fingerprint: string; trust: TrustLevel | undefined };
  /** The introduction could be encrypted (the URI carried the inviter's key). */
  encrypted: boolean;
  /** A Delta Chat invite: the handshake goes on by mail (their answer, then ours), the contact is verified at its end. */
  deltaChat?: boolean;
  drain?: DrainResult;
}

export async function joinInvite(acc: Account, text: string, opts: { name?: string; answer?: AnswerMode; queueOnly?: boolean } = {}): Promise<JoinResult> {
  if (looksLikeSecureJoinLink(text)) {
    // a Delta Chat user's invite: SecureJoin (agent/securejoin.ts); the key comes with their answer
    const dc = parseSecureJoinLink(text);
    if (!dc) {
      throw new PeerdialError('INVITE_INVALID', 'That is not a Delta Chat contact invite.', {
        hint: 'Paste the whole https://i.delta.chat/#... link of a contact (a group invite cannot be joined).',
      });
    }
    const joined = await joinDeltaChat(acc, dc, opts);
    const result: JoinResult = { contact: joined.contact, encrypted: false, deltaChat: true };
    if (!opts.queueOnly) result.drain = await flushOutbox(acc);
    return result;
  }
  const invite = parseInvite(text);
  if (!invite) {
    throw new PeerdialError('INVITE_INVALID', 'That is not a peerdial invite.', {
      hint: 'Paste the whole code (ADDRESS:FINGERPRINT:SECRET) or the peerdial:invite?... link that `peerdial invite` printed.',
    });
  }
  if (invite.email === acc.email) throw new PeerdialError('INVITE_INVALID', 'That invite is your own.', { hint: 'Give it to the other person; they run peerdial join.' });
  let armored: string | undefined;
  if (invite.key) {
    let key: openpgp.PublicKey;
    try {
      key = await openpgp.readKey({ binaryKey: Buffer.from(invite.key, 'base64url') });
    } catch (cause) {
      throw new PeerdialError('INVITE_INVALID', 'The key in the invite link cannot be read.', { hint: 'Ask for a fresh invite, or use the short code.', cause });
    }
    if (fingerprintOf(key) !== invite.fingerprint) throw new PeerdialError('INVITE_INVALID', 'The key in the invite link does not match its fingerprint.', { hint: 'Ask for a fresh invite.' });
    armored = key.armor();
  }
  const now = acc.clock();
  let contact = await acc.contacts.byEmail(invite.email);
  if (!contact) {
    const taken = new Set((await acc.contacts.list()).map((c) => c.name.toLowerCase()));
    const base = opts.name ?? invite.email.slice(0, invite.email.indexOf('@')).replace(/[^A-Za-z0-9._-]/g, '').slice(0, 32);
    let name = base || 'contact';
    if (!opts.name) for (let n = 2; taken.has(name.toLowerCase()); n++) name = `${base}${n}`;
    contact = await acc.contacts.add({ name, email: invite.email });
  }
  if (contact.blocked) throw new PeerdialError('CONTACT_BLOCKED', `${contact.email} is blocked.`, { hint: `Unblock with: peerdial contacts unblock ${contact.name}` });
  const introduced = await acc.contacts.introduceKey(contact.email, { fingerprint: invite.fingerprint, ...(armored ? { armored } : {}), replace: true });
  if (opts.answer) await acc.contacts.update(contact.email, (c) => (c.answer = opts.answer!));
  await acc.invites.addJoin({ inviter: invite.email, fingerprint: invite.fingerprint, secret: invite.secret, created: now.toISOString(), expires: new Date(now.getTime() + 7 * 86400_000).toISOString() }, now);
  await acc.queue({
    kind: 'introduce',
    to: invite.email,
    mac: introductionMac(invite.secret, 'introduce', { email: acc.email, fingerprint: acc.identity.fingerprint }, { email: invite.email, fingerprint: invite.fingerprint }),
    ttlSeconds: 24 * 3600,
  });
  const result: JoinResult = { contact: (await acc.contacts.byEmail(invite.email))!, encrypted: Boolean(armored), ...(introduced.replaced ? { replaced: introduced.replaced } : {}) };
  if (!opts.queueOnly) result.drain = await flushOutbox(acc);
  return result;
}
