/**
 * One set of limits, obeyed by both sides: for each limit, alice's
 * peerdial builds a mail right at it and hitoshi's reads it; one over, and
 * alice's refuses to build it (naming the limit) while hitoshi's rejects
 * one that a forger built by hand.
 */
import { MailComposer } from '../../src/wire/nodemailer.js';
import * as openpgp from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { isPeerdialError } from '../../src/errors.js';
import { buildMail } from '../../src/wire/build.js';
import { HEADER_VERSION, PAYLOAD_FILENAME, PAYLOAD_MEDIA_TYPE } from '../../src/wire/headers.js';
import type { Identity } from '../../src/wire/identity.js';
import { LIMITS, lifetimeLimitMs } from '../../src/wire/limits.js';
import type { PeerdialMessage } from '../../src/wire/message.js';
import { parseMail, screenHeaders, type ParseResult } from '../../src/wire/parse.js';
import { bombMail } from '../harness/hostile.js';
import { ALICE, HITOSHI, MALLORY, T0, contextFor, loadCast, message, pinnedAll, type Cast } from './scenario.js';

let cast: Cast;
beforeAll(async () => {
  cast = await loadCast();
});

const reasonOf = (r: ParseResult): string => (r.ok ? 'accepted' : `${r.reason}: ${r.detail}`);
const hitoshiReads = (raw: Buffer, now = new Date(T0.getTime() + 60_000)) =>
  parseMail(raw, contextFor(cast.hitoshi, { contacts: pinnedAll(cast), now }));

async function aliceBuilds(msg: PeerdialMessage): Promise<Buffer> {
  return (await buildMail(msg, { sender: cast.alice, recipientKey: cast.hitoshi.publicKey, date: T0 })).raw;
}

async function refusal(msg: PeerdialMessage): Promise<string> {
  try {
    await aliceBuilds(msg);
  } catch (err) {
    if (isPeerdialError(err, 'LIMIT_EXCEEDED')) return `${err.message} | ${err.hint}`;
    throw err;
  }
  throw new Error('alice built a mail over the limit');
}

/** What a forger does: sign any payload text, no limits checked. */
async function forged(payload: string, sender: Identity, extraHeaders: Record<string, string> = {}): Promise<Buffer> {
  const armored = await openpgp.sign({ message: await openpgp.createMessage({ text: payload, format: 'utf8', date: T0 }), signingKeys: sender.privateKey, date: T0, format: 'armored' });
  return new MailComposer({
    from: sender.email,
    to: HITOSHI,
    subject: 'peerdial',
    date: T0,
    messageId: `<forged-${Math.random().toString(36).slice(2)}@example.test>`,
    headers: { [HEADER_VERSION]: '1', ...extraHeaders },
    text: 'peerdial\r\n',
    attachments: [{ filename: PAYLOAD_FILENAME, content: armored, contentType: PAYLOAD_MEDIA_TYPE, contentTransferEncoding: '7bit' }],
  })
    .compile()
    .build();
}

