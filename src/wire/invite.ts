/**
 * Invite codes and the introduction they authenticate (after Delta Chat's
 * SecureJoin): the inviter hands out, out of band, its address, its key's
 * fingerprint and a one-time secret; the joiner mails an `introduce`
 * carrying its own key and an HMAC-SHA256, under that secret, of both
 * addresses and fingerprints; the inviter checks it, pins the joiner's key
 * as introduced and mails back an `introduced` with the mirror HMAC. No new
 * cryptography: OpenPGP signs, HMAC-SHA256 (node:crypto) binds the secret.
 * Pure: no I/O, no clock.
 *
 * Forms of an invite:
 *   code  ADDRESS:FINGERPRINT:SECRET                  (short enough to read out)
 *   URI   peerdial:invite?addr=ADDRESS&fp=FINGERPRINT&s=SECRET[&k=KEY]
 *         (k: the inviter's public key, binary, base64url: the joiner can
 *         encrypt its introduction; the QR code holds the URI)
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { isMailAddress } from './validate.js';

export interface Invite {
  email: string;
  /** Upper-case hex, no spaces. */
  fingerprint: string;
  /** 16 random bytes, base64url (22 characters). */
  secret: string;
  /** The inviter's public key, binary OpenPGP, base64url (URI form only). */
  key?: string;
}

const FPR_RE = /^(?:[0-9A-F]{40}|[0-9A-F]{64})$/;
const SECRET_RE = /^[A-Za-z0-9_-]{22}$/;
const KEY_RE = /^[A-Za-z0-9_-]{40,4000}$/;

export function inviteCode(i: Invite): string {
  return `${i.email}:${i.fingerprint}:${i.secret}`;
}

export function inviteUri(i: Invite): string {
  const q = new URLSearchParams({ addr: i.email, fp: i.fingerprint, s: i.secret, ...(i.key ? { k: i.key } : {}) });
  return `peerdial:invite?${q.toString()}`;
}

function checked(i: Invite): Invite | undefined {
  if (!isMailAddress(i.email) || !FPR_RE.test(i.fingerprint) || !SECRET_RE.test(i.secret)) return undefined;
  if (i.key !== undefined && !KEY_RE.test(i.key)) return undefined;
  return i;
}

/** Reads an invite code or `peerdial:invite?...` URI; undefined when it is neither. */
export function parseInvite(text: string): Invite | undefined {
  const t = text.trim();
  if (t.length > 5000) return undefined;
  if (/^peerdial:(\/\/)?invite\?/i.test(t)) {
    const q = new URLSearchParams(t.slice(t.indexOf('?') + 1));
    const email = q.get('addr')?.toLowerCase();
    const fingerprint = q.get('fp')?.replace(/\s/g, '').toUpperCase();
    const secret = q.get('s');
    const key = q.get('k') ?? undefined;
    if (!email || !fingerprint || !secret) return undefined;
    return checked({ email, fingerprint, secret, ...(key ? { key } : {}) });
  }
  const m = /^([^\s:]+):([0-9A-Fa-f ]+):([A-Za-z0-9_-]+)$/.exec(t);
  if (!m) return undefined;
  return checked({ email: m[1]!.toLowerCase(), fingerprint: m[2]!.replace(/\s/g, '').toUpperCase(), secret: m[3]! });
}

export interface Party {
  email: string;
  fingerprint: string;
}

/**
 * The HMAC of one step: `introduce` (joiner to inviter) or `introduced`
 * (inviter to joiner). Base64url, 43 characters.
 */
export function introductionMac(secret: string, kind: 'introduce' | 'introduced', joiner: Party, inviter: Party): string {
  const text = ['peerdial-introduction-v1', kind, joiner.email.toLowerCase(), joiner.fingerprint.toUpperCase(), inviter.email.toLowerCase(), inviter.fingerprint.toUpperCase()].join('\n');
  return createHmac('sha256', Buffer.from(secret, 'base64url')).update(text, 'utf8').digest('base64url');
}

/** Constant-time comparison of two MACs. */
export function macMatches(expected: string, got: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(got);
  return a.length === b.length && timingSafeEqual(a, b);
}
