/**
 * Build an address mail from a typed message: the mirror of parse.ts.
 * Pure: no I/O, no clock (the date is passed in); randomness only for the
 * Message-ID and by OpenPGP itself.
 */
import { randomBytes } from 'node:crypto';
import { MailComposer } from './nodemailer.js';
import * as openpgp from 'openpgp';
import { PeerdialError } from '../errors.js';
import { buildKeyHeader } from './autocrypt.js';
import {
  AUTO_SUBMITTED_VALUE,
  HEADER_AUTO_SUBMITTED,
  HEADER_KEY,
  HEADER_SIGNER,
  HEADER_VERSION,
  NEUTRAL_SUBJECT,
  PAYLOAD_FILENAME,
  PAYLOAD_MEDIA_TYPE,
  PROTOCOL_VERSION,
  STANDING_FILENAME,
  STANDING_MEDIA_TYPE,
} from './headers.js';
import { fingerprintOf, type Identity } from './identity.js';
import { LIMITS, lifetimeLimitMs } from './limits.js';
import type { PeerdialMessage } from './message.js';
import { validateMessage } from './validate.js';
import { standingMismatch, validateStanding, type StandingAnswer } from './standing.js';

export interface BuildOptions {
  sender: Identity;
  /** The recipient's key; when given, the payload is encrypted to it (and to the sender). */
  recipientKey?: openpgp.PublicKey;
  /** Message-ID to use (with or without angle brackets); a random one otherwise. */
  messageId?: string;
  inReplyTo?: string;
  references?: string[];
  /** Date header and OpenPGP signature time. */
  date: Date;
  /** Display name in From. */
  fromName?: string;
  /**
   * An announce only, encrypted only: a standing answer for the recipient
   * (wire/standing.ts), sealed like the payload as a second attachment.
   */
  standing?: StandingAnswer;
}

export interface BuiltMail {
  raw: Buffer;
  /** With angle brackets, as in the header. */
  messageId: string;
}

/** A fresh Message-ID: 24 random bytes at the sender's domain. Says nothing about the user. */
export function newMessageId(senderEmail: string): string {
  const domain = senderEmail.slice(senderEmail.lastIndexOf('@') + 1).toLowerCase() || 'peerdial.invalid';
  return `<${randomBytes(24).toString('base64url')}@${domain}>`;
}

/** The human-readable part. Names no IP address, no SDP, no kind of signal. */
export function humanText(senderEmail: string): string {
  return (
    `This is a peerdial call signal from ${senderEmail}.\r\n` +
    'Your mail program can ignore it; peerdial reads it.\r\n'
  );
}

function angle(id: string): string {
  const t = id.trim();
  return t.startsWith('<') ? t : `<${t}>`;
}

function fail(message: string, cause?: unknown): never {
  throw new PeerdialError('WIRE_BUILD', message, {
    hint: 'This is a bug in the caller of buildMail; report it with the message above.',
    ...(cause === undefined ? {} : { cause }),
  });
}

function tooLarge(message: string, hint: string): never {
  throw new PeerdialError('LIMIT_EXCEEDED', message, { hint });
}