describe('text, session description, voicemail: the sender refuses what the receiver rejects', () => {
  it('a text of LIMITS.textChars goes through; one character more is refused by alice and rejected by hitoshi', async () => {
    const atLimit = message('message', ALICE, HITOSHI, { text: 'x'.repeat(LIMITS.textChars) });
    expect(reasonOf(await hitoshiReads(await aliceBuilds(atLimit)))).toBe('accepted');
    const over = message('message', ALICE, HITOSHI, { text: 'x'.repeat(LIMITS.textChars + 1) });
    expect(await refusal(over)).toMatch(/at most 16384 \(LIMITS\.textChars\)/);
    expect(reasonOf(await hitoshiReads(await forged(JSON.stringify(over), cast.alice)))).toMatch(/^malformed: field "text"/);
  });

  it('an SDP of LIMITS.sdpChars goes through; one more is refused and rejected', async () => {
    const base = message('offer', ALICE, HITOSHI).sdp!;
    const pad = (n: number) => base + 'a=x:' + 'y'.repeat(n - base.length - 4);
    const atLimit = message('offer', ALICE, HITOSHI, { sdp: pad(LIMITS.sdpChars) });
    expect(atLimit.sdp!.length).toBe(LIMITS.sdpChars);
    expect(reasonOf(await hitoshiReads(await aliceBuilds(atLimit)))).toBe('accepted');
    const over = message('offer', ALICE, HITOSHI, { sdp: pad(LIMITS.sdpChars + 1) });
    expect(await refusal(over)).toMatch(/LIMITS\.sdpChars/);
    expect(reasonOf(await hitoshiReads(await forged(JSON.stringify(over), cast.alice)))).toMatch(/^malformed: field "sdp"/);
  });

  it('a voicemail of LIMITS.voicemailBytes fits every outer limit and hitoshi reads it; one byte more is refused, naming the limit', async () => {
    const audio = Buffer.alloc(LIMITS.voicemailBytes, 7);
    const atLimit = message('message', ALICE, HITOSHI, { text: 'x'.repeat(LIMITS.textChars), attachment: { filename: 'voicemail.opus', contentType: 'audio/ogg', data: audio.toString('base64') } });
    const raw = await aliceBuilds(atLimit);
    expect(raw.length).toBeLessThanOrEqual(LIMITS.mailBytes);
    const r = await hitoshiReads(raw);
    expect(reasonOf(r)).toBe('accepted');
    expect(r.ok && Buffer.from(r.message.attachment!.data, 'base64').equals(audio)).toBe(true);
    const over = { ...atLimit, attachment: { ...atLimit.attachment!, data: Buffer.alloc(LIMITS.voicemailBytes + 1, 7).toString('base64') } };
    expect(await refusal(over)).toMatch(/at most 3145728 bytes go by mail \(LIMITS\.voicemailBytes\)/);
    expect(reasonOf(await hitoshiReads(await forged(JSON.stringify(over), cast.alice)))).toMatch(/^malformed: attachment\.data/);
  });
});

describe('lifetimes and clocks', () => {
  it.each([
    ['offer', LIMITS.signalLifetimeMs],
    ['announce', LIMITS.announceLifetimeMs],
    ['message', LIMITS.messageLifetimeMs],
  ] as const)('a %s valid for its longest lifetime goes through; 1 ms longer is refused and rejected as lifetime-too-long', async (kind, max) => {
    expect(lifetimeLimitMs(kind)).toBe(max);
    expect(reasonOf(await hitoshiReads(await aliceBuilds(message(kind, ALICE, HITOSHI, {}, T0, max))))).toBe('accepted');
    const over = message(kind, ALICE, HITOSHI, {}, T0, max + 1);
    expect(await refusal(over)).toMatch(/may be valid for at most/);
    expect(reasonOf(await hitoshiReads(await forged(JSON.stringify(over), cast.alice)))).toMatch(/^lifetime-too-long/);
  });

  it('an offer dated tomorrow and valid for a year is rejected, not auto-answered', async () => {
    const tomorrow = new Date(T0.getTime() + 86_400_000);
    const bold = message('offer', ALICE, HITOSHI, {}, tomorrow, 365 * 86_400_000);
    expect(reasonOf(await hitoshiReads(await forged(JSON.stringify(bold), cast.alice), T0))).toMatch(/^from-the-future/);
  });

  it('created exactly LIMITS.clockSkewMs ahead of hitoshi\'s clock is read; 1 ms further is from-the-future', async () => {
    const now = new Date(T0.getTime() - LIMITS.clockSkewMs);
    expect(reasonOf(await hitoshiReads(await aliceBuilds(message('offer', ALICE, HITOSHI)), now))).toBe('accepted');
    const justBefore = new Date(now.getTime() - 1);
    expect(reasonOf(await hitoshiReads(await aliceBuilds(message('offer', ALICE, HITOSHI)), justBefore))).toMatch(/^from-the-future/);
  });
});

