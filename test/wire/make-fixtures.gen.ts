/**
 * Generates fixtures/ once. Skipped in normal runs; regenerate with
 *
 *   npm run fixtures   (not part of npm test: it rewrites fixtures/)
 *
 * Keys are only made when fixtures/keys/ is empty (or PEERDIAL_MAKE_KEYS=1).
 * Dates are fixed (see scenario.ts), so every fixture stays valid forever
 * when parsed with the `now` its manifest names.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MailComposer } from '../../src/wire/nodemailer.js';
import * as openpgp from 'openpgp';
import { describe, it } from 'vitest';
import { buildAutocryptHeader, buildKeyHeader } from '../../src/wire/autocrypt.js';
import { buildMail } from '../../src/wire/build.js';
import { HEADER_KEY, HEADER_LEGACY_AUTOCRYPT, PAYLOAD_FILENAME, PAYLOAD_MEDIA_TYPE } from '../../src/wire/headers.js';
import { generateIdentity, type Identity } from '../../src/wire/identity.js';
import type { PeerdialMessage } from '../../src/wire/message.js';
import {
  ALICE,
  FIXTURES,
  HITOSHI,
  KEY_DATE,
  MALLORY,
  T0,
  loadCast,
  message,
  type Cast,
} from './scenario.js';


function write(dir: string, name: string, data: string | Buffer): void {
  mkdirSync(join(FIXTURES, dir), { recursive: true });
  writeFileSync(join(FIXTURES, dir, name), data);
}

async function makeKeys(): Promise<void> {
  for (const [name, email, display] of [
    ['alice', ALICE, 'Alice Example'],
    ['hitoshi', HITOSHI, 'Hitoshi Example'],
    ['mallory', MALLORY, 'Mallory Example'],
  ] as const) {
    const id = await generateIdentity(email, display, { date: KEY_DATE });
    write('keys', `${name}.private.asc`, id.armoredPrivateKey);
    write('keys', `${name}.public.asc`, id.armoredPublicKey);
  }
}

/** A mail shaped like buildMail's, around an arbitrary armored payload (for malformed and forged cases). */
async function composeAround(
  armored: string | Buffer | null,
  o: {
    from: string;
    to: string;
    sender: Identity;
    /** The key in the key header (default: the sender's); null: no key header. */
    key?: openpgp.PublicKey | null;
    /** Write the key as the peerdial before Peerdial-Key did: a standard Autocrypt header. */
    oldVersion?: boolean;
    version?: string;
    messageId?: string;
    extraAttachments?: { filename: string; content: string | Buffer; contentType: string }[];
  },
): Promise<Buffer> {
  const headers: Record<string, string> = { 'Peerdial-Version': o.version ?? '1', 'Auto-Submitted': 'auto-generated' };
  if (o.key !== null) {
    const key = o.key ?? o.sender.publicKey;
    if (o.oldVersion) headers[HEADER_LEGACY_AUTOCRYPT] = buildAutocryptHeader(o.from, key);
    else headers[HEADER_KEY] = buildKeyHeader(o.from, key);
  }
  const attachments = armored === null ? [] : [{ filename: PAYLOAD_FILENAME, content: armored, contentType: PAYLOAD_MEDIA_TYPE }];
  return new MailComposer({
    from: o.from,
    to: o.to,
    subject: 'peerdial',
    date: T0,
    messageId: o.messageId ?? `<fixture-${Math.random().toString(36).slice(2)}@example.test>`,
    headers,
    text: `This is a peerdial call signal from ${o.from}.\r\nYour mail program can ignore it; peerdial reads it.\r\n`,
    attachments: [...attachments, ...(o.extraAttachments ?? [])],
  })
    .compile()
    .build();
}

async function signText(text: string, by: Identity): Promise<string> {
  return openpgp.sign({ message: await openpgp.createMessage({ text, date: T0 }), signingKeys: by.privateKey, date: T0 });
}

async function signJson(obj: unknown, by: Identity): Promise<string> {
  return signText(JSON.stringify(obj), by);
}

type ValidEntry = { self: 'alice' | 'hitoshi'; now: string; kind: string; encrypted: boolean; inReplyTo?: string };

