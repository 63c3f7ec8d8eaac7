/**
 * peerdial's key travels in a header of its own, `Peerdial-Key`, never in
 * `Autocrypt`: a Delta Chat (or any Autocrypt client) on the same
 * addresses took the newer peerdial key from a standard Autocrypt header as
 * the address's key, and 3 of 24 of its chat messages could no longer be
 * read. Mail from a peer still on the older peerdial (key in `Autocrypt`)
 * is read as a migration: its key counts only for a sender with no pinned
 * key, only when the mail has no `Peerdial-Key`, and only when it is the
 * key the signature verifies with.
 */
import { simpleParser } from 'mailparser';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildMail } from '../../src/wire/build.js';
import { buildAutocryptHeader, parseAutocryptHeader, readAutocryptKey } from '../../src/wire/autocrypt.js';
import { HEADER_KEY, HEADER_LEGACY_AUTOCRYPT, splitHeaderSection } from '../../src/wire/headers.js';
import { fingerprintOf, type Identity } from '../../src/wire/identity.js';
import { parseMail } from '../../src/wire/parse.js';
import { MESSAGE_KINDS } from '../../src/wire/message.js';
import { ALICE, HITOSHI, MALLORY, T0, contextFor, loadCast, message, pinnedAll, type Cast } from './scenario.js';

let cast: Cast;
beforeAll(async () => {
  cast = await loadCast();
});

async function aliceMail(kind: (typeof MESSAGE_KINDS)[number] = 'offer', encrypt = true): Promise<Buffer> {
  const built = await buildMail(message(kind, ALICE, HITOSHI), { sender: cast.alice, ...(encrypt ? { recipientKey: cast.hitoshi.publicKey } : {}), date: T0 });
  return built.raw;
}

/** The mail as the older peerdial wrote it: the same key, in a standard Autocrypt header (with prefer-encrypt=mutual). */
function asOldVersion(raw: Buffer, keyOf: Identity, addr = ALICE): Buffer {
  const text = raw.toString('latin1');
  const re = /^Peerdial-Key: .*(\r\n[ \t].*)*\r\n/m;
  expect(text).toMatch(re);
  return Buffer.from(text.replace(re, () => `Autocrypt: ${buildAutocryptHeader(addr, keyOf.publicKey)}\r\n`), 'latin1');
}

/** Header names of the outer mail and of every MIME part, lower-case. */
async function everyHeaderName(raw: Buffer): Promise<string[]> {
  const names = splitHeaderSection(raw).fields.map((f) => f.name);
  const parsed = await simpleParser(raw);
  for (const a of parsed.attachments) names.push(...[...a.headers.keys()].map((k) => k.toLowerCase()));
  return names;
}

describe('what peerdial writes', () => {
  it('every kind, encrypted or not: no Autocrypt header anywhere (what an Autocrypt parser reads), the key in Peerdial-Key', async () => {
    for (const kind of MESSAGE_KINDS) {
      for (const encrypt of [true, false]) {
        const raw = await aliceMail(kind, encrypt);
        const names = await everyHeaderName(raw);
        // Autocrypt Level 1 (§2.3) readers look at `Autocrypt` (and Autocrypt-Gossip inside encrypted parts) only
        expect(names.filter((n) => n.startsWith('autocrypt'))).toEqual([]);
        expect(raw.toString('latin1')).not.toMatch(/^autocrypt/im);
        const own = splitHeaderSection(raw).fields.filter((f) => f.name === HEADER_KEY.toLowerCase());
        expect(own).toHaveLength(1);
        const h = parseAutocryptHeader(own[0]!.value)!;
        expect(h.addr).toBe(ALICE);
        expect(fingerprintOf((await readAutocryptKey(h))!)).toBe(cast.alice.fingerprint);
        expect(own[0]!.value).not.toContain('prefer-encrypt');
      }
    }
  });

  it('the key header is folded into lines a mail server takes (at most 78 characters)', async () => {
    const head = (await aliceMail('announce', false)).toString('latin1').split('\r\n\r\n')[0]!;
    for (const line of head.split('\r\n')) expect(line.length).toBeLessThanOrEqual(78);
    expect(head).toMatch(/^Peerdial-Key: addr=alice@example\.test;/m);
  });
});

