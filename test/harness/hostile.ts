/**
 * Hostile mail for tests: forged offers, OpenPGP compression bombs with a valid structure
 * (a Compressed Data packet, raw deflate, holding one Literal Data packet
 * whose zeros inflate about 1000-fold), and plain oversized mail. Built
 * without ever holding the inflated bytes: independent deflate blocks of
 * 1 MiB of zeros are repeated.
 */
import { randomBytes } from 'node:crypto';
import { deflateRawSync, constants } from 'node:zlib';
import * as openpgp from 'openpgp';
import { MailComposer } from '../../src/wire/nodemailer.js';
import { HEADER_SIGNER, HEADER_VERSION, PAYLOAD_FILENAME, PAYLOAD_MEDIA_TYPE } from '../../src/wire/headers.js';

const MiB = 1024 * 1024;

function crc24(data: Uint8Array): number {
  let crc = 0xb704ce;
  for (const b of data) {
    crc ^= b << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}

function armor(bin: Buffer): string {
  const b64 = bin.toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  const crc = Buffer.from([(crc24(bin) >> 16) & 0xff, (crc24(bin) >> 8) & 0xff, crc24(bin) & 0xff]).toString('base64');
  return `-----BEGIN PGP MESSAGE-----\r\n\r\n${lines.join('\r\n')}\r\n=${crc}\r\n-----END PGP MESSAGE-----\r\n`;
}

function newFormatPacket(tag: number, body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([Buffer.from([0xc0 | tag, 0xff]), len, body]);
}

/**
 * An OpenPGP message (binary) of about `compressedBytes` that inflates to
 * about 1000 times as much: Compressed Data (ZIP) { Literal Data (binary) }.
 */
export function compressionBomb(compressedBytes: number): { binary: Buffer; inflatesTo: number } {
  const zeros = Buffer.alloc(MiB);
  const block = deflateRawSync(zeros, { level: 9, finishFlush: constants.Z_FULL_FLUSH });
  const blocks = Math.max(2, Math.floor(compressedBytes / block.length));
  const inflatesTo = blocks * MiB;
  // The literal packet's header sits at the start of the first block.
  const literalBody = inflatesTo - 6; // minus the 6-octet packet header
  const head = Buffer.alloc(6 + 6);
  head[0] = 0xc0 | 11;
  head[1] = 0xff;
  head.writeUInt32BE(literalBody, 2);
  head[6] = 0x62; // 'b'
  head[7] = 0; // no file name
  head.writeUInt32BE(Math.floor(Date.now() / 1000), 8);
  const first = deflateRawSync(Buffer.concat([head, zeros.subarray(head.length)]), { level: 9, finishFlush: constants.Z_FULL_FLUSH });
  const finalEmptyStored = Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff]);
  const deflated = Buffer.concat([first, ...Array.from({ length: blocks - 1 }, () => block), finalEmptyStored]);
  const compressed = newFormatPacket(8, Buffer.concat([Buffer.from([1]), deflated])); // algorithm 1: ZIP (raw deflate)
  return { binary: compressed, inflatesTo };
}

export interface HostileMailOptions {
  from: string;
  to: string;
  /** Value of Peerdial-Signer, when the mail should claim a signer. */
  signer?: string;
}

async function compose(o: HostileMailOptions, attachment: string | Buffer, contentType: string): Promise<Buffer> {
  const headers: Record<string, string> = { [HEADER_VERSION]: '1', 'Auto-Submitted': 'auto-generated' };
  if (o.signer) headers[HEADER_SIGNER] = o.signer;
  return new MailComposer({
    from: o.from,
    to: o.to,
    subject: 'peerdial',
    headers,
    text: 'This is a peerdial call signal.\r\n',
    attachments: [{ filename: PAYLOAD_FILENAME, content: attachment, contentType, contentTransferEncoding: '7bit' }],
  })
    .compile()
    .build();
}

/** A peerdial-looking mail of about `mailBytes` whose payload is a compression bomb. */
export async function bombMail(mailBytes: number, o: HostileMailOptions): Promise<{ raw: Buffer; inflatesTo: number }> {
  // armor is 4/3 of the binary plus line breaks; the rest of the mail is ~1 KB
  const bomb = compressionBomb(Math.floor(((mailBytes - 1500) * 3) / 4 / (66 / 64)));
  return { raw: await compose(o, armor(bomb.binary), PAYLOAD_MEDIA_TYPE), inflatesTo: bomb.inflatesTo };
}

/** A peerdial-looking mail of about `mailBytes` (an attachment of random-looking base64). */
export async function hugeMail(mailBytes: number, o: HostileMailOptions): Promise<Buffer> {
  const line = 'A'.repeat(76) + '\r\n';
  const body = line.repeat(Math.ceil(mailBytes / line.length));
  return compose(o, body, 'application/octet-stream');
}

/**
 * An offer "from" `from` that somebody else signed: a well-formed payload
 * naming `from`, signed by `signer`'s key, with an outer Peerdial-Signer
 * header that lies (names `claimedFingerprint`) when given. Or, without a
 * signer, the payload in the clear: an unsigned "offer".
 */
export async function forgedOffer(o: { from: string; to: string; signer?: openpgp.PrivateKey; claimedFingerprint?: string }): Promise<Buffer> {
  const now = new Date();
  const payload = JSON.stringify({
    v: 1,
    kind: 'offer',
    from: o.from,
    to: o.to,
    callId: randomBytes(12).toString('base64url'),
    created: now.toISOString(),
    expires: new Date(now.getTime() + 60_000).toISOString(),
    nonce: randomBytes(16).toString('base64url'),
    addresses: [],
    sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n',
    purpose: 'chat',
  });
  const message = await openpgp.createMessage({ text: payload, format: 'utf8' });
  const armored = o.signer
    ? await openpgp.sign({ message, signingKeys: o.signer, format: 'armored' })
    : (message.armor() as string);
  return compose({ from: o.from, to: o.to, ...(o.claimedFingerprint ? { signer: o.claimedFingerprint } : {}) }, armored, PAYLOAD_MEDIA_TYPE);
}
