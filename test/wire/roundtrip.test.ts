/**
 * What alice builds, hitoshi parses: every kind, with and without
 * encryption, and what the outer mail does and does not show to the mail
 * providers on the way.
 */
import * as openpgp from 'openpgp';
import { simpleParser } from 'mailparser';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildMail } from '../../src/wire/build.js';
import { PAYLOAD_MEDIA_TYPE, isPeerdialHeaders } from '../../src/wire/headers.js';
import { MESSAGE_KINDS } from '../../src/wire/message.js';
import { parseMail, peekHeaders } from '../../src/wire/parse.js';
import { isPeerdialError } from '../../src/errors.js';
import {
  ALICE,
  ALICE_LAN_IP,
  ALICE_PUBLIC_IP,
  ALICE_V6,
  HITOSHI,
  T0,
  contextFor,
  loadCast,
  message,
  pinnedAll,
  type Cast,
} from './scenario.js';

let cast: Cast;
beforeAll(async () => {
  cast = await loadCast();
});

/** Everything a provider could read: the raw bytes, every decoded MIME part, and the dearmored OpenPGP packets. */
async function whatAProviderSees(raw: Buffer): Promise<string> {
  const parsed = await simpleParser(raw);
  const parts = [raw.toString('latin1'), parsed.text ?? ''];
  for (const a of parsed.attachments) {
    parts.push(a.content.toString('latin1'));
    const armored = a.content.toString('ascii');
    if (armored.includes('BEGIN PGP')) parts.push(Buffer.from((await openpgp.unarmor(armored)).data as Uint8Array).toString('latin1'));
  }
  return parts.join('\n');
}

describe('alice sends hitoshi every kind of signal', () => {
  for (const kind of MESSAGE_KINDS) {
    for (const encrypt of [true, false]) {
      it(`${kind}, ${encrypt ? 'encrypted to hitoshi' : 'signed only'}: hitoshi reads exactly what alice wrote`, async () => {
        const msg = message(kind, ALICE, HITOSHI);
        const built = await buildMail(msg, {
          sender: cast.alice,
          ...(encrypt ? { recipientKey: cast.hitoshi.publicKey } : {}),
          date: T0,
          fromName: 'Alice Example',
          inReplyTo: '<offer-1@example.test>',
          references: ['<offer-1@example.test>'],
        });
        const result = await parseMail(built.raw, contextFor(cast.hitoshi, { contacts: pinnedAll(cast) }));
        if (!result.ok) throw new Error(`${result.reason}: ${result.detail}`);
        expect(result.message).toEqual(msg);
        expect(result.messageId).toBe(built.messageId);
        expect(result.inReplyTo).toBe('<offer-1@example.test>');
        expect(result.encrypted).toBe(encrypt);
        expect(result.senderFingerprint).toBe(cast.alice.fingerprint);
        expect(result.learnedKey).toBe(false);
      });
    }
  }

  it('alice can read her own encrypted offer too (it is encrypted to her as well)', async () => {
    const built = await buildMail(message('offer', ALICE, HITOSHI), { sender: cast.alice, recipientKey: cast.hitoshi.publicKey, date: T0 });
    const armored = (await simpleParser(built.raw)).attachments[0]!.content.toString('ascii');
    const { data } = await openpgp.decrypt({ message: await openpgp.readMessage({ armoredMessage: armored }), decryptionKeys: cast.alice.privateKey, date: T0 });
    expect(JSON.parse(data as string).kind).toBe('offer');
  });
});

