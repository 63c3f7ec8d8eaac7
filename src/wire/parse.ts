/**
 * Parse an address mail into a typed message or a typed rejection: the
 * mirror of build.ts. Never throws: every bad input is a rejection with a
 * reason. Pure: no I/O; the clock, the contact book, the policy and the
 * ledger of processed mail are passed in.
 */
import { simpleParser, type ParsedMail } from 'mailparser';
import type * as openpgp from 'openpgp';
import { parseAutocryptHeader, readAutocryptKey } from './autocrypt.js';
import { HEADER_KEY, HEADER_LEGACY_AUTOCRYPT, HEADER_SIGNER, HEADER_VERSION, PAYLOAD_MEDIA_TYPE, PROTOCOL_VERSION, STANDING_MEDIA_TYPE, headerValues, splitHeaderSection, type HeaderSource } from './headers.js';
import { LIMITS, lifetimeLimitMs } from './limits.js';
import { fingerprintOf, keyHasKeyID, type Identity } from './identity.js';
import type { PeerdialMessage, RejectReason } from './message.js';
import { openPayload, verifyWith } from './payload.js';
import { firstMessageIdIn, singleAddress, type SenderPolicy } from './peek.js';
import { errorText, reject, Rejection } from './rejection.js';
import { validateMessage } from './validate.js';
import { sanitizeText } from './sanitize.js';
import { standingMismatch, validateStanding, type StandingAnswer } from './standing.js';

// The header-only looks live in peek.ts; importers of this module find them here too.
export { peekHeaders, screenHeaders, type MailOutline, type PeekedHeaders, type ScreenContext, type SenderPolicy } from './peek.js';

/** Sender clocks may run ahead of ours by this much before their signatures count as "from the future". */
export const MAX_CLOCK_SKEW_MS = LIMITS.clockSkewMs;

export interface ContactView {
  /** Pinned public key; undefined when the contact is known by address only (key learnt from the mail's Peerdial-Key). */
  publicKey?: openpgp.PublicKey;
  blocked?: boolean;
}

export interface ParseContext {
  self: { email: string; identity: Identity };
  now: Date;
  /** Pinned contact keys; undefined = unknown sender. */
  contact(email: string): ContactView | undefined;
  /** Who may send us signals. */
  policy: SenderPolicy;
  /** Replay check: has this nonce / message-id already been processed? */
  seen(nonce: string, messageId: string): boolean;
}

export interface ParseAccepted {
  ok: true;
  message: PeerdialMessage;
  messageId: string;
  inReplyTo?: string;
  senderKey: openpgp.PublicKey;
  senderFingerprint: string;
  /** The key came from the mail of a sender with no pinned key. */
  learnedKey: boolean;
  /** For a learned key: the header it came from (`Autocrypt` only from a peer on an older peerdial, HEADER_LEGACY_AUTOCRYPT). */
  keyHeader?: typeof HEADER_KEY | typeof HEADER_LEGACY_AUTOCRYPT;
  encrypted: boolean;
  /** An announce's standing answer (wire/standing.ts), verified like the payload and fitting the announce. */
  standing?: StandingAnswer;
  /** A standing answer was attached but is not taken (the mail itself still counts): why. */
  standingRefused?: string;
}

export interface ParseRejected {
  ok: false;
  reason: RejectReason;
  detail: string;
  /** The verified payload of a mail that is only stale (expired, replayed): for the call log, never for a connection. */
  message?: PeerdialMessage;
  messageId?: string;
  from?: string;
}

export type ParseResult = ParseAccepted | ParseRejected;

function contentTypeOf(parsed: ParsedMail): string | undefined {
  const ct = parsed.headers.get('content-type');
  if (ct && typeof ct === 'object' && 'value' in ct && typeof ct.value === 'string') return ct.value.toLowerCase();
  if (typeof ct === 'string') return ct.split(';')[0]?.trim().toLowerCase();
  return undefined;
}

