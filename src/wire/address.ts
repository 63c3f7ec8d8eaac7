/**
 * The one grammar for mail addresses: what peerdial accepts as a contact's,
 * a caller's or its own address, wherever the address comes from (a mail, the
 * command line, a link, the address book). Pure: no I/O.
 *
 * An RFC 5321/5322 addr-spec, narrowed to what a person's mailbox address
 * really looks like and nothing a shell, a file system or a terminal could
 * take for something else:
 *
 * - local part: a dot-atom of ASCII letters, digits, `_`, `+` and `-`, at
 *   most 64 characters, not starting with `-` (it would read as an option),
 *   no `..`, no leading or trailing dot. No quoted strings, no `/`, `\`,
 *   quotes or other characters a shell or a file system treats specially
 *   (RFC 5322 allows more; real mailbox names do not need them).
 * - domain: two or more DNS labels (letters, digits, `-`), a top-level label
 *   that is not all digits, no IP literal. A domain written in Unicode (IDN)
 *   is turned into its ASCII form (`domainToASCII`), so `例え.jp` and
 *   `xn--r8jz45g.jp` are one address. A single-label domain such as
 *   `localhost` is not a deliverable internet address and is refused.
 * - nothing invisible: no control, format or bidi characters anywhere.
 * - at most 254 characters in the normal form.
 *
 * The normal form is lower case with an ASCII domain; addresses are compared
 * in the normal form only.
 */
import { domainToASCII } from 'node:url';
import { PeerdialError } from '../errors.js';

export const MAX_LOCAL_PART = 64;
export const MAX_ADDRESS = 254;

export type AddressCheck = { ok: true; address: string } | { ok: false; reason: string };

const LOCAL = /^[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*$/;
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
/** Controls (C0, DEL, C1), spaces of every kind, invisible format and bidi characters. */
// eslint-disable-next-line no-control-regex
const INVISIBLE = /[\u0000-\u0020\u007f-\u00a0\u00ad\u034f\u061c\u115f\u1160\u1680\u17b4\u17b5\u180b-\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb]/u;

const no = (reason: string): AddressCheck => ({ ok: false, reason });

/**
 * Sorts a string into a mail address in its normal form, or a reason (one
 * short clause a user can act on) why it is not one. Surrounding whitespace is
 * not trimmed: the caller decides whether its input may carry any.
 */
export function checkMailAddress(input: unknown): AddressCheck {
  if (typeof input !== 'string' || input === '') return no('it is empty');
  // Bound the work before looking closer: an IDN domain can only shrink to ASCII
  // by a little, never from thousands of characters to 254.
  if (input.length > MAX_ADDRESS * 4) return no(`it is longer than ${MAX_ADDRESS} characters`);
  if (INVISIBLE.test(input)) return no('it contains a space, a control character or an invisible character');
  const at = input.lastIndexOf('@');
  if (at < 0) return no('it has no "@"');
  if (input.indexOf('@') !== at) return no('it has more than one "@"');
  const local = input.slice(0, at).toLowerCase();
  const rawDomain = input.slice(at + 1);
  if (local === '') return no('the part before "@" is empty');
  if (rawDomain === '') return no('the part after "@" is empty');
  if (local.length > MAX_LOCAL_PART) return no(`the part before "@" is longer than ${MAX_LOCAL_PART} characters`);
  if (!LOCAL.test(local)) {
    return no('the part before "@" may only hold letters, digits and . _ + - (no leading, trailing or double dot)');
  }
  if (local.startsWith('-')) return no('the part before "@" starts with "-"');
  if (rawDomain.startsWith('[')) return no('an IP address in brackets is not a mailbox domain');
  // ASCII in the domain: letters, digits, dots and hyphens only (domainToASCII
  // would otherwise parse `a/b.test` as a URL and keep "a").
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u002c\u002f\u003a-\u0040\u005b-\u0060\u007b-\u007f]/.test(rawDomain)) {
    return no('the domain may only hold letters, digits, dots and hyphens');
  }
  const domain = domainToASCII(rawDomain);
  if (domain === '') return no('the domain is not a valid (internationalised) domain name');
  const labels = domain.split('.');
  if (labels.length < 2) return no(`"${domain}" is a single-label domain, not an internet mail domain`);
  if (!labels.every((l) => LABEL.test(l))) return no('a label of the domain is empty, too long or starts or ends with "-"');
  if (/^\d+$/.test(labels.at(-1)!)) return no('the domain ends in a number (an IP address is not a mailbox domain)');
  const address = `${local}@${domain}`;
  if (address.length > MAX_ADDRESS) return no(`it is longer than ${MAX_ADDRESS} characters`);
  return { ok: true, address };
}

/** The normal form of a mail address, or undefined when it is not one. */
export function normalMailAddress(input: unknown): string | undefined {
  const r = checkMailAddress(input);
  return r.ok ? r.address : undefined;
}

/** True for a valid mail address already in its normal form (what the wire format carries). */
export function isMailAddress(value: unknown): value is string {
  return typeof value === 'string' && normalMailAddress(value) === value;
}

/** Two addresses name the same mailbox (both valid, same normal form). */
export function sameMailAddress(a: string, b: string): boolean {
  const x = normalMailAddress(a);
  return x !== undefined && x === normalMailAddress(b);
}

/**
 * The normal form of an address a user typed (command line, API), or a
 * USAGE error saying why it is not one.
 */
export function requireMailAddress(input: string): string {
  const r = checkMailAddress(input.trim());
  if (r.ok) return r.address;
  throw new PeerdialError('USAGE', `"${input}" is not an e-mail address peerdial accepts: ${r.reason}.`, {
    hint: 'Give an internet mail address like name@example.org, or a contact name from: peerdial contacts',
  });
}
