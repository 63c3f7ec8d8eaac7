/**
 * Delta Chat's chat-mail dialect (core 2.57), the names and small codecs
 * both the composer (deltachat.ts) and the parser (deltachat-parse.ts)
 * use. Pure: no I/O.
 *
 * A Delta Chat mail is PGP/MIME (RFC 3156 `multipart/encrypted`), signed
 * and encrypted in one OpenPGP message, with the real headers inside the
 * encrypted part ("protected headers", `protected-headers="v1"`) and the
 * outer ones neutral (`Subject: [...]`); `HP-Outer:` lines inside repeat
 * what the outside said. `Chat-Version: 1.0` marks it as a chat mail.
 */
import { LIMITS } from './limits.js';

export const CHAT_VERSION_HEADER = 'Chat-Version';
export const CHAT_VERSION = '1.0';
export const CHAT_CONTENT_HEADER = 'Chat-Content';
/** SecureJoin step (`vc-request`, `vc-auth-required`, `vc-request-with-auth`, `vc-contact-confirm`, ...). */
export const SECURE_JOIN_HEADER = 'Secure-Join';
export const SECURE_JOIN_INVITENUMBER_HEADER = 'Secure-Join-Invitenumber';
export const SECURE_JOIN_AUTH_HEADER = 'Secure-Join-Auth';
export const SECURE_JOIN_FINGERPRINT_HEADER = 'Secure-Join-Fingerprint';
/** The standard Autocrypt header: how Delta Chat learns a key. Only in mail to Delta Chat contacts. */
export const AUTOCRYPT_HEADER = 'Autocrypt';
export const AUTOCRYPT_GOSSIP_HEADER = 'Autocrypt-Gossip';
/** Inside the encrypted part: what the outer headers said. */
export const HP_OUTER_HEADER = 'HP-Outer';
/** Outer Subject of every encrypted Delta Chat mail. */
export const HIDDEN_SUBJECT = '[...]';

/** What the wire allows of one Delta Chat mail, on top of LIMITS (the whole mail, header section, armor). */
export const DELTACHAT_LIMITS = {
  /** The decrypted inner MIME message. */
  innerBytes: LIMITS.payloadBytes,
  /** One header value, unfolded (an SDP in an encoded word is the longest: 64 KiB of SDP in base64). */
  headerValueChars: Math.ceil(LIMITS.sdpChars / 3) * 4 + 4096,
  /** Autocrypt-Gossip headers in one mail. */
  gossipHeaders: LIMITS.addresses,
  /** The readable text of a chat mail. */
  textChars: LIMITS.textChars,
} as const;

/** Headers that may appear at most once (outer and inner alike); a second one makes the mail malformed. */
export const SINGLE_HEADERS = [
  'from',
  'message-id',
  'in-reply-to',
  'subject',
  'date',
  'content-type',
  'chat-version',
  'chat-content',
  'autocrypt',
  'secure-join',
  'secure-join-invitenumber',
  'secure-join-auth',
  'secure-join-fingerprint',
  'chat-webrtc-room',
  'chat-webrtc-accepted',
  'chat-webrtc-has-video-initially',
] as const;

/**
 * A header value as RFC 2047 base64 encoded words (UTF-8), split into
 * words of at most 45 bytes so the line can be folded between them; a
 * reader joins adjacent words without the whitespace between. This is how
 * Delta Chat writes its Chat-Webrtc-* values. The split never cuts a UTF-8
 * character.
 */
export function encodeWords(value: string): string {
  const bytes = Buffer.from(value, 'utf8');
  const words: string[] = [];
  let start = 0;
  while (start < bytes.length) {
    let end = Math.min(start + 45, bytes.length);
    // back off from the middle of a multi-byte character
    while (end < bytes.length && end > start && (bytes[end]! & 0xc0) === 0x80) end--;
    words.push(`=?utf-8?B?${bytes.subarray(start, end).toString('base64')}?=`);
    start = end;
  }
  return words.length > 0 ? words.join(' ') : '=?utf-8?B??=';
}

const WORD = /=\?([A-Za-z0-9_.:-]{1,40})(?:\*[A-Za-z0-9-]{1,20})?\?([BbQq])\?([^?\s]*)\?=/g;

function decodeCharset(bytes: Buffer, charset: string): string | undefined {
  const cs = charset.toLowerCase();
  if (cs === 'utf-8' || cs === 'utf8' || cs === 'us-ascii') return bytes.toString('utf8');
  if (cs === 'iso-8859-1' || cs === 'latin1' || cs === 'windows-1252') return bytes.toString('latin1');
  return undefined;
}

/**
 * Decode RFC 2047 encoded words in a header value (B and Q, UTF-8,
 * US-ASCII, Latin-1); whitespace between two adjacent encoded words goes.
 * Adjacent words of one charset are joined as bytes before decoding, so a
 * character split across words survives. Unknown charsets stay as written.
 */
export function decodeWords(value: string): string {
  if (!value.includes('=?')) return value;
  let out = '';
  let last = 0;
  let pending: { bytes: Buffer[]; charset: string } | undefined;
  const flush = (): void => {
    if (!pending) return;
    out += decodeCharset(Buffer.concat(pending.bytes), pending.charset) ?? '';
    pending = undefined;
  };
  for (const m of value.matchAll(WORD)) {
    const between = value.slice(last, m.index);
    const [whole, charset, enc, text] = m as unknown as [string, string, string, string];
    const bytes =
      enc.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64')
        : Buffer.from(text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_s, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
    if (decodeCharset(Buffer.alloc(0), charset) === undefined) {
      flush();
      out += between + whole;
    } else if (pending && /^[ \t\r\n]*$/.test(between) && pending.charset.toLowerCase() === charset.toLowerCase()) {
      pending.bytes.push(bytes);
    } else {
      flush();
      out += between;
      pending = { bytes: [bytes], charset };
    }
    last = (m.index ?? 0) + whole.length;
  }
  flush();
  return out + value.slice(last);
}

/** Is this header value writable as it is (printable ASCII, no encoded-word look-alike)? */
export function isPlainHeaderValue(value: string): boolean {
  return /^[\x20-\x7e]*$/.test(value) && !value.includes('=?');
}

/**
 * One header line, folded at spaces to lines of at most 78 characters
 * where there are spaces to fold at (an Autocrypt key and encoded words
 * have them).
 */
export function foldHeader(name: string, value: string): string {
  const words = value.split(' ');
  const lines: string[] = [];
  let line = `${name}:`;
  for (const w of words) {
    if (line.length + 1 + w.length > 78 && line.length > name.length + 1) {
      lines.push(line);
      line = ' ' + w;
    } else {
      line += ' ' + w;
    }
  }
  lines.push(line);
  return lines.join('\r\n');
}

/**
 * Headers that mark a Delta Chat chat mail, from the outer headers alone:
 * `Chat-Version` present. Says nothing about whom it is for: the inbox
 * decides that (a SecureJoin peerdial runs, a Delta Chat contact).
 */
export function isChatVersionValue(values: string[]): boolean {
  return values.length === 1 && values[0]!.trim() === CHAT_VERSION;
}