describe('the outer mail', () => {
  it('is multipart/mixed with a short human part and the payload as a peerdial attachment, never multipart/encrypted', async () => {
    const built = await buildMail(message('offer', ALICE, HITOSHI), { sender: cast.alice, recipientKey: cast.hitoshi.publicKey, date: T0 });
    const parsed = await simpleParser(built.raw);
    expect(parsed.headers.get('content-type')).toMatchObject({ value: 'multipart/mixed' });
    expect(built.raw.toString('latin1')).not.toMatch(/multipart\/encrypted/i);
    expect(parsed.text?.trim()).toBe(`This is a peerdial call signal from ${ALICE}.\nYour mail program can ignore it; peerdial reads it.`);
    expect(parsed.attachments.map((a) => [a.contentType, a.filename])).toEqual([[PAYLOAD_MEDIA_TYPE, 'peerdial.asc']]);
    expect(parsed.subject).toBe('peerdial');
    expect(parsed.headers.get('peerdial-version')).toBe('1');
    expect(parsed.headers.get('auto-submitted')).toBe('auto-generated');
    expect(parsed.date?.toISOString()).toBe(T0.toISOString());
  });

  it('is recognised as ours from its headers alone, and a plain mail is not', async () => {
    const built = await buildMail(message('cancel', ALICE, HITOSHI), { sender: cast.alice, date: T0 });
    const headerBlock = built.raw.subarray(0, built.raw.indexOf('\r\n\r\n') + 2);
    expect(isPeerdialHeaders(headerBlock)).toBe(true);
    expect(isPeerdialHeaders(headerBlock.toString())).toBe(true);
    expect(isPeerdialHeaders(new Map([['peerdial-version', '1']]))).toBe(true);
    expect(isPeerdialHeaders({ 'Peerdial-Version': '1' })).toBe(true);
    expect(isPeerdialHeaders('From: a@example.test\r\nSubject: peerdial\r\n\r\n')).toBe(false);
    expect(peekHeaders(built.raw)).toMatchObject({ isOurs: true, from: ALICE, to: [HITOSHI], messageId: built.messageId, version: '1' });
  });

  it('carries alice\'s key in a Peerdial-Key header (never Autocrypt: test/wire/key-header.test.ts), folded into short lines', async () => {
    const built = await buildMail(message('announce', ALICE, HITOSHI), { sender: cast.alice, date: T0 });
    const head = built.raw.toString('latin1').split('\r\n\r\n')[0]!;
    for (const line of head.split('\r\n')) expect(line.length).toBeLessThanOrEqual(78);
    expect(head).toMatch(/^Peerdial-Key: addr=alice@example\.test;\s+keydata=/m);
    expect(head).not.toMatch(/^Autocrypt:/im);
  });

  it('names neither alice\'s addresses nor her SDP anywhere a provider can read, when encrypted', async () => {
    for (const kind of ['offer', 'announce', 'message'] as const) {
      const built = await buildMail(message(kind, ALICE, HITOSHI), { sender: cast.alice, recipientKey: cast.hitoshi.publicKey, date: T0 });
      const visible = await whatAProviderSees(built.raw);
      for (const secret of [ALICE_PUBLIC_IP, ALICE_LAN_IP, ALICE_V6, 'a=fingerprint', 'a=candidate', 'ice-pwd', 'v=0\r\n', '"kind"', kind === 'offer' ? 'offer' : 'callId']) {
        expect(visible, `${kind}: ${secret}`).not.toContain(secret);
      }
    }
  });

  it('(control) a signed-only mail does show them once the armor is removed: the check above can see them', async () => {
    const built = await buildMail(message('offer', ALICE, HITOSHI), { sender: cast.alice, date: T0 });
    const visible = await whatAProviderSees(built.raw);
    expect(visible).toContain(ALICE_PUBLIC_IP);
    expect(visible).toContain('a=fingerprint');
  });

  it('has a random Message-ID that names no user and no call: only the sender\'s domain', async () => {
    const msg = message('offer', ALICE, HITOSHI);
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const { messageId, raw } = await buildMail(msg, { sender: cast.alice, date: T0 });
      expect(messageId).toMatch(/^<[A-Za-z0-9_-]{32}@example\.test>$/);
      for (const leak of ['alice', 'hitoshi', msg.callId, msg.nonce, 'offer', String(T0.getTime()).slice(0, 8)]) {
        expect(messageId.toLowerCase()).not.toContain(leak.toLowerCase());
      }
      expect(raw.toString('latin1')).toContain(`Message-ID: ${messageId}`);
      ids.add(messageId);
    }
    expect(ids.size).toBe(5);
  });

  it('threads an answer to its offer with In-Reply-To and References', async () => {
    const offer = await buildMail(message('offer', ALICE, HITOSHI), { sender: cast.alice, date: T0 });
    const answer = await buildMail(message('answer', HITOSHI, ALICE), {
      sender: cast.hitoshi,
      date: T0,
      inReplyTo: offer.messageId,
      references: [offer.messageId],
    });
    const parsed = await simpleParser(answer.raw);
    expect(parsed.inReplyTo).toBe(offer.messageId);
    expect(parsed.references).toBe(offer.messageId);
    const result = await parseMail(answer.raw, contextFor(cast.alice, { contacts: pinnedAll(cast) }));
    expect(result).toMatchObject({ ok: true, inReplyTo: offer.messageId });
  });

  it('survives a mail store that rewrote CRLF to LF', async () => {
    const built = await buildMail(message('offer', ALICE, HITOSHI), { sender: cast.alice, recipientKey: cast.hitoshi.publicKey, date: T0 });
    const lf = Buffer.from(built.raw.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    const result = await parseMail(lf, contextFor(cast.hitoshi, { contacts: pinnedAll(cast) }));
    expect(result).toMatchObject({ ok: true, messageId: built.messageId });
  });

  it('uses a given Message-ID as is', async () => {
    const built = await buildMail(message('hangup', ALICE, HITOSHI), { sender: cast.alice, date: T0, messageId: 'fixed-id-1@example.test' });
    expect(built.messageId).toBe('<fixed-id-1@example.test>');
  });
});

describe('buildMail refuses to build nonsense', () => {
  it('an offer without SDP is a WIRE_BUILD error, not a mail', async () => {
    const { sdp: _sdp, ...noSdp } = message('offer', ALICE, HITOSHI);
    await expect(buildMail(noSdp, { sender: cast.alice, date: T0 })).rejects.toSatisfy((e) => isPeerdialError(e, 'WIRE_BUILD'));
  });

  it('a message from somebody other than the sending identity is a WIRE_BUILD error', async () => {
    await expect(buildMail(message('offer', HITOSHI, ALICE), { sender: cast.alice, date: T0 })).rejects.toSatisfy((e) =>
      isPeerdialError(e, 'WIRE_BUILD'),
    );
  });
});