async function makeValid(cast: Cast): Promise<Record<string, ValidEntry>> {
  const manifest: Record<string, ValidEntry> = {};
  const now = new Date(T0.getTime() + 4 * 60_000).toISOString(); // one minute before the 5-minute expiry
  const toH = { sender: cast.alice, recipientKey: cast.hitoshi.publicKey, date: T0, fromName: 'Alice Example' };
  const toA = { sender: cast.hitoshi, recipientKey: cast.alice.publicKey, date: T0, fromName: 'Hitoshi Example' };

  const offer = await buildMail(message('offer', ALICE, HITOSHI), toH);
  write('valid', 'offer.eml', offer.raw);
  manifest['offer.eml'] = { self: 'hitoshi', now, kind: 'offer', encrypted: true };

  const thread = { inReplyTo: offer.messageId, references: [offer.messageId] };
  for (const kind of ['answer', 'decline', 'hangup'] as const) {
    const built = await buildMail(message(kind, HITOSHI, ALICE), { ...toA, ...thread });
    write('valid', `${kind}.eml`, built.raw);
    manifest[`${kind}.eml`] = { self: 'alice', now, kind, encrypted: true, inReplyTo: offer.messageId };
  }
  const cancel = await buildMail(message('cancel', ALICE, HITOSHI), { ...toH, ...thread });
  write('valid', 'cancel.eml', cancel.raw);
  manifest['cancel.eml'] = { self: 'hitoshi', now, kind: 'cancel', encrypted: true, inReplyTo: offer.messageId };

  const announce = await buildMail(message('announce', ALICE, HITOSHI, { callId: 'announce-2025-06-01-000000001' }), toH);
  write('valid', 'announce.eml', announce.raw);
  manifest['announce.eml'] = { self: 'hitoshi', now, kind: 'announce', encrypted: true };

  // First contact: alice does not know hitoshi's key yet, so she can only sign.
  const announcePlain = await buildMail(message('announce', ALICE, HITOSHI, { callId: 'announce-2025-06-01-000000002' }), {
    sender: cast.alice,
    date: T0,
  });
  write('valid', 'announce-signed-only.eml', announcePlain.raw);
  manifest['announce-signed-only.eml'] = { self: 'hitoshi', now, kind: 'announce', encrypted: false };

  // The same first contact from a peer on the peerdial that carried its key in a standard Autocrypt header.
  const oldVersion = await buildMail(message('announce', ALICE, HITOSHI, { callId: 'announce-2025-06-01-000000003' }), { sender: cast.alice, date: T0 });
  const oldText = oldVersion.raw.toString('latin1').replace(/^Peerdial-Key: .*(\r\n[ \t].*)*\r\n/m, () => `Autocrypt: ${buildAutocryptHeader(ALICE, cast.alice.publicKey)}\r\n`);
  if (oldText.includes(HEADER_KEY)) throw new Error('the old-version fixture still carries Peerdial-Key');
  write('valid', 'announce-signed-only-old-version.eml', oldText);
  manifest['announce-signed-only-old-version.eml'] = { self: 'hitoshi', now, kind: 'announce', encrypted: false };

  const voicemail = Buffer.from('OggS\0fake-opus-voicemail-bytes-for-the-fixture').toString('base64');
  const msg = await buildMail(
    message('message', ALICE, HITOSHI, {
      callId: 'message-2025-06-01-000000001',
      attachment: { filename: 'voicemail.opus', contentType: 'audio/ogg', data: voicemail },
    }),
    toH,
  );
  write('valid', 'message.eml', msg.raw);
  manifest['message.eml'] = { self: 'hitoshi', now, kind: 'message', encrypted: true };
  return manifest;
}

type RejectEntry = { self: 'alice' | 'hitoshi'; reason: string; now?: string; note: string };

