/**
 * Parse Delta Chat chat mails (core 2.57): the mirror of deltachat.ts.
 * Never throws: a bad mail is a typed rejection with a reason (the same
 * reasons as parse.ts). Pure: no I/O; the keys we already hold come in
 * through the context.
 *
 * What is checked, in order: a chat mail at all (one `Chat-Version: 1.0`),
 * sizes (LIMITS, DELTACHAT_LIMITS), one From, one Message-ID, no header
 * twice that may appear once; encrypted mail: one armored OpenPGP part,
 * decryptable with our key, exactly one signature, by the key that speaks
 * for the From address (the one we hold for it, else the one its
 * `Autocrypt` header carries for exactly that address), the inner From
 * the outer From, the inner To naming us. Unencrypted mail is read (the
 * first SecureJoin step is unencrypted) but says so: `encrypted: false`,
 * no signer; its caller decides what such a mail may do.
 */
import { simpleParser } from 'mailparser';
import type * as openpgp from 'openpgp';
import { parseAutocryptHeader, readAutocryptKey } from './autocrypt.js';
import {
  AUTOCRYPT_GOSSIP_HEADER,
  AUTOCRYPT_HEADER,
  CHAT_VERSION_HEADER,
  DELTACHAT_LIMITS,
  SINGLE_HEADERS,
  decodeWords,
  isChatVersionValue,
} from './deltachat-headers.js';
import { splitHeaderSection, type HeaderField } from './headers.js';
import { fingerprintOf, keyHasKeyID, type Identity } from './identity.js';
import { LIMITS } from './limits.js';
import type { RejectReason } from './message.js';
import { openPayload, verifyWith } from './payload.js';
import { addressList, firstMessageIdIn, singleAddress } from './peek.js';
import { errorText, reject, Rejection } from './rejection.js';
import { sanitizeText } from './sanitize.js';

export interface DeltaChatParseContext {
  self: Identity;
  now: Date;
  /** The key we already hold for this address (a Delta Chat contact's pinned key); undefined when none. */
  knownKey(addr: string): openpgp.PublicKey | undefined;
}

export interface DeltaChatMail {
  /** Lower-case sender address (outer From; the inner From is the same). */
  from: string;
  fromName?: string;
  /** Lower-case recipient addresses (inner To when encrypted). */
  to: string[];
  /** With angle brackets. */
  messageId: string;
  inReplyTo?: string;
  references: string[];
  date?: Date;
  /** Signed and encrypted, and the signature verified with `senderKey`. */
  encrypted: boolean;
  /** The key that signed it (encrypted mail), or the one its Autocrypt header carries (unencrypted mail: unverified). */
  senderKey?: openpgp.PublicKey;
  senderFingerprint?: string;
  /** The key came from the mail's Autocrypt header, not from `knownKey`. */
  keyFromMail: boolean;
  /** Autocrypt-Gossip keys by lower-case address (encrypted mail only). */
  gossip: Map<string, openpgp.PublicKey>;
  /**
   * The headers that count, names lower-case, encoded words decoded: the
   * protected (inner) ones of an encrypted mail, the outer ones otherwise.
   * Headers that may appear once have one value.
   */
  headers: Map<string, string[]>;
  /** The readable text. */
  text: string;
}

export type DeltaChatParseResult =
  | { ok: true; mail: DeltaChatMail }
  | { ok: false; reason: RejectReason; detail: string; messageId?: string; from?: string };

/** The one value of a header, or undefined. */
export function headerOf(mail: DeltaChatMail, name: string): string | undefined {
  return mail.headers.get(name.toLowerCase())?.[0];
}

function collect(fields: HeaderField[], where: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const f of fields) {
    if (f.value.length > DELTACHAT_LIMITS.headerValueChars) reject('too-large', `${where} ${f.name} header is longer than ${DELTACHAT_LIMITS.headerValueChars} characters`);
    const list = map.get(f.name) ?? [];
    list.push(f.value);
    map.set(f.name, list);
  }
  for (const name of SINGLE_HEADERS) {
    const n = map.get(name)?.length ?? 0;
    if (n > 1) reject('malformed', `${n} ${where} ${name} headers`);
  }
  return map;
}

function contentTypeOf(value: string | undefined): string {
  return (value ?? 'text/plain').split(';')[0]!.trim().toLowerCase();
}

async function keyFromAutocrypt(values: string[] | undefined, addr: string): Promise<openpgp.PublicKey | undefined> {
  const h = parseAutocryptHeader(values?.[0]);
  if (!h || h.addr !== addr) return undefined;
  return readAutocryptKey(h);
}

