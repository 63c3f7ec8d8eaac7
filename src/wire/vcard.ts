/**
 * vCard (RFC 6350) as Delta Chat writes and reads it for a contact with
 * its key: `EMAIL`, `FN`, `KEY:data:application/pgp-keys;base64\,...`,
 * `REV` (and `PHOTO`, ignored here). Building and a tolerant parser for
 * what a contact card needs; junk gives an empty list, a card without an
 * address or with an unusable key is skipped and said so. Pure: no I/O,
 * no clock (the caller gives `REV`).
 */

/** One contact read from a vCard file. */
export interface VcardContact {
  /** The address as written (the store normalises it). */
  email: string;
  /** `FN`, when given. */
  displayName?: string;
  /** Binary (unarmored) OpenPGP public key from `KEY`, when given. */
  key?: Uint8Array;
}

export interface VcardParse {
  contacts: VcardContact[];
  /** Cards that were skipped, and why (one line each). */
  skipped: string[];
}

/** Largest vCard file read (a card with a photo is a few hundred KB at most). */
export const MAX_VCARD_BYTES = 1024 * 1024;
const MAX_KEY_BYTES = 16 * 1024;
const KEY_PREFIX = /^data:application\/pgp-keys;base64,/i;

/** Lines of a vCard, unfolded (a line starting with a space or tab continues the one before). */
function unfold(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    if ((raw.startsWith(' ') || raw.startsWith('\t')) && out.length) out[out.length - 1] += raw.slice(1);
    else out.push(raw);
  }
  return out;
}

/** A property value with vCard's escapes undone (`\,` `\;` `\\` `\n`). */
function unescapeValue(v: string): string {
  return v.replace(/\\([\\,;nN])/g, (_, c: string) => (c === 'n' || c === 'N' ? '\n' : c));
}

function escapeValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/,/g, '\\,').replace(/;/g, '\\;').replace(/\r?\n/g, '\\n');
}

/** The name of a content line (`item1.EMAIL;TYPE=home:...` -> `EMAIL`) and its value. */
function property(line: string): { name: string; value: string } | undefined {
  const colon = line.indexOf(':');
  if (colon <= 0) return undefined;
  const head = line.slice(0, colon);
  const name = (head.split(';')[0] ?? '').split('.').pop()!.trim().toUpperCase();
  return { name, value: line.slice(colon + 1) };
}

/** Reads every card of a vCard file. */
export function parseVcard(text: string): VcardParse {
  const contacts: VcardContact[] = [];
  const skipped: string[] = [];
  if (text.length > MAX_VCARD_BYTES) return { contacts, skipped: [`the file is larger than ${MAX_VCARD_BYTES} bytes`] };
  let card: { email?: string; fn?: string; key?: string } | undefined;
  let n = 0;
  for (const line of unfold(text)) {
    const p = property(line);
    if (!p) continue;
    if (p.name === 'BEGIN' && p.value.trim().toUpperCase() === 'VCARD') {
      card = {};
      n++;
    } else if (p.name === 'END' && p.value.trim().toUpperCase() === 'VCARD' && card) {
      const email = card.email?.trim().replace(/^mailto:/i, '');
      if (!email || !/^[^\s@<>;,]+@[^\s@<>;,]+$/.test(email)) {
        skipped.push(`card ${n}: no e-mail address`);
      } else {
        const c: VcardContact = { email };
        if (card.fn?.trim()) c.displayName = card.fn.trim();
        if (card.key !== undefined) {
          const key = keyData(card.key);
          if (!key) {
            skipped.push(`card ${n} (${email}): its KEY is not an OpenPGP key in base64`);
            card = undefined;
            continue;
          }
          c.key = key;
        }
        contacts.push(c);
      }
      card = undefined;
    } else if (card) {
      // the first of each kind counts (a card may list several addresses: the first is the one Delta Chat writes)
      if (p.name === 'EMAIL' && card.email === undefined) card.email = unescapeValue(p.value);
      else if (p.name === 'FN' && card.fn === undefined) card.fn = unescapeValue(p.value);
      else if (p.name === 'KEY' && card.key === undefined) card.key = unescapeValue(p.value);
    }
  }
  return { contacts, skipped };
}

function keyData(value: string): Uint8Array | undefined {
  const v = value.trim();
  if (!KEY_PREFIX.test(v)) return undefined;
  const b64 = v.replace(KEY_PREFIX, '').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  const bytes = new Uint8Array(Buffer.from(b64, 'base64'));
  return bytes.length > 0 && bytes.length <= MAX_KEY_BYTES ? bytes : undefined;
}

/** `REV` form of a date: 20261201T223215Z. */
export function vcardTimestamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** One card as Delta Chat writes it (VERSION 4.0, CRLF line ends, the key unwrapped as one line like Delta Chat's own). */
export function buildVcard(c: { email: string; displayName?: string; key?: Uint8Array; rev: Date }): string {
  const lines = ['BEGIN:VCARD', 'VERSION:4.0', `EMAIL:${escapeValue(c.email)}`, `FN:${escapeValue(c.displayName ?? c.email)}`];
  if (c.key) lines.push(`KEY:data:application/pgp-keys;base64\\,${Buffer.from(c.key).toString('base64')}`);
  lines.push(`REV:${vcardTimestamp(c.rev)}`, 'END:VCARD');
  return lines.join('\r\n') + '\r\n';
}