async function makeMalformed(cast: Cast): Promise<Record<string, RejectEntry>> {
  const m: Record<string, RejectEntry> = {};
  const a = { from: ALICE, to: HITOSHI, sender: cast.alice };
  const add = (name: string, data: string | Buffer, reason: string, note: string): void => {
    write('malformed', name, data);
    m[name] = { self: 'hitoshi', reason, note };
  };
  const valid = await buildMail(message('offer', ALICE, HITOSHI), { sender: cast.alice, recipientKey: cast.hitoshi.publicKey, date: T0 });
  const validText = valid.raw.toString('latin1');
  const signedValid = await signJson(message('offer', ALICE, HITOSHI), cast.alice);

  add(
    'newsletter.eml',
    [
      'From: "Example Weekly" <news@example.test>',
      'To: hitoshi@example.test',
      'Subject: peerdial and 9 other things you missed this week',
      'Date: Sun, 01 Jun 2025 09:00:00 +0000',
      'Message-ID: <weekly-2025-22@example.test>',
      'List-Unsubscribe: <mailto:unsubscribe@example.test>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/alternative; boundary="nl"',
      '',
      '--nl',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'This week: calls over e-mail, again.',
      '--nl',
      'Content-Type: text/html; charset=utf-8',
      '',
      '<p>This week: calls over e-mail, again.</p>',
      '--nl--',
      '',
    ].join('\r\n'),
    'not-ours',
    'an ordinary newsletter, even mentions peerdial in the Subject',
  );
  add('version-2.eml', validText.replace('Peerdial-Version: 1', 'Peerdial-Version: 2'), 'unsupported-version', 'a future protocol version');
  add('version-junk.eml', validText.replace('Peerdial-Version: 1', 'Peerdial-Version: one point oh'), 'unsupported-version', 'version is not a number');
  add(
    'no-attachment.eml',
    await composeAround(null, { ...a, extraAttachments: [{ filename: 'notes.txt', content: 'not a payload\r\n', contentType: 'text/plain' }] }),
    'malformed',
    'our header, multipart/mixed, but no payload attachment',
  );
  add(
    'multipart-encrypted.eml',
    [
      'From: alice@example.test',
      'To: hitoshi@example.test',
      'Subject: peerdial',
      'Date: Sun, 01 Jun 2025 10:00:00 +0000',
      'Message-ID: <pgpmime-1@example.test>',
      'Peerdial-Version: 1',
      'MIME-Version: 1.0',
      'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="enc"',
      '',
      '--enc',
      'Content-Type: application/pgp-encrypted',
      '',
      'Version: 1',
      '--enc',
      'Content-Type: application/octet-stream; name="encrypted.asc"',
      '',
      signedValid,
      '--enc--',
      '',
    ].join('\r\n'),
    'malformed',
    'PGP/MIME at the top level: other mail programs would grab and delete it',
  );
  const boundary = /boundary="([^"]+)"/.exec(validText)![1]!;
  add('broken-boundary.eml', validText.replaceAll(`--${boundary}`, '--some-other-boundary'), 'malformed', 'parts delimited by a boundary that was never declared');
  const cut = validText.indexOf('-----END PGP MESSAGE-----');
  add('truncated-pgp.eml', validText.slice(0, cut - 300), 'malformed', 'mail cut off in the middle of the OpenPGP message');
  add(
    'empty-body.eml',
    ['From: alice@example.test', 'To: hitoshi@example.test', 'Message-ID: <empty-1@example.test>', 'Peerdial-Version: 1', 'Content-Type: multipart/mixed; boundary="x"', '', ''].join('\r\n'),
    'malformed',
    'headers, then nothing',
  );
  add(
    'huge-header.eml',
    validText.replace('Peerdial-Version: 1\r\n', `Peerdial-Version: 1\r\nX-Junk: ${'A'.repeat(998 - 8)}${'\r\n ' + 'B'.repeat(900)}`.padEnd(0) + '\r\n ' + 'C'.repeat(200 * 1024) + '\r\n'),
    'malformed',
    'a 200 KB header',
  );
  const junk = Buffer.alloc(4096);
  for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919 + 13) % 256;
  add('binary-junk.eml', Buffer.concat([Buffer.from('Peerdial-Version: 1\r\nMessage-ID: <junk-1@example.test>\r\nFrom: alice@example.test\r\n\r\n'), junk]), 'malformed', 'our header, then binary junk');
  add('binary-junk-no-header.eml', junk, 'not-ours', 'binary junk, no headers at all');
  add('json-array.eml', await composeAround(await signText('[1,2,3]', cast.alice), a), 'malformed', 'JSON that is not an object');
  add('json-not-json.eml', await composeAround(await signText('offer: call me at 198.51.100.7', cast.alice), a), 'malformed', 'payload is not JSON');
  const { nonce: _n, ...noNonce } = message('offer', ALICE, HITOSHI);
  add('missing-fields.eml', await composeAround(await signJson(noNonce, cast.alice), a), 'malformed', 'payload without a nonce');
  add(
    'wrong-types.eml',
    await composeAround(await signJson({ ...message('offer', ALICE, HITOSHI), expires: 1748772300, addresses: '198.51.100.7' }, cast.alice), a),
    'malformed',
    'expires is a number, addresses a string',
  );
  add('unknown-kind.eml', await composeAround(await signJson({ ...message('offer', ALICE, HITOSHI), kind: 'ring' }, cast.alice), a), 'malformed', 'a kind v1 does not know');
  add(
    'bad-ip.eml',
    await composeAround(await signJson({ ...message('announce', ALICE, HITOSHI), addresses: [{ ip: '999.1.1.1', source: 'stun', scope: 'public' }] }, cast.alice), a),
    'malformed',
    'an address that is not an IP',
  );
  add('time-not-iso.eml', await composeAround(await signJson({ ...message('cancel', ALICE, HITOSHI), created: '2025-06-01 10:00' }, cast.alice), a), 'malformed', 'created is not ISO 8601 UTC');
  add('sdp-on-cancel.eml', await composeAround(await signJson({ ...message('cancel', ALICE, HITOSHI), sdp: 'v=0\r\n' }, cast.alice), a), 'malformed', 'a cancel that carries an SDP');
  add(
    'wrong-charset.eml',
    await composeAround(Buffer.from(signedValid, 'utf16le'), a),
    'malformed',
    'payload armored in UTF-16',
  );
  add(
    'wrong-encoding.eml',
    validText.replace(/(Content-Type: application\/vnd\.peerdial\.v1\+pgp[^]*?Content-Transfer-Encoding: )7bit/, '$1base64'),
    'malformed',
    'armored text declared as base64',
  );
  add(
    'two-payloads.eml',
    await composeAround(signedValid, { ...a, extraAttachments: [{ filename: PAYLOAD_FILENAME, content: signedValid, contentType: PAYLOAD_MEDIA_TYPE }] }),
    'malformed',
    'two payload attachments',
  );
  add('no-message-id.eml', validText.replace(/Message-ID: [^\r\n]*\r\n/, ''), 'malformed', 'no Message-ID');
  add(
    'text-plain-top.eml',
    ['From: alice@example.test', 'To: hitoshi@example.test', 'Message-ID: <inline-1@example.test>', 'Peerdial-Version: 1', 'Content-Type: text/plain', '', signedValid, ''].join('\r\n'),
    'malformed',
    'inline OpenPGP in a text/plain mail',
  );
  const toMalloryOnly = await openpgp.encrypt({
    message: await openpgp.createMessage({ text: JSON.stringify(message('offer', ALICE, HITOSHI)), date: T0 }),
    encryptionKeys: cast.mallory.publicKey,
    signingKeys: cast.alice.privateKey,
    date: T0,
  });
  add('undecryptable.eml', await composeAround(toMalloryOnly, a), 'undecryptable', 'encrypted to mallory only');
  return m;
}

