/**
 * Compose Delta Chat chat mails as core 2.57 sends them; the parser is
 * deltachat-parse.ts, the names deltachat-headers.ts. Pure: no I/O, no
 * clock (the date is passed in); randomness only for the Message-ID, the
 * MIME boundary and by OpenPGP.
 *
 * Encrypted (the normal case):
 *
 *   multipart/encrypted; protocol="application/pgp-encrypted"
 *     application/pgp-encrypted   "Version: 1"
 *     application/octet-stream    armored OpenPGP: signed by the sender,
 *                                 encrypted to the recipient and the sender
 *       inner: text/plain; protected-headers="v1"; hp="cipher"
 *              From, To, Subject, Date, Message-ID, In-Reply-To, References,
 *              Chat-Version, Autocrypt (the sender's key), the chat headers
 *              (Chat-Content, Secure-Join*, Chat-Webrtc-*), HP-Outer lines,
 *              Autocrypt-Gossip
 *
 * Outer headers say only From, a hidden recipient list, `Subject: [...]`,
 * Date, Message-ID and Chat-Version. Unencrypted: only the first
 * SecureJoin step (`vc-request`), which goes before the joiner has the
 * inviter's key: a plain text/plain mail with all headers outside,
 * Autocrypt among them.
 *
 * Only mail to Delta Chat contacts carries the standard `Autocrypt`
 * header: it is how Delta Chat learns a key (peerdial's own mail keeps its
 * key in `Peerdial-Key`, headers.ts HEADER_KEY).
 */
import { randomBytes } from 'node:crypto';
import * as openpgp from 'openpgp';
import { PeerdialError } from '../errors.js';
import { buildAutocryptHeader } from './autocrypt.js';
import { newMessageId, type BuiltMail } from './build.js';
import {
  AUTOCRYPT_GOSSIP_HEADER,
  AUTOCRYPT_HEADER,
  CHAT_VERSION,
  CHAT_VERSION_HEADER,
  DELTACHAT_LIMITS,
  HIDDEN_SUBJECT,
  HP_OUTER_HEADER,
  SINGLE_HEADERS,
  encodeWords,
  foldHeader,
  isPlainHeaderValue,
} from './deltachat-headers.js';
import type { Identity } from './identity.js';
import { LIMITS } from './limits.js';

/** One chat header to write, in order. */
export interface ChatHeader {
  name: string;
  value: string;
  /**
   * Write the value as base64 encoded words even when it is plain ASCII
   * (Delta Chat writes Chat-Webrtc-Room, -Accepted and
   * -Has-Video-Initially so). Non-ASCII values are always encoded.
   */
  encoded?: boolean;
}

export interface DeltaChatComposeOptions {
  sender: Identity;
  /** Display name in the inner From (Delta Chat shows it). */
  senderName?: string;
  /** The one recipient (lower-case address). */
  to: string;
  toName?: string;
  /**
   * The recipient's key: the mail is signed and encrypted to it and to the
   * sender. Without it the mail goes unencrypted and unsigned: allowed only
   * for the first SecureJoin step (`Secure-Join: vc-request`).
   */
  recipientKey?: openpgp.PublicKey;
  date: Date;
  /** With or without angle brackets; a random one otherwise. */
  messageId?: string;
  inReplyTo?: string;
  references?: string[];
  /** Inner Subject; "Message from NAME" by default, as Delta Chat writes it. */
  subject?: string;
  /** Chat headers after Chat-Version and Autocrypt: Chat-Content, Secure-Join*, Chat-Webrtc-*. */
  headers?: ChatHeader[];
  /** The readable text (what an ordinary mail program shows). */
  text: string;
  /**
   * Autocrypt-Gossip keys inside the encrypted part. Delta Chat ignores
   * SecureJoin steps after the first unless they gossip the recipient's
   * own key back to it (its check against forwarded messages).
   */
  gossip?: Array<{ addr: string; key: openpgp.PublicKey }>;
}

function fail(message: string, cause?: unknown): never {
  throw new PeerdialError('WIRE_BUILD', message, {
    hint: 'This is a bug in the caller of composeDeltaChatMail; report it with the message above.',
    ...(cause === undefined ? {} : { cause }),
  });
}

function tooLarge(message: string, hint: string): never {
  throw new PeerdialError('LIMIT_EXCEEDED', message, { hint });
}

function angle(id: string): string {
  const t = id.trim();
  return t.startsWith('<') ? t : `<${t}>`;
}

