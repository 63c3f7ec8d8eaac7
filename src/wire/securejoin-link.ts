/**
 * Delta Chat's setup-contact invite (SecureJoin, "vc-" steps) as a link:
 *
 *   https://i.delta.chat/#FINGERPRINT&a=ADDR&n=NAME&i=INVITENUMBER&s=AUTH
 *   OPENPGP4FPR:FINGERPRINT#a=ADDR&n=NAME&i=INVITENUMBER&s=AUTH
 *
 * (Delta Chat 2.57 adds `v=3` to its own links: the joiner may then start
 * with a symmetrically encrypted `vc-request-pubkey`; peerdial starts
 * with the older `vc-request`, which 2.57 still answers, and writes its
 * own links without `v=3`, so that Delta Chat starts with `vc-request`
 * too.) Group invites (`g=`, `x=`, `b=`) are not contacts: refused.
 * Pure: no I/O.
 */
import { isMailAddress } from './validate.js';

export interface SecureJoinInvite {
  /** The inviter's key fingerprint, upper-case hex. */
  fingerprint: string;
  /** Lower-case mail address of the inviter. */
  addr: string;
  name?: string;
  invitenumber: string;
  auth: string;
  /** The link said `v=3`. */
  v3: boolean;
}

const FPR = /^(?:[0-9A-F]{40}|[0-9A-F]{64})$/;
/** Delta Chat's tokens are ~24 characters of base64url-like text; accept a bounded, URL-safe token. */
const TOKEN = /^[A-Za-z0-9_.~-]{8,100}$/;

/** Is this text a Delta Chat invite link (either form), before parsing it? */
export function looksLikeSecureJoinLink(text: string): boolean {
  const t = text.trim();
  return /^https:\/\/i\.delta\.chat\/#/i.test(t) || /^openpgp4fpr:/i.test(t);
}

/** Parse a Delta Chat setup-contact link; undefined when it is not one (or a group invite). */
export function parseSecureJoinLink(text: string): SecureJoinInvite | undefined {
  const t = text.trim();
  if (t.length > 2000) return undefined;
  let fp: string;
  let query: string;
  const https = /^https:\/\/i\.delta\.chat\/#([0-9A-Fa-f]+)&(.*)$/i.exec(t);
  const pgp = /^openpgp4fpr:([0-9A-Fa-f]+)#(.*)$/i.exec(t);
  if (https) [fp, query] = [https[1]!, https[2]!];
  else if (pgp) [fp, query] = [pgp[1]!, pgp[2]!];
  else return undefined;
  fp = fp.toUpperCase();
  if (!FPR.test(fp)) return undefined;
  const params = new Map<string, string>();
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const k = part.slice(0, eq).toLowerCase();
    if (params.has(k)) return undefined;
    try {
      params.set(k, decodeURIComponent(part.slice(eq + 1).replace(/\+/g, ' ')));
    } catch {
      return undefined;
    }
  }
  if (params.has('g') || params.has('x') || params.has('b') || params.has('j')) return undefined;
  const addr = params.get('a')?.trim().toLowerCase();
  const invitenumber = params.get('i');
  const auth = params.get('s');
  if (!addr || !isMailAddress(addr) || !invitenumber || !TOKEN.test(invitenumber) || !auth || !TOKEN.test(auth)) return undefined;
  const name = params.get('n')?.replace(/[\x00-\x1f\x7f]/g, '').trim().slice(0, 100);
  return { fingerprint: fp, addr, ...(name ? { name } : {}), invitenumber, auth, v3: params.get('v') === '3' };
}

/** The link for one of our invites (no `v=3`: see above). */
export function secureJoinLink(i: Omit<SecureJoinInvite, 'v3'>): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  const name = i.name ? `&n=${enc(i.name.slice(0, 25))}` : '';
  return `https://i.delta.chat/#${i.fingerprint}&a=${enc(i.addr)}${name}&i=${enc(i.invitenumber)}&s=${enc(i.auth)}`;
}