async function makeForged(cast: Cast): Promise<Record<string, RejectEntry & { from: string }>> {
  const m: Record<string, RejectEntry & { from: string }> = {};
  const add = (name: string, data: string | Buffer, e: RejectEntry & { from: string }): void => {
    write('forged', name, data);
    m[name] = e;
  };
  const offer = message('offer', ALICE, HITOSHI);
  add('from-alice-signed-by-mallory.eml', await composeAround(await signJson(offer, cast.mallory), { from: ALICE, to: HITOSHI, sender: cast.alice, key: cast.mallory.publicKey }), {
    self: 'hitoshi', reason: 'key-mismatch', from: ALICE, note: 'mallory claims to be alice and ships her own key in Peerdial-Key',
  });
  add('from-alice-signed-by-mallory-old-autocrypt.eml', await composeAround(await signJson(offer, cast.mallory), { from: ALICE, to: HITOSHI, sender: cast.alice, key: cast.mallory.publicKey, oldVersion: true }), {
    self: 'hitoshi', reason: 'key-mismatch', from: ALICE, note: 'mallory claims to be alice and ships her own key in an old-style Autocrypt header',
  });
  add('from-alice-signed-by-mallory-no-key.eml', await composeAround(await signJson(offer, cast.mallory), { from: ALICE, to: HITOSHI, sender: cast.alice, key: null }), {
    self: 'hitoshi', reason: 'key-mismatch', from: ALICE, note: 'mallory signs as alice, no key in the mail',
  });

  // Alice's genuine signature over her offer, now attached to a text whose address was swapped on the way.
  const signature = await openpgp.sign({
    message: await openpgp.createMessage({ text: JSON.stringify(offer), date: T0 }),
    signingKeys: cast.alice.privateKey,
    date: T0,
    detached: true,
    format: 'object',
  });
  const tamperedText = JSON.stringify(offer).replaceAll('198.51.100.7', '203.0.113.66');
  const packets = new openpgp.PacketList<openpgp.AnyPacket>();
  packets.push(...signature.packets, ...(await openpgp.createMessage({ text: tamperedText, date: T0 })).packets);
  const genuine = new openpgp.Message(packets);
  add('tampered-payload.eml', await composeAround(genuine.armor(), { from: ALICE, to: HITOSHI, sender: cast.alice }), {
    self: 'hitoshi', reason: 'bad-signature', from: ALICE, note: 'signed payload whose address was changed in transit',
  });

  const enc = await buildMail(offer, { sender: cast.alice, recipientKey: cast.hitoshi.publicKey, date: T0 });
  const encText = enc.raw.toString('latin1');
  const armorStart = encText.indexOf('-----BEGIN PGP MESSAGE-----');
  const flipAt = encText.indexOf('\n', encText.indexOf('\n', armorStart + 40) + 300) - 20;
  const flipped = encText.slice(0, flipAt) + (encText[flipAt] === 'A' ? 'B' : 'A') + encText.slice(flipAt + 1);
  add('tampered-encrypted.eml', flipped, { self: 'hitoshi', reason: 'bad-signature', from: ALICE, note: 'one ciphertext character changed' });

  const unsigned = await openpgp.encrypt({ message: await openpgp.createMessage({ text: JSON.stringify(offer), date: T0 }), encryptionKeys: cast.hitoshi.publicKey, date: T0 });
  add('unsigned.eml', await composeAround(unsigned, { from: ALICE, to: HITOSHI, sender: cast.alice }), {
    self: 'hitoshi', reason: 'bad-signature', from: ALICE, note: 'encrypted to hitoshi, signed by nobody',
  });

  add('alice-payload-in-mallory-envelope.eml', await composeAround(await signJson(offer, cast.alice), { from: MALLORY, to: HITOSHI, sender: cast.mallory }), {
    self: 'hitoshi', reason: 'sender-mismatch', from: MALLORY, note: "mallory re-sends alice's genuine signed offer from her own address",
  });
  const forMallory = message('offer', ALICE, MALLORY);
  add('for-mallory-forwarded-to-hitoshi.eml', await composeAround(await signJson(forMallory, cast.alice), { from: ALICE, to: HITOSHI, sender: cast.alice }), {
    self: 'hitoshi', reason: 'wrong-recipient', from: ALICE, note: "alice's genuine offer to mallory, passed on to hitoshi",
  });
  return m;
}

describe('make fixtures', () => {
  it('writes fixtures/', async () => {
    const keysDir = join(FIXTURES, 'keys');
    if (process.env.PEERDIAL_MAKE_KEYS === '1' || !existsSync(keysDir) || readdirSync(keysDir).filter((f) => f.endsWith('.asc')).length === 0) {
      await makeKeys();
    }
    const cast = await loadCast();
    for (const dir of ['valid', 'malformed', 'forged']) rmSync(join(FIXTURES, dir), { recursive: true, force: true });
    write('valid', 'manifest.json', JSON.stringify(await makeValid(cast), null, 2) + '\n');
    write('malformed', 'manifest.json', JSON.stringify(await makeMalformed(cast), null, 2) + '\n');
    write('forged', 'manifest.json', JSON.stringify(await makeForged(cast), null, 2) + '\n');
  });
});

export type { PeerdialMessage };
