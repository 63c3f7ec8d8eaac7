/**
 * Header names, the protocol version and the payload media type of the
 * address mail, defined once. Builder, parser and the IMAP watcher all
 * read them from here. Pure: no I/O.
 */
import { LIMITS } from './limits.js';

/** The protocol version this code writes and the only one it reads. */
export const PROTOCOL_VERSION = 1 as const;

/** Outer header that marks a mail as ours. Never recognise our mail by its Subject. */
export const HEADER_VERSION = 'Peerdial-Version';
/** RFC 3834: no vacation replies, no auto-responders. */
export const HEADER_AUTO_SUBMITTED = 'Auto-Submitted';
export const AUTO_SUBMITTED_VALUE = 'auto-generated';
/**
 * The sender's public key, in Autocrypt's syntax (`addr=...; keydata=...`,
 * wire/autocrypt.ts) but under a name of our own. Never a standard
 * `Autocrypt` header: every Autocrypt client that reads the mail (Delta
 * Chat on the recipient's account, or on an account that shares the
 * sender's address) takes such a key as the address's key and encrypts
 * its own chats to it, which the user's chat program then cannot read
 * (measured: 3 of 24 Delta Chat messages, notes/coexistence.md). No
 * Autocrypt client reads this header.
 */
export const HEADER_KEY = 'Peerdial-Key';
/**
 * Where peerdial before `Peerdial-Key` put its key. Read, never written, as
 * a migration for peers that still run that version: only when the mail
 * has no `Peerdial-Key`, only for a sender with no pinned key, and only
 * when that key is the one the payload's signature verifies with
 * (wire/parse.ts).
 */
export const HEADER_LEGACY_AUTOCRYPT = 'Autocrypt';
/**
 * Fingerprint of the key that signed the payload (upper-case hex). A cheap
 * pre-filter only: mail whose signer is not a contact's pinned key is
 * refused from the headers, before the body is fetched. The signature
 * inside still decides.
 */
export const HEADER_SIGNER = 'Peerdial-Signer';

/** Media type and file name of the OpenPGP payload attachment. */
export const PAYLOAD_MEDIA_TYPE = 'application/vnd.peerdial.v1+pgp';
export const PAYLOAD_FILENAME = 'peerdial.asc';
/**
 * Media type and file name of a standing answer (wire/standing.ts), a
 * second OpenPGP attachment an announce may carry. A peerdial that does
 * not know it reads only the one PAYLOAD_MEDIA_TYPE attachment and leaves
 * this one alone (its payload schema is closed: a new field in the payload
 * would make it refuse the whole announce).
 */
export const STANDING_MEDIA_TYPE = 'application/vnd.peerdial.v1.standing+pgp';
export const STANDING_FILENAME = 'standing.asc';

/** Neutral Subject: it says nothing about who calls whom or why. */
export const NEUTRAL_SUBJECT = 'peerdial';

/**
 * The IMAP SEARCH criterion that finds our mail from headers alone, in the
 * shape imapflow's `search()` takes: the version header is there, whatever
 * its value (`SEARCH HEADER Peerdial-Version ""`). The inbox watcher and
 * the wake relay both search with it; they still confirm with
 * `isPeerdialHeaders` (or `parseMail`, which rejects other versions as
 * `unsupported-version`).
 */
export const IMAP_SEARCH_QUERY = { header: { [HEADER_VERSION]: true } } as const;

/** Upper bounds of everything in a mail: defined in limits.ts, re-exported here. */
export { LIMITS } from './limits.js';

/**
 * Anything that carries outer headers: a raw header block (string or
 * Buffer, e.g. what imapflow returns for `headers: [...]`), a Map as from
 * mailparser, or a plain record.
 */
export type HeaderSource =
  | string
  | Uint8Array
  | Map<string, unknown>
  | Record<string, string | string[] | undefined>;

/** One unfolded header line, name lower-cased. */
export interface HeaderField {
  name: string;
  value: string;
}

/**
 * Split the header section of a raw mail into unfolded fields. Reads at
 * most `limit` bytes; `complete` is false when no end of the header section
 * was found within the limit (too large or truncated).
 *
 * Why not mailparser's headers: mailparser reads them only while it parses
 * a whole message (an asynchronous stream; the splitter is
 * @zone-eu/mailsplit's, not part of mailparser's API) and hands them over
 * decoded (encoded words, dates, Message-IDs and addresses rewritten).
 * This reader is synchronous and runs on the header block imapflow returns
 * before any body is fetched (peekHeaders, screenHeaders, the desk); it
 * stops at LIMITS.headerBytes and says whether the section ended, and it
 * keeps every occurrence as sent, so that two Peerdial-Version or From
 * headers are counted and refused. parseMail uses both: this to decide
 * "ours, one version, one From, not too large", then mailparser for MIME.
 */
export function splitHeaderSection(
  raw: string | Uint8Array,
  limit: number = LIMITS.headerBytes,
): { fields: HeaderField[]; complete: boolean; headerLength: number } {
  const text =
    typeof raw === 'string'
      ? raw.slice(0, limit + 4)
      : Buffer.from(raw.buffer, raw.byteOffset, Math.min(raw.byteLength, limit + 4)).toString('latin1');
  const m = /\r?\n\r?\n/.exec(text);
  let section: string;
  let complete: boolean;
  if (m && m.index <= limit) {
    section = text.slice(0, m.index);
    complete = true;
  } else {
    section = text.slice(0, limit);
    // A header block that is just headers (as IMAP returns them) may end without a blank line.
    complete = text.length <= limit && text.length > 0;
  }
  const fields: HeaderField[] = [];
  let current: HeaderField | undefined;
  for (const line of section.split(/\r?\n/)) {
    if (/^[ \t]/.test(line)) {
      if (current) current.value += ' ' + line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) {
      current = undefined;
      continue;
    }
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) {
      current = undefined;
      continue;
    }
    current = { name, value: line.slice(colon + 1).trim() };
    fields.push(current);
  }
  return { fields, complete, headerLength: m && m.index <= limit ? m.index : section.length };
}

/** All values of one header (name case-insensitive) from any header source. */
export function headerValues(headers: HeaderSource, name: string): string[] {
  const wanted = name.toLowerCase();
  if (typeof headers === 'string' || headers instanceof Uint8Array) {
    return splitHeaderSection(headers).fields.filter((f) => f.name === wanted).map((f) => f.value);
  }
  const out: string[] = [];
  const push = (v: unknown): void => {
    if (typeof v === 'string') out.push(v.trim());
    else if (typeof v === 'number') out.push(String(v));
    else if (Array.isArray(v)) v.forEach(push);
    else if (v && typeof v === 'object' && 'value' in v) push((v as { value: unknown }).value);
  };
  if (headers instanceof Map) {
    for (const [k, v] of headers) if (String(k).toLowerCase() === wanted) push(v);
  } else {
    for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === wanted) push(v);
  }
  return out;
}

/** The protocol version named by the outer headers; undefined when the header is absent. */
export function peerdialVersionOf(headers: HeaderSource): string | undefined {
  const values = headerValues(headers, HEADER_VERSION);
  return values.length > 0 ? values[0] : undefined;
}

/**
 * Is this peerdial mail? Decided from the outer headers alone: the mail
 * carries a `Peerdial-Version` header (of any version; an unknown version
 * is still ours, to be rejected as `unsupported-version`, never touched as
 * somebody else's mail).
 */
export function isPeerdialHeaders(headers: HeaderSource): boolean {
  return peerdialVersionOf(headers) !== undefined;
}
