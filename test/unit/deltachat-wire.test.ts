/**
 * Delta Chat's mail format (wire/deltachat*.ts) between two identities,
 * then the hostile cases: a mail too large, a header twice, a signature by
 * another key, a From that is not the signer, a mail for somebody else.
 * (That Delta Chat itself reads what this writes, and this reads what it
 * writes, shows test/deltachat-securejoin.test.ts with a real core.)
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type * as openpgp from 'openpgp';
import { generateIdentity, type Identity } from '../../src/wire/identity.js';
import { composeDeltaChatMail } from '../../src/wire/deltachat.js';
import { headerOf, parseDeltaChatMail, type DeltaChatParseContext } from '../../src/wire/deltachat-parse.js';
import { decodeWords, encodeWords } from '../../src/wire/deltachat-headers.js';
import { LIMITS } from '../../src/wire/limits.js';
import { parseSecureJoinLink, secureJoinLink } from '../../src/wire/securejoin-link.js';

let alice: Identity;
let bob: Identity;
let carol: Identity;
const date = new Date();
const keyDate = { date: new Date(date.getTime() - 3600_000) };

function ctxFor(self: Identity, known: Record<string, openpgp.PublicKey> = {}): DeltaChatParseContext {
  return { self, now: date, knownKey: (a) => known[a] };
}

beforeAll(async () => {
  [alice, bob, carol] = await Promise.all([
    generateIdentity('alice@example.org', 'Alice', keyDate),
    generateIdentity('bob@example.org', 'Bob', keyDate),
    generateIdentity('carol@example.org', 'Carol', keyDate),
  ]);
});

describe('a Delta Chat chat mail', () => {
  it('goes from alice to bob signed and encrypted, its headers protected inside, and bob reads every header back', async () => {
    const sdp = 'v=0\r\no=- 1 0 IN IP4 127.0.0.1\r\ns=-\r\n' + 'a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n'.repeat(30);
    const built = await composeDeltaChatMail({
      sender: alice,
      senderName: 'Alice Ü',
      to: bob.email,
      recipientKey: bob.publicKey,
      date,
      inReplyTo: '<offer@example.org>',
      headers: [
        { name: 'Chat-Content', value: 'call' },
        { name: 'Chat-Webrtc-Room', value: sdp, encoded: true },
      ],
      text: 'Incoming call',
      gossip: [{ addr: bob.email, key: bob.publicKey }],
    });
    const outer = built.raw.toString('latin1').split('\r\n\r\n')[0]!;
    expect(outer).toContain('Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"');
    expect(outer).toContain('Subject: [...]');
    expect(outer).toContain('Chat-Version: 1.0');
    // nothing of the chat and no key in the clear
    expect(outer).not.toMatch(/Chat-Content|Autocrypt|Webrtc|In-Reply-To/i);
    expect(built.raw.toString('latin1').split('\r\n').every((l) => l.length <= 998)).toBe(true);

    const r = await parseDeltaChatMail(built.raw, ctxFor(bob));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.mail.from).toBe('alice@example.org');
    expect(r.mail.fromName).toBe('Alice Ü');
    expect(r.mail.encrypted).toBe(true);
    expect(r.mail.keyFromMail).toBe(true);
    expect(r.mail.senderFingerprint).toBe(alice.fingerprint);
    expect(r.mail.messageId).toBe(built.messageId);
    expect(r.mail.inReplyTo).toBe('<offer@example.org>');
    expect(headerOf(r.mail, 'Chat-Content')).toBe('call');
    expect(headerOf(r.mail, 'Chat-Webrtc-Room')).toBe(sdp);
    expect(r.mail.gossip.get('bob@example.org')?.getFingerprint().toUpperCase()).toBe(bob.fingerprint);
    expect(r.mail.text.trim()).toBe('Incoming call');
    expect(headerOf(r.mail, 'HP-Outer')).toBeDefined();
  });

  it('goes unencrypted only as the first SecureJoin step, its key in the Autocrypt header outside', async () => {
    await expect(
      composeDeltaChatMail({ sender: bob, to: alice.email, date, headers: [{ name: 'Chat-Content', value: 'call' }], text: 'x' }),
    ).rejects.toMatchObject({ code: 'WIRE_BUILD' });
    const built = await composeDeltaChatMail({
      sender: bob,
      to: alice.email,
      date,
      headers: [
        { name: 'Secure-Join', value: 'vc-request' },
        { name: 'Secure-Join-Invitenumber', value: 'inv123' },
      ],
      text: 'Secure-Join: vc-request',
    });
    const r = await parseDeltaChatMail(built.raw, ctxFor(alice));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.mail.encrypted).toBe(false);
    expect(r.mail.senderFingerprint).toBe(bob.fingerprint);
    expect(headerOf(r.mail, 'Secure-Join-Invitenumber')).toBe('inv123');
  });

  it('encoded words split a long value without cutting a character, and read back whole', () => {
    const v = 'ü'.repeat(100) + ' plain';
    const enc = encodeWords(v);
    expect(enc.split(' ').every((w) => w.length <= 75)).toBe(true);
    expect(decodeWords(enc)).toBe(v);
  });
});

describe('hostile Delta Chat mail', () => {
  async function fromAliceToBob(extra: Partial<Parameters<typeof composeDeltaChatMail>[0]> = {}): Promise<Buffer> {
    return (await composeDeltaChatMail({ sender: alice, to: bob.email, recipientKey: bob.publicKey, date, headers: [{ name: 'Chat-Content', value: 'call' }], text: 'hi', ...extra })).raw;
  }

  it('a mail larger than LIMITS.mailBytes is too large before anything is parsed', async () => {
    const raw = Buffer.concat([await fromAliceToBob(), Buffer.alloc(LIMITS.mailBytes, 0x41)]);
    const r = await parseDeltaChatMail(raw, ctxFor(bob));
    expect(r).toMatchObject({ ok: false, reason: 'too-large' });
  });

  it('two From headers outside, or two Chat-Content headers inside, make it malformed', async () => {
    const raw = await fromAliceToBob();
    const twoFroms = Buffer.from(raw.toString('latin1').replace('From: <alice@example.org>', 'From: <alice@example.org>\r\nFrom: <carol@example.org>'), 'latin1');
    expect(await parseDeltaChatMail(twoFroms, ctxFor(bob))).toMatchObject({ ok: false, reason: 'malformed' });
    await expect(
      composeDeltaChatMail({ sender: alice, to: bob.email, recipientKey: bob.publicKey, date, headers: [{ name: 'Chat-Content', value: 'call' }, { name: 'Chat-Content', value: 'call-ended' }], text: 'x' }),
    ).rejects.toMatchObject({ code: 'WIRE_BUILD' });
  });

  it('a mail from alice signed by carol (carol\'s key in its Autocrypt header) is refused once alice\'s key is held', async () => {
    // carol writes as herself, then the From is changed to alice: the key in Autocrypt is for carol's address
    const carolsMail = (await composeDeltaChatMail({ sender: carol, to: bob.email, recipientKey: bob.publicKey, date, text: 'hi' })).raw;
    const forged = Buffer.from(carolsMail.toString('latin1').replace('From: <carol@example.org>', 'From: <alice@example.org>'), 'latin1');
    const r1 = await parseDeltaChatMail(forged, ctxFor(bob));
    // the inner (protected) From still says carol
    expect(r1).toMatchObject({ ok: false, reason: 'sender-mismatch' });
    // with alice's key held, carol's signature is a key mismatch whatever the headers say
    const r2 = await parseDeltaChatMail(carolsMail, ctxFor(bob, { 'carol@example.org': alice.publicKey }));
    expect(r2).toMatchObject({ ok: false, reason: 'key-mismatch' });
  });

  it('a signature by a key that is not the one its Autocrypt header names for the From is a bad signature', async () => {
    // carol signs, but the mail carries alice's identity in From and Autocrypt: compose as carol with alice's public key swapped in
    const impostor: Identity = { ...carol, email: alice.email, publicKey: alice.publicKey };
    const raw = (await composeDeltaChatMail({ sender: impostor, to: bob.email, recipientKey: bob.publicKey, date, text: 'hi' })).raw;
    const r = await parseDeltaChatMail(raw, ctxFor(bob));
    expect(r).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('a mail encrypted to bob but addressed inside to carol is not for bob', async () => {
    const raw = (await composeDeltaChatMail({ sender: alice, to: carol.email, recipientKey: bob.publicKey, date, text: 'hi' })).raw;
    expect(await parseDeltaChatMail(raw, ctxFor(bob))).toMatchObject({ ok: false, reason: 'wrong-recipient' });
  });

  it('a mail without Chat-Version is not a Delta Chat mail, and one bob cannot decrypt is undecryptable', async () => {
    const raw = await fromAliceToBob();
    const plain = Buffer.from(raw.toString('latin1').replace('Chat-Version: 1.0\r\n', ''), 'latin1');
    expect(await parseDeltaChatMail(plain, ctxFor(bob))).toMatchObject({ ok: false, reason: 'not-ours' });
    expect(await parseDeltaChatMail(raw, ctxFor(carol))).toMatchObject({ ok: false, reason: 'undecryptable' });
  });
});

describe("Delta Chat's invite link", () => {
  const fp = 'E50B0EFD6CA94E5F146F6C856FAFA20F586B9021';
  it('reads both forms and writes one Delta Chat reads, without v=3', () => {
    const link = secureJoinLink({ fingerprint: fp, addr: 'alice@example.org', name: 'Alice Liddell', invitenumber: 'inv_abcdefgh', auth: 'auth-12345678' });
    expect(link).toBe(`https://i.delta.chat/#${fp}&a=alice%40example.org&n=Alice+Liddell&i=inv_abcdefgh&s=auth-12345678`);
    expect(parseSecureJoinLink(link)).toEqual({ fingerprint: fp, addr: 'alice@example.org', name: 'Alice Liddell', invitenumber: 'inv_abcdefgh', auth: 'auth-12345678', v3: false });
    expect(parseSecureJoinLink(`OPENPGP4FPR:${fp}#a=bob%40example.org&n=Bob&i=12345678&s=abcdefgh&v=3`)).toMatchObject({ addr: 'bob@example.org', v3: true });
  });

  it('refuses a group invite, a short fingerprint, a missing token and a parameter given twice', () => {
    expect(parseSecureJoinLink(`https://i.delta.chat/#${fp}&a=a%40b.org&g=Group&x=grp&i=12345678&s=abcdefgh`)).toBeUndefined();
    expect(parseSecureJoinLink(`https://i.delta.chat/#${fp.slice(2)}&a=a%40b.org&i=12345678&s=abcdefgh`)).toBeUndefined();
    expect(parseSecureJoinLink(`https://i.delta.chat/#${fp}&a=a%40b.org&i=12345678`)).toBeUndefined();
    expect(parseSecureJoinLink(`https://i.delta.chat/#${fp}&a=a%40b.org&i=12345678&s=abcdefgh&s=zzzzzzzz`)).toBeUndefined();
  });
});