async function readText(mime: Buffer | string): Promise<string> {
  const parsed = await simpleParser(mime, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true, maxHtmlLengthToParse: 0 });
  return (parsed.text ?? '').slice(0, DELTACHAT_LIMITS.textChars);
}

async function parseChecked(raw: Buffer, ctx: DeltaChatParseContext, out: { messageId?: string; from?: string }): Promise<DeltaChatMail> {
  if (raw.length > LIMITS.mailBytes) reject('too-large', `mail is ${raw.length} bytes, more than ${LIMITS.mailBytes}`);
  const split = splitHeaderSection(raw);
  const outer = collect(split.fields, 'outer');
  const messageId = firstMessageIdIn(outer.get('message-id')?.[0]);
  if (messageId) out.messageId = messageId;
  const from = singleAddress(outer.get('from')?.[0]);
  if (from) out.from = from;
  if (!isChatVersionValue(outer.get(CHAT_VERSION_HEADER.toLowerCase()) ?? [])) reject('not-ours', `no single ${CHAT_VERSION_HEADER}: 1.0 header`);
  if (!split.complete) reject('malformed', `header section is larger than ${LIMITS.headerBytes} bytes or has no end`);
  if (!messageId) reject('malformed', 'no valid Message-ID');
  if (!from) reject('malformed', 'From does not name exactly one address');

  const top = contentTypeOf(outer.get('content-type')?.[0]);
  if (top !== 'multipart/encrypted') {
    // Unencrypted: headers as they are; the key an Autocrypt header carries is only a claim.
    const key = await keyFromAutocrypt(outer.get(AUTOCRYPT_HEADER.toLowerCase()), from);
    return {
      from,
      ...nameOf(outer.get('from')![0]!),
      to: addressList(outer.get('to') ?? []),
      messageId,
      ...threading(outer),
      encrypted: false,
      ...(key ? { senderKey: key, senderFingerprint: fingerprintOf(key) } : {}),
      keyFromMail: key !== undefined,
      gossip: new Map(),
      headers: decoded(outer),
      text: await readText(raw),
    };
  }

  let parsed;
  try {
    parsed = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true, maxHtmlLengthToParse: 0 });
  } catch (err) {
    return reject('malformed', `MIME structure cannot be parsed (${errorText(err)})`);
  }
  const parts = parsed.attachments.filter((a) => a.contentType?.toLowerCase() === 'application/octet-stream');
  if (parts.length !== 1) reject('malformed', `${parts.length} application/octet-stream parts in multipart/encrypted, expected 1`);
  const content = parts[0]!.content;
  if (!Buffer.isBuffer(content) || content.length === 0) reject('malformed', 'encrypted part is empty');
  if (content.length > LIMITS.armoredBytes) reject('too-large', `encrypted part is ${content.length} bytes, more than ${LIMITS.armoredBytes}`);
  // eslint-disable-next-line no-control-regex
  if (/[^\x09\x0a\x0d\x20-\x7e]/.test(content.toString('latin1'))) reject('malformed', 'encrypted part is not ASCII-armored');
  const armored = content.toString('ascii');
  if (!armored.includes('-----BEGIN PGP MESSAGE-----')) reject('malformed', 'encrypted part is not an armored OpenPGP message');

  const verifyDate = new Date(ctx.now.getTime() + LIMITS.clockSkewMs);
  const opened = await openPayload(armored, ctx.self.privateKey, verifyDate);
  if (!opened.encrypted) reject('malformed', 'multipart/encrypted holds no encrypted message');
  if (Buffer.byteLength(opened.text) > DELTACHAT_LIMITS.innerBytes) reject('too-large', `inner message is more than ${DELTACHAT_LIMITS.innerBytes} bytes`);
  const innerSplit = splitHeaderSection(opened.text);
  if (!innerSplit.complete) reject('malformed', 'inner header section is too large or has no end');
  const inner = collect(innerSplit.fields, 'inner');

  // Who speaks for the From address: the key we hold, else the one its Autocrypt header names for it.
  const innerFrom = singleAddress(inner.get('from')?.[0]);
  if (innerFrom && innerFrom !== from) reject('sender-mismatch', `inner From is ${innerFrom} but the mail is from ${from}`);
  const known = ctx.knownKey(from);
  const carried = await keyFromAutocrypt(inner.get(AUTOCRYPT_HEADER.toLowerCase()), from);
  const key = known ?? carried;
  if (!key) reject('unknown-sender', `no key is known for ${from} and the mail's Autocrypt header carries none for that address`);
  if (opened.signingKeyIDs.length === 0) reject('bad-signature', 'encrypted mail is not signed');
  if (opened.signingKeyIDs.length > 1) reject('bad-signature', 'encrypted mail carries more than one signature');
  const signer = opened.signingKeyIDs[0]!;
  if (!keyHasKeyID(key, signer)) {
    reject(known ? 'key-mismatch' : 'bad-signature', `signed by key ${signer.toHex().toUpperCase()}, not by ${known ? 'the key held for' : 'the Autocrypt key of'} ${from} (${fingerprintOf(key)})`);
  }
  const verified = await verifyWith(armored, key, ctx.self.privateKey, true, verifyDate);
  if (verified !== opened.text) reject('bad-signature', 'verified text differs from the decrypted text');

  const self = ctx.self.email.toLowerCase();
  const to = addressList(inner.get('to') ?? []);
  if (!to.includes(self)) reject('wrong-recipient', `inner To names ${to.slice(0, 3).join(', ') || 'nobody'}, not ${self}`);

  const gossip = new Map<string, openpgp.PublicKey>();
  const gossipValues = inner.get(AUTOCRYPT_GOSSIP_HEADER.toLowerCase()) ?? [];
  if (gossipValues.length > DELTACHAT_LIMITS.gossipHeaders) reject('too-large', `${gossipValues.length} Autocrypt-Gossip headers`);
  for (const v of gossipValues) {
    const h = parseAutocryptHeader(v);
    const k = h ? await readAutocryptKey(h) : undefined;
    if (h && k && !gossip.has(h.addr)) gossip.set(h.addr, k);
  }
  // Protected headers count; an inner Message-ID, when there is one, must be the outer one.
  const innerId = firstMessageIdIn(inner.get('message-id')?.[0]);
  if (innerId && innerId !== messageId) reject('malformed', `inner Message-ID ${innerId} is not the outer ${messageId}`);
  let text: string;
  try {
    text = await readText(opened.text);
  } catch (err) {
    return reject('malformed', `inner MIME cannot be parsed (${errorText(err)})`);
  }
  return {
    from,
    ...nameOf(inner.get('from')?.[0] ?? outer.get('from')![0]!),
    to,
    messageId,
    ...threading(inner),
    encrypted: true,
    senderKey: key,
    senderFingerprint: fingerprintOf(key),
    keyFromMail: !known,
    gossip,
    headers: decoded(inner),
    text,
  };
}

