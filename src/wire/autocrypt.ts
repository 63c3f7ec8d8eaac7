/**
 * A key in Autocrypt's header syntax (Level 1): `addr=...; keydata=BASE64`
 * (plus `prefer-encrypt=` in a real Autocrypt header). peerdial writes it
 * only as `Peerdial-Key` (buildKeyHeader), never as `Autocrypt`: see
 * HEADER_KEY in headers.ts. buildAutocryptHeader stays for tests that
 * write mail as older peerdial versions did. Building and a tolerant
 * parser; junk gives undefined. Pure: no I/O.
 */
import * as openpgp from 'openpgp';

export interface AutocryptHeader {
  /** Lower-case mail address the key belongs to. */
  addr: string;
  preferEncrypt: 'mutual' | 'nopreference';
  /** Binary (unarmored) OpenPGP public key. */
  keydata: Uint8Array;
}

/** Longest keydata we accept (a minimal ECC key is ~600 bytes; RSA-4096 a few KB). */
const MAX_KEYDATA_BYTES = 16 * 1024;

/**
 * The header value for `key`. The base64 key data is split into chunks
 * separated by spaces so the mail composer can fold the header at them;
 * readers strip the whitespace again (Autocrypt §2.1).
 */
export function buildAutocryptHeader(addr: string, key: openpgp.PublicKey): string {
  const b64 = Buffer.from(key.write()).toString('base64');
  const chunks = b64.match(/.{1,64}/g) ?? [];
  return `addr=${addr.trim().toLowerCase()}; prefer-encrypt=mutual; keydata=${chunks.join(' ')}`;
}

/**
 * The `Peerdial-Key` header value for `key`: Autocrypt's attributes without
 * `prefer-encrypt` (an encryption preference is Autocrypt's business, not
 * ours: peerdial always encrypts once it has the key).
 */
export function buildKeyHeader(addr: string, key: openpgp.PublicKey): string {
  const b64 = Buffer.from(key.write()).toString('base64');
  const chunks = b64.match(/.{1,64}/g) ?? [];
  return `addr=${addr.trim().toLowerCase()}; keydata=${chunks.join(' ')}`;
}

/** Parse a key header value (`Peerdial-Key`, or a legacy `Autocrypt`); undefined when it is not a usable one. */
export function parseAutocryptHeader(value: unknown): AutocryptHeader | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_KEYDATA_BYTES * 2) return undefined;
  const attrs = new Map<string, string>();
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) {
      if (part.trim() === '') continue;
      return undefined;
    }
    const name = part.slice(0, eq).trim().toLowerCase();
    const val = part.slice(eq + 1).trim();
    if (attrs.has(name)) return undefined;
    attrs.set(name, val);
  }
  for (const name of attrs.keys()) {
    // Unknown attributes are fine only when marked non-critical with a leading underscore.
    if (!['addr', 'prefer-encrypt', 'keydata'].includes(name) && !name.startsWith('_')) return undefined;
  }
  const addr = attrs.get('addr')?.toLowerCase();
  const keydataB64 = attrs.get('keydata')?.replace(/\s+/g, '');
  if (!addr || !/^[^\s@<>;,]+@[^\s@<>;,]+$/.test(addr)) return undefined;
  if (!keydataB64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(keydataB64)) return undefined;
  const keydata = new Uint8Array(Buffer.from(keydataB64, 'base64'));
  if (keydata.length === 0 || keydata.length > MAX_KEYDATA_BYTES) return undefined;
  const pe = attrs.get('prefer-encrypt')?.toLowerCase();
  return { addr, preferEncrypt: pe === 'mutual' ? 'mutual' : 'nopreference', keydata };
}

/** The public key carried by a key header; undefined when it is not a valid public key. */
export async function readAutocryptKey(header: AutocryptHeader): Promise<openpgp.PublicKey | undefined> {
  try {
    const key = await openpgp.readKey({ binaryKey: header.keydata });
    // A private key has no business in a header; refuse rather than reduce it.
    if (key.isPrivate()) return undefined;
    return key;
  } catch {
    return undefined;
  }
}
