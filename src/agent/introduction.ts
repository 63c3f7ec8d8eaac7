/**
 * The trust checks a verified mail still has to pass before it counts, and
 * the two steps of an introduction (src/wire/invite.ts):
 *
 *   joiner                                   inviter
 *   `peerdial join CODE`:
 *     adds the inviter (fingerprint from the code: introduced)
 *     introduce {mac: HMAC(secret, joiner, inviter)}  ->  checks the mac against its open invites,
 *                                                         adds/pins the joiner as introduced,
 *                                                         uses up the secret
 *                           <-  introduced {mac: HMAC(secret, ...)}
 *     the key that signed it matches the code's fingerprint: pinned, introduced
 *
 * Called from Account.classify; returns a rejection, or undefined when the
 * mail may go on.
 */
import type { ParseAccepted } from '../wire/parse.js';
import type { RejectReason } from '../wire/message.js';
import { introductionMac, macMatches } from '../wire/invite.js';
import type { Contact, ContactStore } from '../store/contacts.js';
import type { InviteStore } from '../store/invites.js';
import type { MessageKind } from '../wire/message.js';

/** What the checks use of an account: Account passes itself (a view, so this file needs nothing of account.ts). */
export interface TrustAccount {
  readonly email: string;
  readonly identity: { readonly fingerprint: string };
  readonly contacts: ContactStore;
  readonly invites: InviteStore;
  clock(): Date;
  queue(input: { kind: MessageKind; to: string; mac?: string; ttlSeconds?: number; inReplyTo?: string }): Promise<unknown>;
}

export interface Refusal {
  reason: RejectReason;
  detail: string;
}

/** How long an `introduced` confirmation stays good on its way back. */
const CONFIRM_SECONDS = 24 * 3600;

export async function trustGate(acc: TrustAccount, parsed: ParseAccepted, contact: Contact | undefined): Promise<Refusal | undefined> {
  const m = parsed.message;
  if (m.kind === 'introduce') return introduce(acc, parsed, contact);
  // Only read because an invite is out: a stranger's other mail counts for nothing.
  if (!contact) return { reason: 'unknown-sender', detail: `${m.from} is not a contact` };
  if (contact.fingerprint && contact.fingerprint !== parsed.senderFingerprint) {
    return { reason: 'key-mismatch', detail: `signed by key ${parsed.senderFingerprint}, not by the ${contact.trust ?? 'pinned'} key ${contact.fingerprint} of ${m.from}` };
  }
  if (m.kind === 'introduced') {
    const now = acc.clock();
    const join = await acc.invites.joinFor(m.from, now);
    if (join) {
      const want = introductionMac(join.secret, 'introduced', { email: acc.email, fingerprint: acc.identity.fingerprint }, { email: m.from, fingerprint: parsed.senderFingerprint });
      if (!macMatches(want, m.mac ?? '')) return { reason: 'bad-signature', detail: `the confirmation of ${m.from} does not match the invite this side joined` };
      await acc.invites.dropJoin(m.from, now);
    }
  }
  return undefined;
}

async function introduce(acc: TrustAccount, parsed: ParseAccepted, contact: Contact | undefined): Promise<Refusal | undefined> {
  const m = parsed.message;
  const now = acc.clock();
  const joiner = { email: m.from, fingerprint: parsed.senderFingerprint };
  const inviter = { email: acc.email, fingerprint: acc.identity.fingerprint };
  // a Delta Chat invite is answered by SecureJoin only (agent/securejoin.ts), never by a peerdial introduction
  const open = (await acc.invites.pending(now)).filter((i) => !i.deltaChat);
  const invite = open.find((i) => macMatches(introductionMac(i.secret, 'introduce', joiner, inviter), m.mac ?? ''));
  if (!invite || !(await acc.invites.consume(invite.secret, now))) {
    return { reason: contact ? 'bad-signature' : 'unknown-sender', detail: `an introduction from ${m.from} that matches no open invite (used, expired or never made)` };
  }
  let c = contact;
  if (!c) {
    const taken = new Set((await acc.contacts.list()).map((x) => x.name.toLowerCase()));
    const base = (invite.name ?? m.from.slice(0, m.from.indexOf('@'))).replace(/[^A-Za-z0-9._-]/g, '').slice(0, 32) || 'contact';
    let name = base;
    for (let n = 2; taken.has(name.toLowerCase()); n++) name = `${base}${n}`;
    c = await acc.contacts.add({ name, email: m.from });
    if (invite.answer) await acc.contacts.update(c.email, (x) => (x.answer = invite.answer!));
  }
  // The secret vouches for this key: it replaces whatever was pinned before.
  await acc.contacts.introduceKey(c.email, { fingerprint: parsed.senderFingerprint, armored: parsed.senderKey.armor(), replace: true });
  await acc.queue({
    kind: 'introduced',
    to: m.from,
    mac: introductionMac(invite.secret, 'introduced', joiner, inviter),
    ttlSeconds: CONFIRM_SECONDS,
    ...(parsed.messageId ? { inReplyTo: parsed.messageId } : {}),
  });
  return undefined;
}