function decoded(map: Map<string, string[]>): Map<string, string[]> {
  const outMap = new Map<string, string[]>();
  for (const [k, v] of map) outMap.set(k, v.map(decodeWords));
  return outMap;
}

function nameOf(value: string): { fromName?: string } {
  const m = /^\s*(?:"((?:[^"\\]|\\.){0,200})"|([^<"]{1,200}?))\s*<[^>]*>\s*$/.exec(decodeWords(value));
  const name = (m?.[1] ?? m?.[2])?.trim();
  return name ? { fromName: sanitizeText(name, { max: 100 }) } : {};
}

function threading(map: Map<string, string[]>): { inReplyTo?: string; references: string[]; date?: Date } {
  const inReplyTo = firstMessageIdIn(map.get('in-reply-to')?.[0]);
  const references = (map.get('references') ?? []).join(' ').match(/<[^<>\s]{1,900}>/g)?.slice(0, 100) ?? [];
  const date = map.get('date')?.[0] ? new Date(map.get('date')![0]!) : undefined;
  return {
    ...(inReplyTo ? { inReplyTo } : {}),
    references,
    ...(date && !Number.isNaN(date.getTime()) ? { date } : {}),
  };
}

/** Parse one raw Delta Chat mail. Never throws. */
export async function parseDeltaChatMail(raw: Buffer, ctx: DeltaChatParseContext): Promise<DeltaChatParseResult> {
  const out: { messageId?: string; from?: string } = {};
  try {
    if (!(raw instanceof Uint8Array)) reject('malformed', 'input is not a byte buffer');
    return { ok: true, mail: await parseChecked(Buffer.isBuffer(raw) ? raw : Buffer.from(raw), ctx, out) };
  } catch (err) {
    const r =
      err instanceof Rejection
        ? { ok: false as const, reason: err.reason, detail: sanitizeText(err.detail) }
        : { ok: false as const, reason: 'malformed' as const, detail: sanitizeText(`mail could not be processed (${errorText(err)})`) };
    return { ...r, ...(out.messageId ? { messageId: out.messageId } : {}), ...(out.from ? { from: sanitizeText(out.from, { max: 320 }) } : {}) };
  }
}