const HEADER_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,76}$/;
const ADDRESS = /^[^\s@<>;,"()\\]+@[^\s@<>;,"()\\]+$/;
/** Headers the composer writes itself: a caller's chat header must not name them. */
const OWN_HEADERS = new Set([
  'from', 'to', 'cc', 'bcc', 'subject', 'date', 'message-id', 'in-reply-to', 'references', 'mime-version',
  'content-type', 'content-transfer-encoding', 'chat-version', 'autocrypt', 'autocrypt-gossip', 'hp-outer',
]);

/** A display name and address as one mailbox: `"Name" <addr>` or `<addr>`. */
export function mailbox(addr: string, name?: string): string {
  if (!name) return `<${addr}>`;
  const clean = name.replace(/[\r\n"\\]/g, ' ').trim();
  if (clean === '') return `<${addr}>`;
  return isPlainHeaderValue(clean) ? `"${clean}" <${addr}>` : `${encodeWords(clean)} <${addr}>`;
}

/** RFC 5322 date in UTC, as Delta Chat writes it: `Sat, 21 Nov 2026 03:07:10 +0000`. */
export function mailDate(d: Date): string {
  return d.toUTCString().replace(/GMT$/, '+0000');
}

function valueOf(h: ChatHeader): string {
  // a value with a line break or any non-ASCII is never plain: it goes as encoded words
  return h.encoded || !isPlainHeaderValue(h.value) ? encodeWords(h.value) : h.value;
}

/** The readable body: 7bit when it is short-lined ASCII, base64 otherwise. */
function body(text: string): { cte: string; content: string } {
  const normalized = text.replace(/\r?\n/g, '\r\n');
  if (/^[\x20-\x7e\r\n\t]*$/.test(normalized) && normalized.split('\r\n').every((l) => l.length <= 76)) {
    return { cte: '7bit', content: normalized };
  }
  const b64 = Buffer.from(normalized, 'utf8').toString('base64');
  return { cte: 'base64', content: (b64.match(/.{1,76}/g) ?? []).join('\r\n') };
}

function checkOptions(o: DeltaChatComposeOptions): void {
  if (!ADDRESS.test(o.to)) fail(`"${o.to.slice(0, 80)}" is not a mail address.`);
  if (Number.isNaN(o.date.getTime())) fail('The mail date is not a valid date.');
  if (o.text.length > DELTACHAT_LIMITS.textChars) {
    tooLarge(`The text is ${o.text.length} characters; a Delta Chat mail may carry at most ${DELTACHAT_LIMITS.textChars}.`, 'Shorten the text.');
  }
  const seen = new Set<string>();
  for (const h of o.headers ?? []) {
    const lower = h.name.toLowerCase();
    if (!HEADER_NAME.test(h.name)) fail(`"${h.name.slice(0, 80)}" is not a header name.`);
    if (OWN_HEADERS.has(lower)) fail(`The composer writes ${h.name} itself; it is not a chat header.`);
    if (seen.has(lower) && (SINGLE_HEADERS as readonly string[]).includes(lower)) fail(`${h.name} given twice.`);
    seen.add(lower);
    if (h.value.length > DELTACHAT_LIMITS.headerValueChars) {
      tooLarge(`The ${h.name} header is ${h.value.length} characters, more than ${DELTACHAT_LIMITS.headerValueChars}.`, 'A shorter session description (fewer candidates) fits.');
    }
  }
  if ((o.gossip?.length ?? 0) > DELTACHAT_LIMITS.gossipHeaders) fail(`More than ${DELTACHAT_LIMITS.gossipHeaders} gossip keys.`);
  if (!o.recipientKey) {
    const step = o.headers?.find((h) => h.name.toLowerCase() === 'secure-join')?.value;
    if (step !== 'vc-request' && step !== 'vg-request') {
      fail('A Delta Chat mail goes unencrypted only as the first SecureJoin step (vc-request); no key of the recipient was given.');
    }
  }
}

/** Compose one Delta Chat chat mail. Throws PeerdialError WIRE_BUILD or LIMIT_EXCEEDED. */
export async function composeDeltaChatMail(o: DeltaChatComposeOptions): Promise<BuiltMail> {
  checkOptions(o);
  const from = o.sender.email;
  const messageId = o.messageId ? angle(o.messageId) : newMessageId(from);
  const date = mailDate(o.date);
  const subject = o.subject ?? `Message from ${o.senderName ?? from}`;
  const autocrypt = buildAutocryptHeader(from, o.sender.publicKey);
  const chat = (o.headers ?? []).map((h) => foldHeader(h.name, valueOf(h)));
  const threading: string[] = [];
  if (o.inReplyTo) threading.push(`In-Reply-To: ${angle(o.inReplyTo)}`);
  if (o.references && o.references.length > 0) threading.push(foldHeader('References', o.references.map(angle).join(' ')));
  const text = body(o.text);
  const subjectValue = isPlainHeaderValue(subject) ? subject : encodeWords(subject);

  if (!o.recipientKey) {
    const lines = [
      `From: ${mailbox(from, o.senderName)}`,
      `To: ${mailbox(o.to, o.toName)}`,
      foldHeader('Subject', subjectValue),
      `Date: ${date}`,
      `Message-ID: ${messageId}`,
      ...threading,
      `${CHAT_VERSION_HEADER}: ${CHAT_VERSION}`,
      foldHeader(AUTOCRYPT_HEADER, autocrypt),
      ...chat,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset="utf-8"',
      `Content-Transfer-Encoding: ${text.cte}`,
    ];
    return finish(Buffer.from(lines.join('\r\n') + '\r\n\r\n' + text.content + '\r\n', 'utf8'), messageId);
  }

  const outer = [
    `From: <${from}>`,
    'To: "hidden-recipients": ;',
    `Subject: ${HIDDEN_SUBJECT}`,
    `Date: ${date}`,
    `Message-ID: ${messageId}`,
    `${CHAT_VERSION_HEADER}: ${CHAT_VERSION}`,
  ];
  const inner = [
    'Content-Type: text/plain; charset="utf-8"; protected-headers="v1"; hp="cipher"',
    `From: ${mailbox(from, o.senderName)}`,
    `To: ${mailbox(o.to, o.toName)}`,
    foldHeader('Subject', subjectValue),
    `Date: ${date}`,
    ...threading,
    `${CHAT_VERSION_HEADER}: ${CHAT_VERSION}`,
    foldHeader(AUTOCRYPT_HEADER, autocrypt),
    ...chat,
    `Message-ID: ${messageId}`,
    ...outer.map((l) => `${HP_OUTER_HEADER}: ${l}`),
    ...(o.gossip ?? []).map((g) => foldHeader(AUTOCRYPT_GOSSIP_HEADER, gossipValue(g.addr, g.key))),
    `Content-Transfer-Encoding: ${text.cte}`,
  ];
  const innerText = inner.join('\r\n') + '\r\n\r\n' + text.content + '\r\n';
  if (Buffer.byteLength(innerText) > DELTACHAT_LIMITS.innerBytes) {
    tooLarge(`The Delta Chat mail is ${Buffer.byteLength(innerText)} bytes inside, more than ${DELTACHAT_LIMITS.innerBytes}.`, 'Send less.');
  }
  let armored: string;
  try {
    armored = await openpgp.encrypt({
      message: await openpgp.createMessage({ text: innerText, format: 'utf8', date: o.date }),
      encryptionKeys: [o.recipientKey, o.sender.publicKey],
      signingKeys: o.sender.privateKey,
      date: o.date,
      format: 'armored',
    });
  } catch (cause) {
    return fail(`Could not encrypt the Delta Chat mail: ${(cause as Error).message}`, cause);
  }
  if (armored.length > LIMITS.armoredBytes) {
    tooLarge(`The encrypted Delta Chat mail is ${armored.length} bytes, more than ${LIMITS.armoredBytes} (LIMITS.armoredBytes).`, 'Send less.');
  }
  const boundary = randomBytes(18).toString('hex');
  const raw = [
    ...outer,
    'MIME-Version: 1.0',
    `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: application/pgp-encrypted',
    'Content-Description: PGP/MIME version identification',
    '',
    'Version: 1',
    '',
    `--${boundary}`,
    'Content-Type: application/octet-stream; name="encrypted.asc"',
    'Content-Description: OpenPGP encrypted message',
    'Content-Disposition: inline; filename="encrypted.asc"',
    '',
    armored.replace(/\r?\n/g, '\r\n').replace(/\r\n$/, ''),
    '',
    `--${boundary}--`,
    '',
  ].join('\r\n');
  return finish(Buffer.from(raw, 'utf8'), messageId);
}

function finish(raw: Buffer, messageId: string): BuiltMail {
  if (raw.length > LIMITS.mailBytes) {
    tooLarge(`The Delta Chat mail is ${raw.length} bytes, more than ${LIMITS.mailBytes} (LIMITS.mailBytes).`, 'Send less.');
  }
  return { raw, messageId };
}

/** An Autocrypt-Gossip value: `addr=...; keydata=...` (no prefer-encrypt, as Delta Chat writes it). */
export function gossipValue(addr: string, key: openpgp.PublicKey): string {
  const b64 = Buffer.from(key.write()).toString('base64');
  return `addr=${addr.trim().toLowerCase()}; keydata=${(b64.match(/.{1,64}/g) ?? []).join(' ')}`;
}
