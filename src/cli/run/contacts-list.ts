/**
 * `peerdial contacts` / `contacts list`: reads contacts.json and nothing
 * else (no private key, no OpenPGP, no mail client), so that it starts as
 * fast as node can.
 */
import { openAddressBook } from '../../api/open.js';
import type { Contact } from '../../store/contacts.js';
import { age, printJson, table, type GlobalOptions } from '../output.js';

export function presenceLine(c: Contact): string {
  if (!c.presence) return 'no address yet';
  const ips = c.presence.addresses.map((a) => (a.ip.includes(':') ? `[${a.ip}]` : a.ip)).join(' ') || '(none)';
  const valid = c.presence.validUntil && Date.parse(c.presence.validUntil) > Date.now() ? 'valid' : 'stale';
  return `${ips} (${valid}, ${age(c.presence.updated)})`;
}

/** The trust level of a contact's key, as `contacts` shows it. */
export function keyState(c: Contact): string {
  const level = !c.fingerprint ? 'no key yet' : c.trust === 'introduced' && !c.publicKey ? 'introduced (key awaited)' : (c.trust ?? 'learned');
  return c.blocked ? `${level}, blocked` : level;
}

export async function listContacts(g: GlobalOptions): Promise<void> {
  const book = await openAddressBook(g);
  const list = await book.contacts.list();
  if (g.json) return printJson(list);
  if (!list.length) {
    console.log('No contacts yet. Add one with: peerdial contacts add NAME EMAIL');
    return;
  }
  console.log(table([
    ['NAME', 'ADDRESS', 'ALIASES', 'TRUST', 'LAST KNOWN ADDRESS'],
    ...list.map((c) => [c.name, c.email, c.aliases.join(',') || '-', keyState(c), presenceLine(c)]),
  ]));
}
