/**
 * The OpenPGP payload of an address mail: opened (decrypted when encrypted)
 * without judging the signature, then verified against exactly one key.
 * openpgp never inflates more than a payload can be. Failures are
 * rejections (rejection.ts).
 */
import * as openpgp from 'openpgp';
import { LIMITS } from './limits.js';
import { errorText, reject, Rejection } from './rejection.js';

/** What openpgp may do for one mail: inflate no more than a payload can be. */
const PGP_CONFIG: Partial<openpgp.Config> = { maxDecompressedMessageSize: LIMITS.decompressedBytes };

function isOverCap(err: unknown): boolean {
  return /decompressed message size exceeded/i.test(errorText(err));
}

/** What was inside the OpenPGP payload, before anything about the sender is decided. */
export interface Opened {
  text: string;
  signingKeyIDs: openpgp.KeyID[];
  encrypted: boolean;
}

async function readPgpMessage(armored: string): Promise<openpgp.Message<string>> {
  try {
    return await openpgp.readMessage({ armoredMessage: armored, config: PGP_CONFIG });
  } catch (err) {
    if (isOverCap(err)) reject('too-large', `payload inflates to more than ${LIMITS.decompressedBytes} bytes`);
    return reject('malformed', `payload is not an OpenPGP message (${errorText(err)})`);
  }
}

/** Decrypt (when encrypted) and read the literal text, without judging the signature yet. */
export async function openPayload(armored: string, privateKey: openpgp.PrivateKey, verifyDate: Date): Promise<Opened> {
  const message = await readPgpMessage(armored);
  const encrypted = message.packets.some(
    (p) => p instanceof openpgp.PublicKeyEncryptedSessionKeyPacket || p instanceof openpgp.SymEncryptedSessionKeyPacket,
  );
  if (encrypted) {
    try {
      const { data, signatures } = await openpgp.decrypt({
        message,
        decryptionKeys: privateKey,
        expectSigned: false,
        format: 'utf8',
        date: verifyDate,
        config: PGP_CONFIG,
      });
      if (typeof data !== 'string') reject('malformed', 'payload is not text');
      // Swallow the (rejected) verification promises: the signature is judged later, against the right key.
      for (const s of signatures) s.verified.catch(() => undefined);
      return { text: data, signingKeyIDs: signatures.map((s) => s.keyID), encrypted };
    } catch (err) {
      if (err instanceof Rejection) throw err;
      if (isOverCap(err)) reject('too-large', `payload inflates to more than ${LIMITS.decompressedBytes} bytes`);
      const text = errorText(err);
      if (/modif|integrity|authentication tag|mdc/i.test(text)) reject('bad-signature', `payload was tampered with (${text})`);
      return reject('undecryptable', `payload cannot be decrypted with our key (${text})`);
    }
  }
  const hasData = message.packets.some((p) => p instanceof openpgp.LiteralDataPacket || p instanceof openpgp.CompressedDataPacket);
  if (!hasData) reject('malformed', 'OpenPGP payload carries no data');
  try {
    const { data, signatures } = await openpgp.verify({ message, verificationKeys: [], format: 'utf8', date: verifyDate, config: PGP_CONFIG });
    for (const s of signatures) s.verified.catch(() => undefined);
    return { text: data, signingKeyIDs: signatures.map((s) => s.keyID), encrypted };
  } catch (err) {
    if (isOverCap(err)) reject('too-large', `payload inflates to more than ${LIMITS.decompressedBytes} bytes`);
    return reject('malformed', `OpenPGP payload cannot be read (${errorText(err)})`);
  }
}

/** Check the signature against exactly this key. */
export async function verifyWith(armored: string, key: openpgp.PublicKey, privateKey: openpgp.PrivateKey, encrypted: boolean, verifyDate: Date): Promise<string> {
  try {
    const message = await openpgp.readMessage({ armoredMessage: armored, config: PGP_CONFIG });
    if (encrypted) {
      const { data } = await openpgp.decrypt({
        message,
        decryptionKeys: privateKey,
        verificationKeys: key,
        expectSigned: true,
        format: 'utf8',
        date: verifyDate,
        config: PGP_CONFIG,
      });
      return data;
    }
    const { data } = await openpgp.verify({ message, verificationKeys: key, expectSigned: true, format: 'utf8', date: verifyDate, config: PGP_CONFIG });
    return data;
  } catch (err) {
    return reject('bad-signature', `signature does not verify (${errorText(err)})`);
  }
}
