/**
 * Build an address mail from a typed message: the mirror of parse.ts.
 * Pure: no I/O, no clock (the date is passed in); randomness only for the
 * Message-ID and by OpenPGP itself.
 */
import { randomBytes } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import * as openpgp from 'openpgp';
import { PeerdialError } from '../errors.js';
import { buildAutocryptHeader } from './autocrypt.js';
import {
  AUTO_SUBMITTED_VALUE,
  HEADER_AUTO_SUBMITTED,
  HEADER_AUTOCRYPT,
  HEADER_VERSION,
  NEUTRAL_SUBJECT,
  PAYLOAD_FILENAME,
  PAYLOAD_MEDIA_TYPE,
  PROTOCOL_VERSION,
} from './headers.js';
import type { Identity } from './identity.js';
import type { PeerdialMessage } from './message.js';
import { validateMessage } from './validate.js';

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

/** Sign (and encrypt, when the recipient's key is known) the payload as an armored OpenPGP message. */
async function sealPayload(msg: PeerdialMessage, opts: BuildOptions): Promise<string> {
  const message = await openpgp.createMessage({ text: JSON.stringify(msg), format: 'utf8', date: opts.date });
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

/** Build the raw RFC 5322 mail for `msg`. Throws PeerdialError WIRE_BUILD on an invalid message. */
export async function buildMail(msg: PeerdialMessage, opts: BuildOptions): Promise<BuiltMail> {
  const checked = validateMessage(msg);
  if (!checked.ok) fail(`Refusing to build an invalid ${String(msg?.kind)} mail: ${checked.detail}.`);
  if (msg.from !== opts.sender.email) fail(`The message is from ${msg.from} but the identity is ${opts.sender.email}.`);
  if (Number.isNaN(opts.date.getTime())) fail('The mail date is not a valid date.');

  const armored = await sealPayload(msg, opts);
  const messageId = opts.messageId ? angle(opts.messageId) : newMessageId(msg.from);

  const mail: ConstructorParameters<typeof MailComposer>[0] = {
    from: opts.fromName ? { name: opts.fromName, address: msg.from } : msg.from,
    to: msg.to,
    subject: NEUTRAL_SUBJECT,
    date: opts.date,
    messageId,
    headers: {
      [HEADER_VERSION]: String(PROTOCOL_VERSION),
      [HEADER_AUTO_SUBMITTED]: AUTO_SUBMITTED_VALUE,
      [HEADER_AUTOCRYPT]: buildAutocryptHeader(msg.from, opts.sender.publicKey),
    },
    text: humanText(msg.from),
    attachments: [
      {
        filename: PAYLOAD_FILENAME,
        content: armored,
        contentType: PAYLOAD_MEDIA_TYPE,
        contentTransferEncoding: '7bit',
      },
    ],
  };
  if (opts.inReplyTo) mail.inReplyTo = angle(opts.inReplyTo);
  if (opts.references && opts.references.length > 0) mail.references = opts.references.map(angle);

  try {
    const raw = await new MailComposer(mail).compile().build();
    return { raw, messageId };
  } catch (cause) {
    return fail(`Could not compose the ${msg.kind} mail.`, cause);
  }
}
