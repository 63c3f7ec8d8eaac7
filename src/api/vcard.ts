/**
 * Contacts by vCard (src/wire/vcard.ts has the format): `contacts
 * import-vcard FILE` adds each card's address with the key it carries as
 * an introduced key (source 'vcard': the user chose the file, as with
 * `--key FILE`); `contacts export-vcard` writes this account's own card
 * with its key, which Delta Chat imports ("Import contact" / its
 * `import_vcard`). A card whose key carries Delta Chat's signature
 * notation (`relays@chatmail.at`), or any card with `deltaChat`, makes a
 * Delta Chat contact: calls to it go in Delta Chat's call dialect.
 */
import * as openpgp from 'openpgp';
import { PeerdialError } from '../errors.js';
import type { Account } from '../agent/account.js';
import { buildVcard, parseVcard } from '../wire/vcard.js';
import { fingerprintOf } from '../wire/identity.js';
import type { AnswerMode, Contact, TrustLevel } from '../store/contacts.js';

export interface ImportedContact {
  contact: Contact;
  /** It was added now (else an existing contact got the key). */
  added: boolean;
  replaced?: { fingerprint: string; trust: TrustLevel | undefined };
}

export interface VcardImport {
  imported: ImportedContact[];
  /** Cards left out, one line each, with the reason. */
  skipped: string[];
}

/** Notation Delta Chat (chatmail core 2.x) puts on its keys' self-signatures. */
const DELTA_CHAT_NOTATION = /@chatmail\.at$/i;

/** The key was made by Delta Chat: a self-signature carries chatmail's notation. */
export function isDeltaChatKey(key: openpgp.PublicKey): boolean {
  // Delta Chat puts it on the direct-key signature (openpgp.js keeps those in `directSignatures`, untyped)
  const direct = (key as unknown as { directSignatures?: openpgp.SignaturePacket[] }).directSignatures ?? [];
  const sigs = [...direct, ...key.users.flatMap((u) => u.selfCertifications)];
  return sigs.some((s) => (s.rawNotations ?? []).some((n: openpgp.RawNotation) => DELTA_CHAT_NOTATION.test(n.name)));
}

/** A contact name from a card: the first word of its name, else the address's local part, made unique. */
function nameFor(displayName: string | undefined, email: string, taken: Set<string>): string {
  const base = ((displayName ?? '').split(/\s+/)[0] || email.split('@')[0] || 'contact').toLowerCase().replace(/[^a-z0-9._-]/g, '') || 'contact';
  let name = base;
  for (let i = 2; taken.has(name); i++) name = `${base}${i}`;
  taken.add(name);
  return name;
}

export async function importVcard(
  acc: Account,
  text: string,
  opts: { name?: string; deltaChat?: boolean; answer?: AnswerMode; replace?: boolean } = {},
): Promise<VcardImport> {
  const parsed = parseVcard(text);
  if (!parsed.contacts.length) {
    throw new PeerdialError('USAGE', `No contact in that vCard${parsed.skipped.length ? ` (${parsed.skipped.join('; ')})` : ''}.`, {
      hint: 'Give a .vcf file with BEGIN:VCARD ... END:VCARD, e.g. one Delta Chat shares or `peerdial contacts export-vcard` writes.',
    });
  }
  if (opts.name && parsed.contacts.length > 1) throw new PeerdialError('USAGE', `--name is for a vCard of one contact; this one has ${parsed.contacts.length}.`);
  const existing = await acc.contacts.list();
  const taken = new Set(existing.flatMap((c) => [c.name.toLowerCase(), ...c.aliases.map((a) => a.toLowerCase())]));
  const imported: ImportedContact[] = [];
  const skipped = [...parsed.skipped];
  for (const card of parsed.contacts) {
    if (card.email.toLowerCase() === acc.email) {
      skipped.push(`${card.email}: that is this account`);
      continue;
    }
    let key: openpgp.PublicKey | undefined;
    if (card.key) {
      try {
        key = await openpgp.readKey({ binaryKey: card.key });
      } catch {
        key = undefined;
      }
      if (!key || key.isPrivate()) {
        skipped.push(`${card.email}: its key cannot be read as an OpenPGP public key`);
        continue;
      }
    }
    const deltaChat = Boolean(opts.deltaChat) || (key !== undefined && isDeltaChatKey(key));
    let contact = await acc.contacts.byEmail(card.email);
    const added = !contact;
    if (!contact) contact = await acc.contacts.add({ name: opts.name ?? nameFor(card.displayName, card.email, taken), email: card.email });
    let replaced: ImportedContact['replaced'];
    if (key) {
      const r = await acc.contacts.introduceKey(contact.email, { fingerprint: fingerprintOf(key), armored: key.armor(), replace: Boolean(opts.replace), source: 'vcard' });
      contact = r.contact;
      replaced = r.replaced;
    }
    const answer = opts.answer;
    if (deltaChat || answer) {
      contact = await acc.contacts.update(contact.email, (c) => {
        // a Delta Chat user gets calls in its dialect, and no peerdial announces (Delta Chat would show each as a message)
        if (deltaChat) {
          c.deltaChat = true;
          c.announce = false;
        }
        if (answer) c.answer = answer;
      });
    }
    imported.push({ contact, added, ...(replaced ? { replaced } : {}) });
  }
  return { imported, skipped };
}

/** This account's own card (with its key), or the named contacts' cards (with their pinned keys). */
export async function exportVcard(acc: Account, who: string[] = []): Promise<string> {
  if (!who.length) {
    return buildVcard({ email: acc.email, ...(acc.account.name ? { displayName: acc.account.name } : {}), key: acc.identity.publicKey.write(), rev: acc.clock() });
  }
  const cards: string[] = [];
  for (const w of who) {
    const c = await acc.contacts.require(w);
    let key: Uint8Array | undefined;
    if (c.publicKey) key = (await openpgp.readKey({ armoredKey: c.publicKey })).write();
    cards.push(buildVcard({ email: c.email, displayName: c.name, ...(key ? { key } : {}), rev: acc.clock() }));
  }
  return cards.join('');
}