describe('what peerdial reads', () => {
  it('a stranger\'s key is learned from Peerdial-Key', async () => {
    const r = await parseMail(await aliceMail(), contextFor(cast.hitoshi, { contacts: {}, policy: 'everybody' }));
    if (!r.ok) throw new Error(`${r.reason}: ${r.detail}`);
    expect(r).toMatchObject({ learnedKey: true, keyHeader: HEADER_KEY, senderFingerprint: cast.alice.fingerprint });
  });

  it('a contact known by address only: her key is learned from Peerdial-Key', async () => {
    const r = await parseMail(await aliceMail('offer', false), contextFor(cast.hitoshi, { contacts: { [ALICE]: {} } }));
    expect(r).toMatchObject({ ok: true, learnedKey: true, keyHeader: HEADER_KEY, senderFingerprint: cast.alice.fingerprint });
  });

  it('a pinned contact whose Peerdial-Key names another key: key-mismatch', async () => {
    const raw = (await aliceMail()).toString('latin1').replace(/^Peerdial-Key: .*(\r\n[ \t].*)*\r\n/m, () => `Peerdial-Key: addr=${ALICE}; keydata=${Buffer.from(cast.mallory.publicKey.write()).toString('base64')}\r\n`);
    const r = await parseMail(Buffer.from(raw, 'latin1'), contextFor(cast.hitoshi, { contacts: pinnedAll(cast) }));
    expect(r).toMatchObject({ ok: false, reason: 'key-mismatch' });
  });
});

describe('migration: mail from a peer still on the peerdial that wrote Autocrypt', () => {
  it('a contact known by address only: her key is learned from the old Autocrypt header, and said so', async () => {
    const old = asOldVersion(await aliceMail('offer', false), cast.alice);
    expect(old.toString('latin1')).not.toContain('Peerdial-Key');
    const r = await parseMail(old, contextFor(cast.hitoshi, { contacts: { [ALICE]: {} } }));
    expect(r).toMatchObject({ ok: true, learnedKey: true, keyHeader: HEADER_LEGACY_AUTOCRYPT, senderFingerprint: cast.alice.fingerprint });
  });

  it('a pinned contact\'s old-style mail is read with the pinned key as before', async () => {
    const r = await parseMail(asOldVersion(await aliceMail(), cast.alice), contextFor(cast.hitoshi, { contacts: pinnedAll(cast) }));
    expect(r).toMatchObject({ ok: true, learnedKey: false, senderFingerprint: cast.alice.fingerprint });
    expect(r.ok && r.keyHeader).toBeFalsy();
  });

  it('an Autocrypt key that is not the signer\'s is not learned: the mail is refused', async () => {
    // alice signs; the old-style header carries mallory's key for alice's address
    const forged = asOldVersion(await aliceMail('offer', false), cast.mallory);
    for (const ctx of [contextFor(cast.hitoshi, { contacts: { [ALICE]: {} } }), contextFor(cast.hitoshi, { contacts: {}, policy: 'everybody' })]) {
      const r = await parseMail(forged, ctx);
      expect(r).toMatchObject({ ok: false, reason: 'bad-signature' });
      expect(r.ok || r.detail).toContain(cast.mallory.fingerprint);
    }
  });

  it('an Autocrypt key for another address counts for nothing', async () => {
    const other = asOldVersion(await aliceMail('offer', false), cast.alice, MALLORY);
    expect(await parseMail(other, contextFor(cast.hitoshi, { contacts: { [ALICE]: {} } }))).toMatchObject({ ok: false, reason: 'unknown-sender' });
  });

  it('a mail with both headers: Peerdial-Key speaks, the Autocrypt one is not even read', async () => {
    const raw = await aliceMail('offer', false);
    const both = Buffer.concat([Buffer.from(`Autocrypt: ${buildAutocryptHeader(ALICE, cast.mallory.publicKey)}\r\n`), raw]);
    const r = await parseMail(both, contextFor(cast.hitoshi, { contacts: { [ALICE]: {} } }));
    expect(r).toMatchObject({ ok: true, learnedKey: true, keyHeader: HEADER_KEY, senderFingerprint: cast.alice.fingerprint });
    // and a pinned contact is not refused for somebody else's Autocrypt key beside ours
    expect(await parseMail(both, contextFor(cast.hitoshi, { contacts: pinnedAll(cast) }))).toMatchObject({ ok: true, senderFingerprint: cast.alice.fingerprint });
  });
});