describe('sizes of the mail itself', () => {
  it('a mail of exactly LIMITS.mailBytes is read; one byte more is too-large, from the outline and from the bytes', async () => {
    const raw = await aliceBuilds(message('offer', ALICE, HITOSHI));
    // MIME ignores an epilogue after the closing boundary: pad there.
    const padTo = (n: number) => Buffer.concat([raw, Buffer.alloc(n - raw.length, 0x78)]);
    expect(reasonOf(await hitoshiReads(padTo(LIMITS.mailBytes)))).toBe('accepted');
    expect(reasonOf(await hitoshiReads(padTo(LIMITS.mailBytes + 1)))).toMatch(/^too-large/);
    const ctx = { contact: () => ({}), policy: 'contacts' as const };
    const headers = `${HEADER_VERSION}: 1\r\n`;
    expect(screenHeaders({ size: LIMITS.mailBytes, from: [ALICE], headers }, ctx)).toBeUndefined();
    expect(screenHeaders({ size: LIMITS.mailBytes + 1, from: [ALICE], headers }, ctx)).toMatchObject({ reason: 'too-large' });
  });

  it('a header section of exactly LIMITS.headerBytes is read; one byte more is rejected', async () => {
    const raw = (await aliceBuilds(message('offer', ALICE, HITOSHI))).toString('latin1');
    const end = raw.indexOf('\r\n\r\n');
    const withHeaderOf = (n: number) => {
      const pad = n - end - '\r\nX-Pad: '.length;
      return Buffer.from(raw.slice(0, end) + '\r\nX-Pad: ' + 'p'.repeat(pad) + raw.slice(end), 'latin1');
    };
    expect(reasonOf(await hitoshiReads(withHeaderOf(LIMITS.headerBytes)))).toBe('accepted');
    expect(reasonOf(await hitoshiReads(withHeaderOf(LIMITS.headerBytes + 1)))).toMatch(/^malformed: header section is larger than 65536/);
  });

  it('an armored payload over LIMITS.armoredBytes is too-large before any OpenPGP is read', async () => {
    const big = `-----BEGIN PGP MESSAGE-----\r\n\r\n${'QUFB'.repeat(LIMITS.armoredBytes / 4)}\r\n-----END PGP MESSAGE-----\r\n`;
    const raw = await new MailComposer({
      from: ALICE, to: HITOSHI, subject: 'peerdial', messageId: '<armored@example.test>', headers: { [HEADER_VERSION]: '1' }, text: 'x',
      attachments: [{ filename: PAYLOAD_FILENAME, content: big, contentType: PAYLOAD_MEDIA_TYPE, contentTransferEncoding: '7bit' }],
    }).compile().build();
    expect(raw.length).toBeLessThan(LIMITS.mailBytes);
    expect(reasonOf(await hitoshiReads(raw))).toMatch(/^too-large: payload attachment is \d+ bytes, more than 6815744/);
  });

  it('a decrypted payload over LIMITS.payloadBytes is too-large; at the limit it is merely not a valid message', async () => {
    const fill = (n: number) => {
      const m = message('message', ALICE, HITOSHI) as unknown as Record<string, unknown>;
      const bare = JSON.stringify({ ...m, pad: '' });
      return JSON.stringify({ ...m, pad: 'p'.repeat(n - bare.length) });
    };
    expect(fill(LIMITS.payloadBytes).length).toBe(LIMITS.payloadBytes);
    expect(reasonOf(await hitoshiReads(await forged(fill(LIMITS.payloadBytes), cast.alice)))).toMatch(/^malformed: unknown field "pad"/);
    expect(reasonOf(await hitoshiReads(await forged(fill(LIMITS.payloadBytes + 1), cast.alice)))).toMatch(/^too-large: payload is more than/);
  });
});

describe('compression bombs', () => {
  it.each([116_000, 927_000, 3_700_000])('a %i-byte mail that inflates ~1000-fold is too-large; the reader stops at LIMITS.decompressedBytes', async (size) => {
    const { raw, inflatesTo } = await bombMail(size, { from: MALLORY, to: HITOSHI });
    expect(Math.abs(raw.length - size)).toBeLessThan(size / 20);
    expect(inflatesTo).toBeGreaterThan(10 * LIMITS.decompressedBytes);
    const r = await parseMail(raw, contextFor(cast.hitoshi, { contacts: pinnedAll(cast), policy: 'everybody' }));
    expect(reasonOf(r)).toMatch(/^too-large: payload inflates to more than/);
  });
});
