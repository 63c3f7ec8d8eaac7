/**
 * Every way hitoshi's peerdial says no, one scenario each, in the order the
 * parser checks them; and the promise that no input makes it throw.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildMail } from '../../src/wire/build.js';
import { generateIdentity } from '../../src/wire/identity.js';
import type { PeerdialMessage } from '../../src/wire/message.js';
import { MAX_CLOCK_SKEW_MS, parseMail, type ParseResult } from '../../src/wire/parse.js';
import { ALICE, FIXTURES, HITOSHI, KEY_DATE, MALLORY, T0, contextFor, loadCast, message, pinnedAll, type Cast } from './scenario.js';

let cast: Cast;
beforeAll(async () => {
  cast = await loadCast();
});

const fixture = (dir: string, file: string): Buffer => readFileSync(join(FIXTURES, dir, file));

async function aliceOffer(extra: Partial<PeerdialMessage> = {}, encrypt = true): Promise<{ raw: Buffer; messageId: string; msg: PeerdialMessage }> {
  const msg = message('offer', ALICE, HITOSHI, extra);
  const built = await buildMail(msg, { sender: cast.alice, ...(encrypt ? { recipientKey: cast.hitoshi.publicKey } : {}), date: T0 });
  return { ...built, msg };
}

function reasonOf(r: ParseResult): string {
  return r.ok ? 'accepted' : r.reason;
}

describe('hitoshi ignores mail that is not peerdial mail', () => {
  it('not-ours: a newsletter is left alone, whatever its Subject says', async () => {
    const r = await parseMail(fixture('malformed', 'newsletter.eml'), contextFor(cast.hitoshi));
    expect(r).toMatchObject({ ok: false, reason: 'not-ours', messageId: '<weekly-2025-22@example.test>', from: 'news@example.test' });
  });

  it('unsupported-version: a mail from a future peerdial (version 2) is ours but not readable', async () => {
    const { raw } = await aliceOffer();
    const v2 = Buffer.from(raw.toString('latin1').replace('Peerdial-Version: 1', 'Peerdial-Version: 2'), 'latin1');
    expect(reasonOf(await parseMail(v2, contextFor(cast.hitoshi, { contacts: pinnedAll(cast) })))).toBe('unsupported-version');
  });

  it('malformed: buildMail will not write a field v1 does not know, and the parser rejects one that arrives anyway', async () => {
    await expect(aliceOffer({ ringtone: 'loud' } as Partial<PeerdialMessage>)).rejects.toThrow(/unknown field "ringtone"/);
    const r = await parseMail(fixture('malformed', 'unknown-kind.eml'), contextFor(cast.hitoshi, { contacts: pinnedAll(cast) }));
    expect(r).toMatchObject({ ok: false, reason: 'malformed', detail: 'unknown kind', from: ALICE });
  });

  it('undecryptable: an offer encrypted to somebody else', async () => {
    const r = await parseMail(fixture('malformed', 'undecryptable.eml'), contextFor(cast.hitoshi, { contacts: pinnedAll(cast) }));
    expect(reasonOf(r)).toBe('undecryptable');
  });
});

describe('who may ring hitoshi', () => {
  it('blocked-sender: hitoshi blocked alice; her genuine offer is refused', async () => {
    const { raw } = await aliceOffer();
    const r = await parseMail(raw, contextFor(cast.hitoshi, { contacts: { [ALICE]: { publicKey: cast.alice.publicKey, blocked: true } } }));
    expect(r).toMatchObject({ ok: false, reason: 'blocked-sender', from: ALICE });
  });

  it('blocked-sender comes before anything about keys: a blocked forger is just blocked', async () => {
    const r = await parseMail(
      fixture('forged', 'from-alice-signed-by-mallory.eml'),
      contextFor(cast.hitoshi, { contacts: { [ALICE]: { publicKey: cast.alice.publicKey, blocked: true } } }),
    );
    expect(reasonOf(r)).toBe('blocked-sender');
  });

  it('unknown-sender: under the contacts policy a stranger (mallory) cannot ring', async () => {
    const built = await buildMail(message('offer', MALLORY, HITOSHI), { sender: cast.mallory, recipientKey: cast.hitoshi.publicKey, date: T0 });
    const r = await parseMail(built.raw, contextFor(cast.hitoshi, { contacts: { [ALICE]: { publicKey: cast.alice.publicKey } }, policy: 'contacts' }));
    expect(r).toMatchObject({ ok: false, reason: 'unknown-sender', from: MALLORY });
  });

  it('under the everybody policy a stranger can ring; the key comes from Peerdial-Key and is reported as learned', async () => {
    const built = await buildMail(message('offer', MALLORY, HITOSHI), { sender: cast.mallory, recipientKey: cast.hitoshi.publicKey, date: T0 });
    const r = await parseMail(built.raw, contextFor(cast.hitoshi, { contacts: {}, policy: 'everybody' }));
    if (!r.ok) throw new Error(r.detail);
    expect(r.learnedKey).toBe(true);
    expect(r.senderFingerprint).toBe(cast.mallory.fingerprint);
    expect(r.senderKey.getFingerprint()).toBe(cast.mallory.publicKey.getFingerprint());
  });

  it('a contact known by address only (no key yet) rings under the contacts policy; her key is learned', async () => {
    const { raw } = await aliceOffer({}, false);
    const r = await parseMail(raw, contextFor(cast.hitoshi, { contacts: { [ALICE]: {} }, policy: 'contacts' }));
    expect(r).toMatchObject({ ok: true, learnedKey: true, senderFingerprint: cast.alice.fingerprint, encrypted: false });
  });

  it('unknown-sender: under the nobody policy even alice, a pinned contact, cannot ring', async () => {
    const { raw } = await aliceOffer();
    expect(reasonOf(await parseMail(raw, contextFor(cast.hitoshi, { contacts: pinnedAll(cast), policy: 'nobody' })))).toBe('unknown-sender');
  });

  it('unknown-sender: a stranger whose mail carries no key cannot be verified, even under everybody', async () => {
    const { raw } = await aliceOffer({}, false);
    const noKey = Buffer.from(raw.toString('latin1').replace(/Peerdial-Key: [^]*?\r\n(?=[^ ])/, ''), 'latin1');
    expect(noKey.toString('latin1')).not.toContain('Peerdial-Key');
    expect(reasonOf(await parseMail(noKey, contextFor(cast.hitoshi, { contacts: {}, policy: 'everybody' })))).toBe('unknown-sender');
  });
});

describe('nobody can forge a call', () => {
  it('key-mismatch: alice lost her key and made a new one; hitoshi still pins the old one', async () => {
    const newAlice = await generateIdentity(ALICE, 'Alice Example', { date: KEY_DATE });
    const built = await buildMail(message('offer', ALICE, HITOSHI), { sender: newAlice, recipientKey: cast.hitoshi.publicKey, date: T0 });
    const r = await parseMail(built.raw, contextFor(cast.hitoshi, { contacts: pinnedAll(cast) }));
    expect(r).toMatchObject({ ok: false, reason: 'key-mismatch' });
    expect(r.ok || r.detail).toContain(cast.alice.fingerprint);
  });

  it('key-mismatch: mallory signs as alice and ships her own key in Peerdial-Key', async () => {
    expect(reasonOf(await parseMail(fixture('forged', 'from-alice-signed-by-mallory.eml'), contextFor(cast.hitoshi, { contacts: pinnedAll(cast) })))).toBe('key-mismatch');
  });

  it('unknown-sender: mallory signs as alice, ships no key, and hitoshi has no key of alice to check against', async () => {
    const r = await parseMail(
      fixture('forged', 'from-alice-signed-by-mallory-no-key.eml'),
      contextFor(cast.hitoshi, { contacts: { [ALICE]: {} }, policy: 'contacts' }),
    );
    expect(reasonOf(r)).toBe('unknown-sender');
  });

  it('bad-signature (tampered): an address changed under alice\'s signature', async () => {
    expect(reasonOf(await parseMail(fixture('forged', 'tampered-payload.eml'), contextFor(cast.hitoshi, { contacts: pinnedAll(cast) })))).toBe('bad-signature');
  });

  it('bad-signature (tampered): one ciphertext character changed on the way', async () => {
    expect(reasonOf(await parseMail(fixture('forged', 'tampered-encrypted.eml'), contextFor(cast.hitoshi, { contacts: pinnedAll(cast) })))).toBe('bad-signature');
  });

  it('bad-signature: an encrypted but unsigned payload', async () => {
    expect(reasonOf(await parseMail(fixture('forged', 'unsigned.eml'), contextFor(cast.hitoshi, { contacts: pinnedAll(cast) })))).toBe('bad-signature');
  });

  it('sender-mismatch: mallory re-sends alice\'s genuine signed offer from her own address', async () => {
    expect(reasonOf(await parseMail(fixture('forged', 'alice-payload-in-mallory-envelope.eml'), contextFor(cast.hitoshi, { contacts: pinnedAll(cast) })))).toBe('sender-mismatch');
  });

  it('wrong-recipient: alice\'s offer to mallory, passed on to hitoshi', async () => {
    expect(reasonOf(await parseMail(fixture('forged', 'for-mallory-forwarded-to-hitoshi.eml'), contextFor(cast.hitoshi, { contacts: pinnedAll(cast) })))).toBe('wrong-recipient');
  });

  it('wrong-recipient: hitoshi reads mail meant for alice (she sent it to herself, encrypted to both)', async () => {
    const built = await buildMail(message('announce', ALICE, ALICE), { sender: cast.alice, recipientKey: cast.hitoshi.publicKey, date: T0 });
    expect(reasonOf(await parseMail(built.raw, contextFor(cast.hitoshi, { contacts: pinnedAll(cast) })))).toBe('wrong-recipient');
  });
});

describe('late and repeated mail', () => {
  it('expired: hitoshi was offline; the offer arrives after it expired', async () => {
    const { raw, msg } = await aliceOffer();
    const late = new Date(Date.parse(msg.expires) + 1000);
    const r = await parseMail(raw, contextFor(cast.hitoshi, { contacts: pinnedAll(cast), now: late }));
    expect(r).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('the same offer at the last moment is still accepted', async () => {
    const { raw, msg } = await aliceOffer();
    const r = await parseMail(raw, contextFor(cast.hitoshi, { contacts: pinnedAll(cast), now: new Date(msg.expires) }));
    expect(reasonOf(r)).toBe('accepted');
  });

  it('replayed: the ledger has seen this nonce; the parser asks with the nonce and the Message-ID', async () => {
    const { raw, messageId, msg } = await aliceOffer();
    const asked: [string, string][] = [];
    const ledger = new Set<string>();
    const seen = (nonce: string, id: string): boolean => {
      asked.push([nonce, id]);
      return ledger.has(nonce) || ledger.has(id);
    };
    const first = await parseMail(raw, contextFor(cast.hitoshi, { contacts: pinnedAll(cast), seen }));
    expect(reasonOf(first)).toBe('accepted');
    ledger.add(msg.nonce);
    const again = await parseMail(raw, contextFor(cast.hitoshi, { contacts: pinnedAll(cast), seen }));
    expect(again).toMatchObject({ ok: false, reason: 'replayed', messageId });
    expect(asked).toEqual([
      [msg.nonce, messageId],
      [msg.nonce, messageId],
    ]);
  });

  it('checks come in order: a forwarded mail that has also expired is reported as wrong-recipient', async () => {
    const r = await parseMail(
      fixture('forged', 'for-mallory-forwarded-to-hitoshi.eml'),
      contextFor(cast.hitoshi, { contacts: pinnedAll(cast), now: new Date('2030-01-01T00:00:00Z') }),
    );
    expect(reasonOf(r)).toBe('wrong-recipient');
  });

  it('a sender whose clock runs a few minutes ahead is not rejected for signing "in the future"', async () => {
    const ahead = new Date(T0.getTime() + MAX_CLOCK_SKEW_MS / 2);
    const built = await buildMail(message('offer', ALICE, HITOSHI, {}, ahead), { sender: cast.alice, recipientKey: cast.hitoshi.publicKey, date: ahead });
    expect(reasonOf(await parseMail(built.raw, contextFor(cast.hitoshi, { contacts: pinnedAll(cast), now: T0 })))).toBe('accepted');
  });
});

describe('no input makes the parser throw', () => {
  it('empty, tiny, non-buffer and random inputs are rejections', async () => {
    const ctx = contextFor(cast.hitoshi, { contacts: pinnedAll(cast) });
    const inputs: unknown[] = [Buffer.alloc(0), Buffer.from('\r\n\r\n'), Buffer.from('Peerdial-Version: 1\r\n\r\n'), 'a string', null, undefined, 42, {}];
    for (const input of inputs) {
      const r = await parseMail(input as Buffer, ctx);
      expect(r.ok).toBe(false);
    }
  });

  it('every truncation and many single-byte corruptions of a genuine offer are accepted or rejected, never thrown', async () => {
    const { raw } = await aliceOffer();
    const ctx = contextFor(cast.hitoshi, { contacts: pinnedAll(cast) });
    const reasons = new Map<string, number>();
    const count = (r: ParseResult): void => {
      const k = reasonOf(r);
      reasons.set(k, (reasons.get(k) ?? 0) + 1);
    };
    for (let cut = 0; cut < raw.length; cut += 97) count(await parseMail(raw.subarray(0, cut), ctx));
    for (let at = 0; at < raw.length; at += 53) {
      const copy = Buffer.from(raw);
      copy[at] = copy[at]! ^ 0x5a;
      count(await parseMail(copy, ctx));
    }
    expect(reasons.get('malformed')).toBeGreaterThan(0);
    expect(reasons.has('accepted')).toBe(true); // a flip in the human part changes nothing that matters
  });

  it('a contact book that throws is reported as a rejection, not an exception', async () => {
    const { raw } = await aliceOffer();
    const ctx = contextFor(cast.hitoshi);
    ctx.contact = () => {
      throw new Error('contacts file is locked');
    };
    const r = await parseMail(raw, ctx);
    expect(r.ok).toBe(false);
  });
});
