/**
 * Identities and the Autocrypt header: a key pair bound to a mail address,
 * its fingerprint as people compare it, and the key as it travels in mail.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildAutocryptHeader, parseAutocryptHeader, readAutocryptKey } from '../../src/wire/autocrypt.js';
import { fingerprintOf, formatFingerprint, generateIdentity, loadIdentity, readPublicKey } from '../../src/wire/identity.js';
import { isPeerdialError } from '../../src/errors.js';
import { FIXTURES, KEY_DATE, loadCast, type Cast } from './scenario.js';

let cast: Cast;
beforeAll(async () => {
  cast = await loadCast();
});

describe('identity', () => {
  it('a new identity is an ECC (Ed25519/Cv25519) key pair bound to a lower-case address', async () => {
    const id = await generateIdentity('Someone@Example.TEST', 'Someone', { date: KEY_DATE });
    expect(id.email).toBe('someone@example.test');
    expect(id.name).toBe('Someone');
    expect(id.fingerprint).toMatch(/^[0-9A-F]{40}$/);
    expect(id.privateKey.getAlgorithmInfo().algorithm).toBe('eddsaLegacy');
    expect(id.privateKey.getCreationTime().toISOString()).toBe(KEY_DATE.toISOString());
    expect(id.armoredPrivateKey).toContain('BEGIN PGP PRIVATE KEY BLOCK');
    expect(id.armoredPublicKey).toContain('BEGIN PGP PUBLIC KEY BLOCK');
  });

  it('loads back from its armored private key with the same address, name and fingerprint', async () => {
    const again = await loadIdentity(cast.alice.armoredPrivateKey);
    expect(again).toMatchObject({ email: 'alice@example.test', name: 'Alice Example', fingerprint: cast.alice.fingerprint });
  });

  it('reads a public key, and reduces a private key given by mistake to its public part', async () => {
    const pub = await readPublicKey(readFileSync(join(FIXTURES, 'keys', 'hitoshi.public.asc'), 'utf8'));
    expect(fingerprintOf(pub)).toBe(cast.hitoshi.fingerprint);
    const fromPrivate = await readPublicKey(cast.hitoshi.armoredPrivateKey);
    expect(fromPrivate.isPrivate()).toBe(false);
  });

  it('junk is a KEY_MISSING error that says what to do', async () => {
    await expect(loadIdentity('not a key')).rejects.toSatisfy((e) => isPeerdialError(e, 'KEY_MISSING') && !!e.hint);
    await expect(readPublicKey('-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n')).rejects.toSatisfy((e) =>
      isPeerdialError(e, 'KEY_MISSING'),
    );
  });

  it('shows fingerprints in groups of four', () => {
    expect(formatFingerprint('9e91406fb4c30770c1fad8773eac26d287eec1d7')).toBe('9E91 406F B4C3 0770 C1FA D877 3EAC 26D2 87EE C1D7');
  });
});

describe('Autocrypt header', () => {
  it('round-trips alice\'s key', async () => {
    const value = buildAutocryptHeader('Alice@Example.test', cast.alice.publicKey);
    expect(value).toMatch(/^addr=alice@example\.test; prefer-encrypt=mutual; keydata=/);
    const parsed = parseAutocryptHeader(value)!;
    expect(parsed).toMatchObject({ addr: 'alice@example.test', preferEncrypt: 'mutual' });
    const key = await readAutocryptKey(parsed);
    expect(key && fingerprintOf(key)).toBe(cast.alice.fingerprint);
  });

  it('tolerates folding whitespace, attribute order and non-critical (_underscore) attributes', async () => {
    const kd = Buffer.from(cast.hitoshi.publicKey.write()).toString('base64');
    const value = `keydata=${kd.slice(0, 50)}\r\n ${kd.slice(50)};  _x-note=hello; ADDR=Hitoshi@Example.test`;
    const parsed = parseAutocryptHeader(value)!;
    expect(parsed.addr).toBe('hitoshi@example.test');
    expect(parsed.preferEncrypt).toBe('nopreference');
    expect(fingerprintOf((await readAutocryptKey(parsed))!)).toBe(cast.hitoshi.fingerprint);
  });

  it('returns undefined on junk rather than throwing', async () => {
    for (const junk of [undefined, 42, '', ';;;', 'addr=alice@example.test', 'keydata=AAAA', 'addr=nobody; keydata=AAAA', 'addr=a@b.test; keydata=!!!', 'addr=a@b.test; keydata=AAAA; critical=1', 'addr=a@b.test; addr=c@d.test; keydata=AAAA']) {
      expect(parseAutocryptHeader(junk)).toBeUndefined();
    }
    const notAKey = parseAutocryptHeader('addr=a@b.test; keydata=AAAAAAAA')!;
    expect(notAKey).toBeDefined();
    expect(await readAutocryptKey(notAKey)).toBeUndefined();
  });

  it('refuses to carry a private key', async () => {
    const kd = Buffer.from(cast.alice.privateKey.write()).toString('base64');
    const parsed = parseAutocryptHeader(`addr=alice@example.test; keydata=${kd}`)!;
    expect(await readAutocryptKey(parsed)).toBeUndefined();
  });
});