function duration(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000} days`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  return `${Math.round(ms / 1000)} s`;
}

/**
 * The sender's side of LIMITS: refuse what the receiver would refuse, with
 * the limit named. Throws PeerdialError LIMIT_EXCEEDED.
 */
export function checkSendLimits(msg: PeerdialMessage): void {
  if (typeof msg.text === 'string' && msg.text.length > LIMITS.textChars) {
    tooLarge(`The text is ${msg.text.length} characters; a ${msg.kind} may carry at most ${LIMITS.textChars} (LIMITS.textChars).`, 'Shorten the text, or send it as a file during a call.');
  }
  if (typeof msg.sdp === 'string' && msg.sdp.length > LIMITS.sdpChars) {
    tooLarge(`The session description is ${msg.sdp.length} characters, more than ${LIMITS.sdpChars} (LIMITS.sdpChars).`, 'Fewer addresses or media tracks make it shorter.');
  }
  if (typeof msg.attachment?.data === 'string' && msg.attachment.data.length > LIMITS.attachmentBase64Chars) {
    const bytes = Math.floor((msg.attachment.data.length * 3) / 4);
    tooLarge(`The voice message is about ${bytes} bytes; at most ${LIMITS.voicemailBytes} bytes go by mail (LIMITS.voicemailBytes).`, 'Record it shorter or as Opus: ffmpeg -i in.wav -c:a libopus -b:a 24k note.opus');
  }
  const lifetime = Date.parse(msg.expires) - Date.parse(msg.created);
  const max = lifetimeLimitMs(msg.kind);
  if (Number.isFinite(lifetime) && lifetime > max) {
    tooLarge(`A ${msg.kind} may be valid for at most ${duration(max)} (expires - created), this one for ${duration(lifetime)}.`, 'Use a shorter validity.');
  }
}

/** Sign (and encrypt, when the recipient's key is known) the payload as an armored OpenPGP message. */
async function sealPayload(msg: PeerdialMessage, opts: BuildOptions, text: string = JSON.stringify(msg)): Promise<string> {
  const message = await openpgp.createMessage({ text, format: 'utf8', date: opts.date });
  try {
    if (opts.recipientKey) {
      return await openpgp.encrypt({
        message,
        encryptionKeys: [opts.recipientKey, opts.sender.publicKey],
        signingKeys: opts.sender.privateKey,
        date: opts.date,
        format: 'armored',
      });
    }
    return await openpgp.sign({ message, signingKeys: opts.sender.privateKey, date: opts.date, format: 'armored' });
  } catch (cause) {
    return fail(`Could not ${opts.recipientKey ? 'encrypt' : 'sign'} the ${msg.kind} mail: ${(cause as Error).message}`, cause);
  }
}

/**
 * The standing answer of an announce, sealed like its payload. Only in an
 * announce, only encrypted (it carries ICE credentials and addresses), only
 * from the announce's sender to its recipient, and not already expired.
 */
async function sealStanding(msg: PeerdialMessage, standing: StandingAnswer, opts: BuildOptions): Promise<string> {
  if (msg.kind !== 'announce') fail(`A standing answer rides only in an announce, not in a ${msg.kind}.`);
  if (!opts.recipientKey) fail('A standing answer carries ICE credentials and addresses: it is sent only encrypted, and no key of the recipient was given.');
  const checked = validateStanding(standing);
  if (!checked.ok) fail(`Refusing to build an invalid ${checked.detail}.`);
  const mismatch = standingMismatch(standing, msg, opts.date);
  if (mismatch) fail(`Refusing to send a standing answer that does not fit its announce: ${mismatch}.`);
  const armored = await sealPayload(msg, opts, JSON.stringify(standing));
  if (armored.length > LIMITS.armoredBytes) {
    tooLarge(`The sealed standing answer is ${armored.length} bytes, more than ${LIMITS.armoredBytes} (LIMITS.armoredBytes).`, 'Fewer candidates make it shorter.');
  }
  return armored;
}

/** Build the raw RFC 5322 mail for `msg`. Throws PeerdialError WIRE_BUILD on an invalid message. */
export async function buildMail(msg: PeerdialMessage, opts: BuildOptions): Promise<BuiltMail> {
  checkSendLimits(msg);
  const checked = validateMessage(msg);
  if (!checked.ok) fail(`Refusing to build an invalid ${String(msg?.kind)} mail: ${checked.detail}.`);
  if (msg.from !== opts.sender.email) fail(`The message is from ${msg.from} but the identity is ${opts.sender.email}.`);
  if (Number.isNaN(opts.date.getTime())) fail('The mail date is not a valid date.');

  const json = JSON.stringify(msg);
  if (Buffer.byteLength(json) > LIMITS.payloadBytes) {
    tooLarge(`The ${msg.kind} payload is ${Buffer.byteLength(json)} bytes, more than ${LIMITS.payloadBytes} (LIMITS.payloadBytes).`, 'Send less: a shorter text or a smaller voice message.');
  }

  const armored = await sealPayload(msg, opts);
  if (armored.length > LIMITS.armoredBytes) {
    tooLarge(`The signed ${msg.kind} payload is ${armored.length} bytes, more than ${LIMITS.armoredBytes} (LIMITS.armoredBytes).`, 'Send less: a shorter text or a smaller voice message.');
  }
  const messageId = opts.messageId ? angle(opts.messageId) : newMessageId(msg.from);
  const standing = opts.standing ? await sealStanding(msg, opts.standing, opts) : undefined;

  const mail: ConstructorParameters<typeof MailComposer>[0] = {
    from: opts.fromName ? { name: opts.fromName, address: msg.from } : msg.from,
    to: msg.to,
    subject: NEUTRAL_SUBJECT,
    date: opts.date,
    messageId,
    headers: {
      [HEADER_VERSION]: String(PROTOCOL_VERSION),
      [HEADER_AUTO_SUBMITTED]: AUTO_SUBMITTED_VALUE,
      // our own header, never `Autocrypt`: other Autocrypt clients on these addresses must not take it (HEADER_KEY)
      [HEADER_KEY]: buildKeyHeader(msg.from, opts.sender.publicKey),
      [HEADER_SIGNER]: fingerprintOf(opts.sender.publicKey),
    },
    text: humanText(msg.from),
    attachments: [
      {
        filename: PAYLOAD_FILENAME,
        content: armored,
        contentType: PAYLOAD_MEDIA_TYPE,
        contentTransferEncoding: '7bit',
      },
      ...(standing ? [{ filename: STANDING_FILENAME, content: standing, contentType: STANDING_MEDIA_TYPE, contentTransferEncoding: '7bit' as const }] : []),
    ],
  };
  if (opts.inReplyTo) mail.inReplyTo = angle(opts.inReplyTo);
  if (opts.references && opts.references.length > 0) mail.references = opts.references.map(angle);

  let raw: Buffer;
  try {
    raw = await new MailComposer(mail).compile().build();
  } catch (cause) {
    return fail(`Could not compose the ${msg.kind} mail.`, cause);
  }
  if (raw.length > LIMITS.mailBytes) {
    tooLarge(`The ${msg.kind} mail is ${raw.length} bytes, more than ${LIMITS.mailBytes} (LIMITS.mailBytes).`, 'Send less: a shorter text or a smaller voice message.');
  }
  return { raw, messageId };
}
