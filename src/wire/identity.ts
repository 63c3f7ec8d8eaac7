/**
 * Identity keys: an OpenPGP key pair (Ed25519 signing primary, Cv25519
 * encryption subkey) bound to one mail address. Pure: nothing is read from
 * or written to disk here; store/ keeps the armored forms.
 */
import * as openpgp from 'openpgp';
import { PeerdialError } from '../errors.js';

export interface Identity {
  /** Mail address (lower-case) the key is bound to. */
  email: string;
  name?: string;
  privateKey: openpgp.PrivateKey;
  publicKey: openpgp.PublicKey;
  armoredPrivateKey: string;
  armoredPublicKey: string;
  /** Primary key fingerprint, upper-case hex without spaces. */
  fingerprint: string;
}

export interface GenerateIdentityOptions {
  /** Key creation time. Defaults to openpgp's clock; pass it for reproducible keys. */
  date?: Date;
}

/** Generate a fresh identity (ECC, curve25519). */
export async function generateIdentity(
  email: string,
  name?: string,
  options: GenerateIdentityOptions = {},
): Promise<Identity> {
  const address = email.trim().toLowerCase();
  const userID: openpgp.UserID = name ? { name, email: address } : { email: address };
  try {
    const { privateKey, publicKey } = await openpgp.generateKey({
      type: 'ecc',
      curve: 'curve25519Legacy',
      userIDs: [userID],
      format: 'object',
      ...(options.date ? { date: options.date } : {}),
    });
    return identityFrom(privateKey, publicKey, address, name);
  } catch (cause) {
    throw new PeerdialError('KEY_MISSING', `Could not generate an identity key for ${address}.`, {
      hint: 'Check that the mail address is valid and try again.',
      cause,
    });
  }
}

/** Load an identity from its armored private key (unencrypted, as store/ keeps it). */
export async function loadIdentity(armoredPrivate: string): Promise<Identity> {
  let privateKey: openpgp.PrivateKey;
  try {
    privateKey = await openpgp.readPrivateKey({ armoredKey: armoredPrivate });
  } catch (cause) {
    throw new PeerdialError('KEY_MISSING', 'The identity key cannot be read.', {
      hint: 'The key file is damaged; restore it from a backup or create a new identity with `peerdial init`.',
      cause,
    });
  }
  if (!privateKey.isDecrypted()) {
    throw new PeerdialError('KEY_MISSING', 'The identity key is protected by a passphrase.', {
      hint: 'Store the identity key without a passphrase (peerdial protects the file itself).',
    });
  }
  const publicKey = privateKey.toPublic();
  const user = await primaryUser(publicKey);
  if (!user.email) {
    throw new PeerdialError('KEY_MISSING', 'The identity key names no mail address.', {
      hint: 'Create a new identity with `peerdial init`.',
    });
  }
  return identityFrom(privateKey, publicKey, user.email.toLowerCase(), user.name || undefined);
}

/** Read an armored public key. A private key given here is reduced to its public part. */
export async function readPublicKey(armored: string): Promise<openpgp.PublicKey> {
  try {
    const key = await openpgp.readKey({ armoredKey: armored });
    return key.isPrivate() ? key.toPublic() : key;
  } catch (cause) {
    throw new PeerdialError('KEY_MISSING', 'That is not an OpenPGP public key.', {
      hint: 'Ask your contact for their key again (`peerdial key export` prints it).',
      cause,
    });
  }
}

/** Upper-case hex fingerprint of the primary key. */
export function fingerprintOf(key: openpgp.Key): string {
  return key.getFingerprint().toUpperCase();
}

/** Fingerprint in groups of four for people to compare: `9E91 406F B4C3 ...`. */
export function formatFingerprint(fingerprint: string): string {
  const hex = fingerprint.replace(/[^0-9a-fA-F]/g, '').toUpperCase();
  return (hex.match(/.{1,4}/g) ?? []).join(' ');
}

/** Does the key (primary or any subkey) have this key ID? */
export function keyHasKeyID(key: openpgp.Key, keyID: openpgp.KeyID): boolean {
  return key.getKeyIDs().some((id) => id.equals(keyID));
}

async function primaryUser(key: openpgp.Key): Promise<{ email?: string; name?: string }> {
  try {
    const { user } = await key.getPrimaryUser(new Date(key.getCreationTime().getTime() + 1000));
    return { email: user.userID?.email || undefined, name: user.userID?.name || undefined };
  } catch {
    const id = key.users.find((u) => u.userID)?.userID;
    return { email: id?.email || undefined, name: id?.name || undefined };
  }
}

function identityFrom(
  privateKey: openpgp.PrivateKey,
  publicKey: openpgp.PublicKey,
  email: string,
  name: string | undefined,
): Identity {
  const identity: Identity = {
    email,
    privateKey,
    publicKey,
    armoredPrivateKey: privateKey.armor(),
    armoredPublicKey: publicKey.armor(),
    fingerprint: fingerprintOf(publicKey),
  };
  if (name) identity.name = name;
  return identity;
}
