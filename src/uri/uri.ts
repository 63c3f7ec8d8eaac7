/**
 * Click-to-call links: `peerdial:hitoshi@example.jp?video=1`,
 * `peerdial:hitoshi` (a contact's name, alias or short number) and the
 * tolerated `peerdial://hitoshi@example.jp`. Pure: a link is sorted into a
 * typed target or a typed rejection with a reason, before anything acts on
 * it. Whatever arrives here comes from a web page, so nothing is trusted:
 * the result is only ever passed as one argv word, never to a shell.
 */
import { checkMailAddress } from '../wire/address.js';

export const URI_SCHEME = 'peerdial';
/** Longer links are refused before they are looked at. */
export const MAX_URI_LENGTH = 512;

export interface CallLink {
  /** An e-mail address, or a contact name / alias / short number. */
  target: string;
  kind: 'address' | 'contact';
  /** Parameters peerdial understands. */
  params: { video?: boolean; ringSeconds?: number };
  /** Parameters it does not know: reported, never acted on. */
  unknown: string[];
}

export type UriRejection =
  | 'empty'
  | 'too-long'
  | 'wrong-scheme'
  | 'control-character'
  | 'bad-percent-encoding'
  | 'bad-target'
  | 'bad-parameter'
  | 'fragment';

export type UriResult = { ok: true; link: CallLink } | { ok: false; reason: UriRejection; detail: string };

const reject = (reason: UriRejection, detail: string): UriResult => ({ ok: false, reason, detail });

// Contact names, aliases and short numbers as the address book allows them, and no more.
const CONTACT = /^[\p{L}\p{N}][\p{L}\p{N}._-]{0,63}$/u;

function decode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** A mail address by the one grammar (wire/address.ts). */
export function isAddress(s: string): boolean {
  return checkMailAddress(s).ok;
}

function parseBool(v: string): boolean | undefined {
  if (v === '1' || v === 'true' || v === 'yes') return true;
  if (v === '0' || v === 'false' || v === 'no') return false;
  return undefined;
}

export function parseCallUri(input: string): UriResult {
  if (typeof input !== 'string' || input.trim() === '') return reject('empty', 'the link is empty');
  if (input.length > MAX_URI_LENGTH) return reject('too-long', `the link is ${input.length} characters long; at most ${MAX_URI_LENGTH} are accepted`);
  // Control characters (also DEL, C1, line/paragraph separators, bidi overrides) and whitespace anywhere.
  if (/[\u0000-\u0020\u007f-\u009f\u00a0\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/.test(input)) {
    return reject('control-character', 'the link contains a space or a control character');
  }
  const colon = input.indexOf(':');
  const scheme = colon > 0 ? input.slice(0, colon) : '';
  if (scheme.toLowerCase() !== URI_SCHEME) {
    return reject('wrong-scheme', colon > 0 ? `"${scheme.slice(0, 32)}:" links are not peerdial links` : 'a peerdial link starts with "peerdial:"');
  }
  let rest = input.slice(colon + 1);
  if (rest.startsWith('//')) rest = rest.slice(2);
  if (rest.includes('#')) return reject('fragment', 'a peerdial link has no "#" part');
  const q = rest.indexOf('?');
  const rawTarget = (q >= 0 ? rest.slice(0, q) : rest).replace(/\/$/, '');
  const rawQuery = q >= 0 ? rest.slice(q + 1) : '';

  const target = decode(rawTarget);
  if (target === undefined) return reject('bad-percent-encoding', 'the address in the link has a broken %-escape');
  if (/[\u0000-\u0020\u007f-\u009f]/.test(target)) return reject('control-character', 'the address in the link decodes to a space or a control character');
  if (target === '') return reject('bad-target', 'the link names nobody to call');
  let kind: CallLink['kind'];
  let address = '';
  if (target.includes('@')) {
    if (target.indexOf('@') !== target.lastIndexOf('@')) return reject('bad-target', 'the address in the link has more than one "@"');
    const checked = checkMailAddress(target);
    if (!checked.ok) return reject('bad-target', `the address in the link is not a plain e-mail address: ${checked.reason}`);
    address = checked.address;
    kind = 'address';
  } else {
    if (!CONTACT.test(target)) return reject('bad-target', 'a contact name in a link is letters, digits, ".", "_" and "-" only, starting with a letter or digit');
    kind = 'contact';
  }

  const link: CallLink = { target: kind === 'address' ? address : target, kind, params: {}, unknown: [] };
  if (rawQuery !== '') {
    const seen = new Set<string>();
    for (const pair of rawQuery.split('&')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      const key = decode(eq >= 0 ? pair.slice(0, eq) : pair);
      const value = decode(eq >= 0 ? pair.slice(eq + 1) : '');
      if (key === undefined || value === undefined) return reject('bad-percent-encoding', 'a parameter of the link has a broken %-escape');
      if (/[\u0000-\u001f\u007f-\u009f]/.test(key + value)) return reject('control-character', 'a parameter of the link decodes to a control character');
      const k = key.toLowerCase();
      if (seen.has(k)) return reject('bad-parameter', `parameter "${k.slice(0, 32)}" is given twice`);
      seen.add(k);
      if (k === 'video') {
        const b = parseBool(value === '' ? '1' : value);
        if (b === undefined) return reject('bad-parameter', 'video must be 0 or 1');
        link.params.video = b;
      } else if (k === 'ring') {
        if (!/^\d{1,4}$/.test(value) || Number(value) < 5 || Number(value) > 3600) return reject('bad-parameter', 'ring must be a number of seconds from 5 to 3600');
        link.params.ringSeconds = Number(value);
      } else {
        link.unknown.push(/^[A-Za-z0-9._-]{1,32}$/.test(key) ? key : JSON.stringify(key.slice(0, 32)));
      }
    }
  }
  return { ok: true, link };
}

/** The canonical link for a target: `peerdial:ADDRESS[?video=1&ring=N]`. */
export function formatCallUri(target: string, params: CallLink['params'] = {}): string {
  const q: string[] = [];
  if (params.video !== undefined) q.push(`video=${params.video ? 1 : 0}`);
  if (params.ringSeconds !== undefined) q.push(`ring=${params.ringSeconds}`);
  const enc = encodeURIComponent(target).replace(/%40/g, '@');
  return `${URI_SCHEME}:${enc}${q.length ? `?${q.join('&')}` : ''}`;
}

/** The `peerdial call` argv a link stands for (each element one word; no shell involved). */
export function callArgs(link: CallLink): string[] {
  return ['call', ...(link.params.ringSeconds !== undefined ? ['--ring-seconds', String(link.params.ringSeconds)] : []), '--', link.target];
}