async function parseChecked(raw: Buffer, ctx: ParseContext, out: { messageId?: string; from?: string }): Promise<ParseAccepted> {
  // 1. Ours at all? Decided from the outer headers only.
  const { fields, complete } = splitHeaderSection(raw);
  const header = (name: string): string[] => fields.filter((f) => f.name === name.toLowerCase()).map((f) => f.value);
  const versions = header(HEADER_VERSION);
  const messageIds = header('message-id');
  const peekId = firstMessageIdIn(messageIds[0]);
  if (peekId) out.messageId = peekId;
  const peekFrom = singleAddress(header('from')[0]);
  if (peekFrom) out.from = peekFrom;
  if (versions.length === 0) reject('not-ours', `no ${HEADER_VERSION} header`);

  // 2. A version we speak?
  if (versions.length > 1) reject('malformed', `${versions.length} ${HEADER_VERSION} headers`);
  if (versions[0] !== String(PROTOCOL_VERSION)) reject('unsupported-version', `${HEADER_VERSION} is "${versions[0]!.slice(0, 40)}", this peerdial reads ${PROTOCOL_VERSION}`);

  // 3. Well-formed: sizes, MIME, attachment, OpenPGP, JSON, schema.
  if (raw.length > LIMITS.mailBytes) reject('too-large', `mail is ${raw.length} bytes, more than ${LIMITS.mailBytes}`);
  if (!complete) reject('malformed', `header section is larger than ${LIMITS.headerBytes} bytes or has no end`);
  if (messageIds.length !== 1 || !peekId || messageIds[0]!.trim() !== peekId) reject('malformed', 'no single valid Message-ID');
  const messageId = peekId;
  if (header('from').length !== 1 || !peekFrom) reject('malformed', 'From does not name exactly one address');
  const outerFrom = peekFrom;

  let parsed: ParsedMail;
  try {
    parsed = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true, maxHtmlLengthToParse: 0 });
  } catch (err) {
    return reject('malformed', `MIME structure cannot be parsed (${errorText(err)})`);
  }
  const top = contentTypeOf(parsed);
  if (top !== 'multipart/mixed') reject('malformed', `top-level type is ${top ?? 'missing'}, not multipart/mixed`);
  const payloads = parsed.attachments.filter((a) => a.contentType?.toLowerCase() === PAYLOAD_MEDIA_TYPE);
  if (payloads.length !== 1) reject('malformed', `${payloads.length} ${PAYLOAD_MEDIA_TYPE} attachments, expected 1`);
  const content = payloads[0]!.content;
  if (!Buffer.isBuffer(content) || content.length === 0) reject('malformed', 'payload attachment is empty');
  if (content.length > LIMITS.armoredBytes) reject('too-large', `payload attachment is ${content.length} bytes, more than ${LIMITS.armoredBytes}`);
  // eslint-disable-next-line no-control-regex
  if (/[^\x09\x0a\x0d\x20-\x7e]/.test(content.toString('latin1'))) reject('malformed', 'payload attachment is not ASCII-armored');
  const armored = content.toString('ascii');
  if (!armored.includes('-----BEGIN PGP MESSAGE-----')) reject('malformed', 'payload attachment is not an armored OpenPGP message');

  const verifyDate = new Date(ctx.now.getTime() + MAX_CLOCK_SKEW_MS);
  const opened = await openPayload(armored, ctx.self.identity.privateKey, verifyDate);
  if (Buffer.byteLength(opened.text) > LIMITS.payloadBytes) reject('too-large', `payload is more than ${LIMITS.payloadBytes} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(opened.text);
  } catch (err) {
    return reject('malformed', `payload is not JSON (${errorText(err)})`);
  }
  const checked = validateMessage(json);
  if (!checked.ok) reject('malformed', checked.detail);
  const msg = checked.message;
  const created = Date.parse(msg.created);
  if (created > ctx.now.getTime() + LIMITS.clockSkewMs) {
    reject('from-the-future', `created ${msg.created}, more than ${LIMITS.clockSkewMs / 60_000} min ahead of our clock`);
  }
  const lifetime = Date.parse(msg.expires) - created;
  if (lifetime > lifetimeLimitMs(msg.kind)) {
    reject('lifetime-too-long', `a ${msg.kind} valid for ${Math.round(lifetime / 1000)} s; at most ${lifetimeLimitMs(msg.kind) / 1000} s`);
  }

  // 4. Blocked? (either the outer sender or the one the payload names)
  const outerContact = ctx.contact(outerFrom);
  const contact = outerFrom === msg.from ? outerContact : ctx.contact(msg.from);
  if (outerContact?.blocked || contact?.blocked) reject('blocked-sender', `${contact?.blocked ? msg.from : outerFrom} is blocked`);

  // 5. Allowed to send us signals at all?
  if (ctx.policy === 'nobody') reject('unknown-sender', 'policy accepts signals from nobody');
  if (!contact && ctx.policy === 'contacts') reject('unknown-sender', `${msg.from} is not a contact`);

  // 6. Which key speaks for the sender: the pinned one, or (unpinned) the one in the mail's Peerdial-Key.
  //    Migration: a mail without Peerdial-Key, from a peer still on a peerdial that wrote `Autocrypt`,
  //    may bring the key of an unpinned sender in that header; it is used only to check this mail's
  //    signature (below: it must be the signing key, else bad-signature), never beside a pinned key.
  const carried = async (name: string): Promise<openpgp.PublicKey | undefined> => {
    for (const value of header(name)) {
      const h = parseAutocryptHeader(value);
      if (h && h.addr === msg.from) return readAutocryptKey(h);
    }
    return undefined;
  };
  const pinned = contact?.publicKey;
  const ownHeaders = header(HEADER_KEY).length > 0;
  const mailKey = await carried(ownHeaders ? HEADER_KEY : HEADER_LEGACY_AUTOCRYPT);
  if (pinned && ownHeaders && mailKey && fingerprintOf(mailKey) !== fingerprintOf(pinned)) {
    reject('key-mismatch', `${HEADER_KEY} ${fingerprintOf(mailKey)} is not the pinned key ${fingerprintOf(pinned)} of ${msg.from}`);
  }
  const key = pinned ?? mailKey;
  if (!key) reject('unknown-sender', `no key is known for ${msg.from} and the mail carries none`);
  if (opened.signingKeyIDs.length === 0) reject('bad-signature', 'payload is not signed');
  if (opened.signingKeyIDs.length > 1) reject('bad-signature', 'payload carries more than one signature');
  const signer = opened.signingKeyIDs[0]!;
  if (!keyHasKeyID(key, signer)) {
    reject(
      pinned ? 'key-mismatch' : 'bad-signature',
      `signed by key ${signer.toHex().toUpperCase()}, not by ${pinned ? 'the pinned key' : 'the key in the mail'} ${fingerprintOf(key)}`,
    );
  }

  const named = header(HEADER_SIGNER);
  if (named.length > 1 || (named.length === 1 && named[0]!.toUpperCase() !== fingerprintOf(key))) {
    reject('key-mismatch', `${HEADER_SIGNER} names ${named.join(', ').slice(0, 100)}, not the signing key ${fingerprintOf(key)}`);
  }

  // 7. Signature (and, for encrypted mail, integrity) against that key.
  const verifiedText = await verifyWith(armored, key, ctx.self.identity.privateKey, opened.encrypted, verifyDate);
  if (verifiedText !== opened.text) reject('bad-signature', 'verified text differs from the decrypted text');

  // 8. Consistency with the envelope and with us.
  if (msg.from !== outerFrom) reject('sender-mismatch', `payload is from ${msg.from} but the mail is from ${outerFrom}`);
  const self = ctx.self.email.trim().toLowerCase();
  if (msg.to !== self) reject('wrong-recipient', `payload is for ${msg.to}, not for ${self}`);

  // 9. Fresh?
  // Verified but stale: the message goes along, so that the agent can log a
  // missed call; it never leads to a connection.
  if (ctx.now.getTime() > Date.parse(msg.expires)) throw new Rejection('expired', `expired at ${msg.expires}`, msg);
  if (ctx.seen(msg.nonce, messageId)) throw new Rejection('replayed', `nonce ${msg.nonce} or ${messageId} was already processed`, msg);

  const accepted: ParseAccepted = {
    ok: true,
    message: msg,
    messageId,
    senderKey: key,
    senderFingerprint: fingerprintOf(key),
    learnedKey: !pinned,
    encrypted: opened.encrypted,
  };
  if (!pinned) accepted.keyHeader = ownHeaders ? HEADER_KEY : HEADER_LEGACY_AUTOCRYPT;
  const standingParts = parsed.attachments.filter((a) => a.contentType?.toLowerCase() === STANDING_MEDIA_TYPE);
  if (standingParts.length > 0) {
    const read = await readStanding(standingParts.map((p) => p.content), msg, key, ctx, verifyDate);
    if (typeof read === 'string') accepted.standingRefused = sanitizeText(read);
    else accepted.standing = read;
  }
  const inReplyTo = firstMessageIdIn(header('in-reply-to')[0]);
  if (inReplyTo) accepted.inReplyTo = inReplyTo;
  return accepted;
}

/** A standing answer is a few candidates and credentials: far below the payload's limit. */
const STANDING_TEXT_BYTES = 16 * 1024;

/**
 * The standing answer of a verified announce: the same checks as the
 * payload (armored OpenPGP, encrypted to us, signed by exactly the key that
 * signed the payload), then its schema and whether it fits the announce.
 * Returns it, or why it is not taken; never throws. A refused standing
 * answer leaves the announce alone: the caller simply calls with two mails.
 */
async function readStanding(parts: unknown[], msg: PeerdialMessage, key: openpgp.PublicKey, ctx: ParseContext, verifyDate: Date): Promise<StandingAnswer | string> {
  if (msg.kind !== 'announce') return `a ${msg.kind} carries a standing answer; only an announce may`;
  if (parts.length !== 1) return `${parts.length} standing answers; an announce carries at most 1`;
  const content = parts[0];
  if (!Buffer.isBuffer(content) || content.length === 0 || content.length > LIMITS.armoredBytes) return 'standing answer attachment is empty or too large';
  // eslint-disable-next-line no-control-regex
  if (/[^\x09\x0a\x0d\x20-\x7e]/.test(content.toString('latin1'))) return 'standing answer is not ASCII-armored';
  const armored = content.toString('ascii');
  try {
    const opened = await openPayload(armored, ctx.self.identity.privateKey, verifyDate);
    if (!opened.encrypted) return 'standing answer is not encrypted';
    if (opened.signingKeyIDs.length !== 1 || !keyHasKeyID(key, opened.signingKeyIDs[0]!)) return 'standing answer is not signed by the key that signed the announce';
    const text = await verifyWith(armored, key, ctx.self.identity.privateKey, true, verifyDate);
    if (text !== opened.text) return 'standing answer: verified text differs from the decrypted text';
    if (Buffer.byteLength(text) > STANDING_TEXT_BYTES) return `standing answer is more than ${STANDING_TEXT_BYTES} bytes`;
    const checked = validateStanding(JSON.parse(text));
    if (!checked.ok) return checked.detail;
    return standingMismatch(checked.standing, msg, ctx.now) ?? checked.standing;
  } catch (err) {
    return err instanceof Rejection ? `standing answer: ${err.reason} (${err.detail})` : `standing answer cannot be read (${errorText(err)})`;
  }
}

/**
 * Parse one raw mail. Checks, in order: not ours, unsupported version,
 * malformed (or undecryptable), blocked sender, unknown sender, key
 * mismatch, bad signature, sender mismatch, wrong recipient, expired,
 * replayed. Never throws.
 */
export async function parseMail(raw: Buffer, ctx: ParseContext): Promise<ParseResult> {
  const out: { messageId?: string; from?: string } = {};
  try {
    if (!(raw instanceof Uint8Array)) reject('malformed', 'input is not a byte buffer');
    const buf = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
    return await parseChecked(buf, ctx, out);
  } catch (err) {
    // Details quote header values and library errors: made safe to print here, at the source.
    const rejected: ParseRejected =
      err instanceof Rejection
        ? { ok: false, reason: err.reason, detail: sanitizeText(err.detail), ...(err.verified ? { message: err.verified } : {}) }
        : { ok: false, reason: 'malformed', detail: sanitizeText(`mail could not be processed (${errorText(err)})`) };
    if (out.messageId) rejected.messageId = out.messageId;
    if (out.from) rejected.from = sanitizeText(out.from, { max: 320 });
    return rejected;
  }
}
