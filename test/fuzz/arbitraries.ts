/**
 * Generators of hostile mail for the fuzz tests. Mails are built as byte
 * strings (one char per byte, latin1) so that invalid UTF-8 can sit next to
 * real UTF-8; `bytes()` turns one into the Buffer the parser gets.
 *
 * Most generators are cheap string builders; the OpenPGP ones start from a
 * few real signed/encrypted payloads made once per run (see `pgpCorpus`)
 * and mutate them.
 */
import zlib from 'node:zlib';
import fc from 'fast-check';
import * as openpgp from 'openpgp';
import { buildMail } from '../../src/wire/build.js';
import { PAYLOAD_MEDIA_TYPE } from '../../src/wire/headers.js';
import type { Identity } from '../../src/wire/identity.js';
import { ALICE, HITOSHI, MALLORY, T0, message, type Cast } from '../wire/scenario.js';

/** A generated mail: what it is (for the failure report) and its bytes. */
export interface HostileMail {
  label: string;
  raw: Buffer;
}

export function hostile(label: string, byteString: string | Buffer): HostileMail {
  const raw = typeof byteString === 'string' ? Buffer.from(byteString, 'latin1') : byteString;
  return {
    label,
    raw,
    // fast-check prints this on failure instead of a megabyte of bytes
    [fc.toStringMethod]: () => `${label} (${raw.length} bytes): ${JSON.stringify(raw.subarray(0, 400).toString('latin1'))}${raw.length > 400 ? '...' : ''}`,
  } as HostileMail;
}

/** UTF-8 text as a byte string. */
export const u8 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');

/** What an attacker puts into text that may be printed. */
export const ESCAPES = [
  '\x1b]0;pwned\x07',
  '\x1b[31m',
  '\x1b[2J\x1b[H',
  '\u009b31m',
  '\u009d0;pwned\u009c',
  '\u202e',
  '\u2066',
  '\u2069',
  '\u200b',
  '\ufeff',
  '\x07',
  '\x00',
  '\r\n',
  '\n',
  '\r',
  '\x7f',
  '\ud800',
];

const CHARSETS = [
  'utf-8', 'UTF-8', 'us-ascii', 'iso-8859-1', 'windows-1252', 'iso-2022-jp', 'shift_jis', 'euc-kr', 'koi8-r', 'gb18030', 'big5',
  'utf-16', 'utf-16le', 'utf-7', 'x-unknown', '', '"utf-8', 'utf-8"; x=y', '\x1b[31m', 'a'.repeat(300),
];
export const charset = fc.constantFrom(...CHARSETS);

/** Invalid UTF-8: lone continuation bytes, truncated sequences, overlongs, surrogates encoded. */
const BAD_UTF8 = ['\x80', '\xbf', '\xc0\xaf', '\xe0\x80\xaf', '\xed\xa0\x80', '\xf4\x90\x80\x80', '\xff\xfe', '\xc3', '\xe2\x82'];

const encodedWord = fc
  .tuple(charset, fc.constantFrom('B', 'Q', 'b', 'q', 'X', ''), fc.oneof(fc.uint8Array({ maxLength: 30 }), fc.constantFrom(...ESCAPES).map((e) => new Uint8Array(Buffer.from(e, 'utf8')))))
  .map(([cs, enc, data]) => {
    const b = Buffer.from(data);
    const body = enc.toUpperCase() === 'B' ? b.toString('base64') : [...b].map((x) => (x > 0x20 && x < 0x7f && x !== 0x3d && x !== 0x3f && x !== 0x5f ? String.fromCharCode(x) : `=${x.toString(16).padStart(2, '0').toUpperCase()}`)).join('');
    return `=?${cs}?${enc}?${body}?=`;
  });

/** One piece of hostile text, as a byte string. */
const textPiece = fc.oneof(
  { arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }).map(u8), weight: 3 },
  { arbitrary: fc.constantFrom(...ESCAPES).map(u8), weight: 3 },
  { arbitrary: fc.constantFrom(...BAD_UTF8), weight: 2 },
  { arbitrary: fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b).toString('latin1')), weight: 2 },
  { arbitrary: encodedWord, weight: 2 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 20 }).map(u8), weight: 1 },
);
export const hostileText = fc.array(textPiece, { maxLength: 5 }).map((p) => p.join(''));

const HEADER_NAMES = [
  'From', 'To', 'Cc', 'Subject', 'Message-ID', 'In-Reply-To', 'References', 'Date', 'MIME-Version', 'Content-Type',
  'Content-Transfer-Encoding', 'Content-Disposition', 'Autocrypt', 'Peerdial-Key', 'Peerdial-Version', 'Auto-Submitted', 'Received', 'X-Mailer',
];
const headerName = fc.oneof(
  { arbitrary: fc.constantFrom(...HEADER_NAMES), weight: 5 },
  { arbitrary: fc.constantFrom(...HEADER_NAMES).map((n) => n.toLowerCase()), weight: 1 },
  { arbitrary: fc.string({ unit: fc.constantFrom(...'abcXYZ-_:.; \t\x1b'), minLength: 1, maxLength: 12 }), weight: 1 },
);

/** Values an attacker tries in the headers we read. */
const fromValue = fc.oneof(
  fc.constantFrom(ALICE, MALLORY, `Alice <${ALICE}>`, 'carol@example.test', 'dave@example.test', '', '<>', 'a@b@c', `${ALICE}, ${MALLORY}`, 'undisclosed-recipients:;'),
  fc.tuple(hostileText, hostileText).map(([name, local]) => `"${name}" <${local}@example.test>`),
  fc.tuple(encodedWord, fc.constantFrom(ALICE, MALLORY)).map(([w, a]) => `${w} <${a}>`),
  hostileText,
);
const versionValue = fc.oneof(
  fc.constant('1'),
  fc.constantFrom('1 ', ' 1', '01', '1.0', '2', '0', '', '-1', '1; x=y', '\x1b]0;pwned\x07', '\u202e1', '1\x00', 'x'.repeat(5000)),
  hostileText,
);
const messageIdValue = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'abcdef0123456789'), minLength: 1, maxLength: 24 }).map((s) => `<${s}@example.test>`),
  fc.constantFrom('', '<>', '<a b@c>', 'no-brackets@example.test', '<<x@y>>', `<${'a'.repeat(2000)}@x>`),
  hostileText.map((t) => `<${t}@example.test>`),
);
const autocryptValue = fc.oneof(
  fc.constantFrom('', 'addr=alice@example.test', 'addr=alice@example.test; keydata=', 'addr=alice@example.test; keydata=AAAA', 'addr=alice@example.test; keydata=!!!', `addr=${ALICE}; addr=${MALLORY}; keydata=xjMEZ3SF`),
  fc.tuple(fc.constantFrom(ALICE, MALLORY, 'x@y'), fc.uint8Array({ maxLength: 200 })).map(([a, k]) => `addr=${a}; prefer-encrypt=mutual; keydata=${Buffer.from(k).toString('base64')}`),
  hostileText.map((t) => `addr=${t}; keydata=${t}`),
);
const valueFor = (name: string): fc.Arbitrary<string> => {
  switch (name.toLowerCase()) {
    case 'from':
      return fromValue;
    case 'peerdial-version':
      return versionValue;
    case 'message-id':
    case 'in-reply-to':
      return messageIdValue;
    case 'autocrypt':
    case 'peerdial-key':
      return autocryptValue;
    default:
      return hostileText;
  }
};
const header = headerName.chain((name) => valueFor(name).map((value) => ({ name, value })));

// ---------------------------------------------------------------- MIME trees

interface Leaf {
  t: 'leaf';
  type: string;
  charset: string;
  cte: string;
  filename?: string;
  body: string;
}
interface Multi {
  t: 'multi';
  subtype: string;
  boundary: string;
  /** Which boundary the header names: the one used, none, another, or an empty one. */
  declared: 'same' | 'missing' | 'other' | 'empty';
  children: Node[];
  close: boolean;
  preamble: string;
}
type Node = Leaf | Multi;

const PART_TYPES = ['text/plain', 'text/html', 'application/octet-stream', PAYLOAD_MEDIA_TYPE, PAYLOAD_MEDIA_TYPE.toUpperCase(), 'message/rfc822', 'image/png', 'multipart/mixed', '', 'text', '/', 'application/pgp-encrypted'];
const CTES = ['7bit', '8bit', 'base64', 'quoted-printable', 'binary', 'x-uuencode', 'bogus', ''];

const bodyText = fc.oneof(
  { arbitrary: hostileText, weight: 3 },
  { arbitrary: fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b).toString('latin1')), weight: 2 },
  { arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('base64')), weight: 2 },
  { arbitrary: fc.tuple(fc.uint8Array({ maxLength: 200 }), fc.boolean()).map(([b, end]) => `-----BEGIN PGP MESSAGE-----\r\n\r\n${Buffer.from(b).toString('base64')}\r\n${end ? '-----END PGP MESSAGE-----\r\n' : ''}`), weight: 2 },
  { arbitrary: fc.constantFrom('=\r\n', '=XY=4', '=', '=3D=3', '\x00\x00', 'begin 644 x\r\n`\r\nend\r\n'), weight: 1 },
);

const leaf: fc.Arbitrary<Leaf> = fc.record(
  { t: fc.constant('leaf' as const), type: fc.constantFrom(...PART_TYPES), charset, cte: fc.constantFrom(...CTES), filename: hostileText, body: bodyText },
  { requiredKeys: ['t', 'type', 'charset', 'cte', 'body'] },
);

const tree = fc.letrec<{ node: Node; multi: Multi }>((tie) => ({
  node: fc.oneof({ depthSize: 'small', maxDepth: 6 }, leaf, tie('multi')),
  multi: fc.record({
    t: fc.constant('multi' as const),
    subtype: fc.constantFrom('mixed', 'alternative', 'related', 'encrypted', 'signed', 'digest', 'x-bogus'),
    boundary: fc.oneof(fc.string({ unit: fc.constantFrom(...'abc012-_=.'), minLength: 1, maxLength: 12 }), fc.constantFrom('', ' ', '--', '"', 'x'.repeat(200))),
    declared: fc.constantFrom('same', 'same', 'same', 'missing', 'other', 'empty'),
    children: fc.array(tie('node'), { maxLength: 5 }),
    close: fc.boolean(),
    preamble: fc.oneof(fc.constant(''), hostileText),
  }),
})).node;

function partHeaders(type: string, extra: string): string {
  return `Content-Type: ${type}${extra}\r\n`;
}

function renderNode(n: Node): string {
  if (n.t === 'leaf') {
    const ct = partHeaders(n.type, n.charset ? `; charset=${n.charset}` : '');
    const disp = n.filename !== undefined ? `Content-Disposition: attachment; filename="${n.filename}"\r\n` : '';
    const cte = n.cte ? `Content-Transfer-Encoding: ${n.cte}\r\n` : '';
    return `${ct}${disp}${cte}\r\n${n.body}`;
  }
  const declared = n.declared === 'same' ? `; boundary="${n.boundary}"` : n.declared === 'other' ? '; boundary="other-boundary"' : n.declared === 'empty' ? '; boundary=""' : '';
  let out = `${partHeaders(`multipart/${n.subtype}`, declared)}\r\n${n.preamble}\r\n`;
  for (const c of n.children) out += `--${n.boundary}\r\n${renderNode(c)}\r\n`;
  if (n.close) out += `--${n.boundary}--\r\n`;
  return out;
}

/** Deep nesting: `depth` multiparts inside each other, closed or not. */
const deepNesting = fc.record({ depth: fc.integer({ min: 20, max: 400 }), close: fc.boolean(), leafBody: hostileText }).map(({ depth, close, leafBody }) => {
  let open = '';
  let tail = '';
  for (let i = 0; i < depth; i++) {
    open += `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n`;
    if (close) tail = `\r\n--b${i}--\r\n` + tail;
  }
  return `${open}Content-Type: ${PAYLOAD_MEDIA_TYPE}\r\n\r\n${leafBody}${tail}`;
});

/** Many parts side by side. */
const manyParts = fc.record({ count: fc.integer({ min: 100, max: 3000 }), payloads: fc.boolean(), close: fc.boolean() }).map(({ count, payloads, close }) => {
  const part = `--p\r\nContent-Type: ${payloads ? PAYLOAD_MEDIA_TYPE : 'text/plain'}\r\n\r\nx\r\n`;
  return `Content-Type: multipart/mixed; boundary="p"\r\n\r\n${part.repeat(count)}${close ? '--p--\r\n' : ''}`;
});

/** The body of a generated mail, with its own Content-Type line(s) first. */
const body = fc.oneof(
  { arbitrary: tree.map(renderNode), weight: 40 },
  { arbitrary: deepNesting, weight: 1 },
  { arbitrary: manyParts, weight: 1 },
);

function headerLine(name: string, value: string, fold: number): string {
  if (fold <= 0 || value.length <= fold) return `${name}: ${value}\r\n`;
  const chunks: string[] = [];
  for (let i = 0; i < value.length; i += fold) chunks.push(value.slice(i, i + fold));
  return `${name}: ${chunks.join('\r\n ')}\r\n`;
}

/**
 * Broken and nested MIME with hostile headers: the cheap bulk of the run.
 * Most carry one valid Peerdial-Version so that the parser goes past the
 * first check.
 */
export const mimeMail: fc.Arbitrary<HostileMail> = fc
  .record({
    headers: fc.array(header, { maxLength: 10 }),
    versions: fc.oneof({ arbitrary: fc.constant(['1']), weight: 6 }, { arbitrary: fc.array(versionValue, { maxLength: 3 }), weight: 2 }),
    from: fc.oneof(fc.constant(ALICE), fromValue),
    messageId: fc.oneof(fc.constant('<fuzz-1@example.test>'), messageIdValue),
    body,
    fold: fc.constantFrom(0, 0, 0, 1, 7, 76),
    lf: fc.boolean(),
  })
  .map(({ headers, versions, from, messageId, body, fold, lf }) => {
    let s = '';
    for (const v of versions) s += headerLine('Peerdial-Version', v, fold);
    s += headerLine('From', from, fold);
    s += `To: ${HITOSHI}\r\n`;
    s += headerLine('Message-ID', messageId, fold);
    s += 'MIME-Version: 1.0\r\n';
    for (const h of headers) s += headerLine(h.name, h.value, fold);
    s += body;
    if (lf) s = s.replace(/\r\n/g, '\n');
    return hostile(`mime(versions=${versions.length})`, s);
  });

/** Thousands of headers, or one huge folded line; our header before, inside or after the flood. */
export const headerFlood: fc.Arbitrary<HostileMail> = fc
  .record({
    count: fc.integer({ min: 500, max: 6000 }),
    lineLength: fc.integer({ min: 1, max: 120 }),
    huge: fc.integer({ min: 0, max: 200_000 }),
    where: fc.constantFrom('before', 'after', 'none'),
    name: fc.constantFrom('X-Flood', 'Received', 'Peerdial-Version', 'From', 'Autocrypt', 'Subject'),
    fill: fc.constantFrom('a', '\x1b[31m', '\u009b', '\xff', ' ', '\t'),
  })
  .map(({ count, lineLength, huge, where, name, fill }) => {
    let s = where === 'before' ? 'Peerdial-Version: 1\r\n' : '';
    s += `From: ${ALICE}\r\nTo: ${HITOSHI}\r\nMessage-ID: <flood@example.test>\r\n`;
    s += `${name}: ${fill.repeat(lineLength)}\r\n`.repeat(count);
    if (huge > 0) s += `Subject: ${(fill.repeat(60) + '\r\n ').repeat(Math.ceil(huge / 63))}x\r\n`;
    if (where === 'after') s += 'Peerdial-Version: 1\r\n';
    s += `Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: ${PAYLOAD_MEDIA_TYPE}\r\n\r\nx\r\n--b--\r\n`;
    return hostile(`header-flood(${name} x${count}, huge=${huge}, ours ${where})`, s);
  });

// ---------------------------------------------------------------- OpenPGP

/** One OpenPGP packet (new format header). */
export function packet(tag: number, body: Buffer): Buffer {
  const n = body.length;
  let len: Buffer;
  if (n < 192) len = Buffer.from([n]);
  else if (n < 8384) len = Buffer.from([((n - 192) >> 8) + 192, (n - 192) & 0xff]);
  else {
    len = Buffer.alloc(5);
    len[0] = 0xff;
    len.writeUInt32BE(n, 1);
  }
  return Buffer.concat([Buffer.from([0xc0 | tag]), len, body]);
}
const literalPacket = (data: Buffer): Buffer => packet(11, Buffer.concat([Buffer.from([0x75, 0]), Buffer.alloc(4), data]));
const compressedPacket = (inner: Buffer, algo: 1 | 2 = 2): Buffer =>
  packet(8, Buffer.concat([Buffer.from([algo]), algo === 2 ? zlib.deflateSync(inner, { level: 9 }) : zlib.deflateRawSync(inner, { level: 9 })]));

export interface PgpCorpus {
  /** A real mail from alice to hitoshi, as built by buildMail; its armored payload is replaced by the mutants. */
  template: string;
  templateArmor: string;
  /** Binary OpenPGP messages to mutate; `rare` ones (the bombs, slow by design) are picked less often. */
  payloads: { label: string; binary: Buffer; rare?: boolean }[];
  /** Whole real mails (valid), to mutate at the header level. */
  valid: { label: string; raw: string }[];
}

const armor = (binary: Uint8Array): string => openpgp.armor(openpgp.enums.armor.message, binary);

async function sealed(msg: openpgp.Message<Uint8Array | string>, cast: Cast, how: { sign?: Identity; encrypt?: boolean; zlib?: boolean }): Promise<Buffer> {
  const config = how.zlib ? { preferredCompressionAlgorithm: openpgp.enums.compression.zlib } : {};
  if (how.encrypt) {
    const out = await openpgp.encrypt({ message: msg, encryptionKeys: cast.hitoshi.publicKey, ...(how.sign ? { signingKeys: how.sign.privateKey } : {}), format: 'binary', date: T0, config });
    return Buffer.from(out as Uint8Array);
  }
  const out = await openpgp.sign({ message: msg, signingKeys: (how.sign ?? cast.alice).privateKey, format: 'binary', date: T0, config });
  return Buffer.from(out as Uint8Array);
}

/** Real signed, encrypted and compressed payloads, made once per run. */
export async function pgpCorpus(cast: Cast): Promise<PgpCorpus> {
  const offer = message('offer', ALICE, HITOSHI);
  const built = await buildMail(offer, { sender: cast.alice, recipientKey: cast.hitoshi.publicKey, date: T0, fromName: 'Alice' });
  const template = built.raw.toString('latin1');
  const templateArmor = /-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----\r?\n?/.exec(template)![0];
  const text = (m: object): Promise<openpgp.Message<string>> => openpgp.createMessage({ text: JSON.stringify(m), format: 'utf8', date: T0 });
  const zeros = (n: number): Promise<openpgp.Message<Uint8Array>> => openpgp.createMessage({ binary: new Uint8Array(n), date: T0 });
  const hostileMessage = message('message', ALICE, HITOSHI, { text: 'hi \u009b31m \u202etxt.exe\u202c \u2066x\u2069' });
  const payloads: PgpCorpus['payloads'] = [
    { label: 'signed offer', binary: await sealed(await text(offer), cast, { sign: cast.alice }) },
    { label: 'signed+encrypted offer', binary: await sealed(await text(offer), cast, { sign: cast.alice, encrypt: true }) },
    { label: 'signed+encrypted+zlib message', binary: await sealed(await text(hostileMessage), cast, { sign: cast.alice, encrypt: true, zlib: true }) },
    { label: 'signed by mallory', binary: await sealed(await text(offer), cast, { sign: cast.mallory, encrypt: true }) },
    { label: 'encrypted, unsigned', binary: await sealed(await text(offer), cast, { encrypt: true }) },
    { label: 'signed zlib bomb 1 MiB', binary: await sealed(await zeros(1 << 20), cast, { sign: cast.alice, zlib: true }), rare: true },
    { label: 'encrypted zlib bomb 4 MiB', binary: await sealed(await zeros(4 << 20), cast, { sign: cast.alice, encrypt: true, zlib: true }), rare: true },
    { label: 'bare zlib bomb 4 MiB', binary: compressedPacket(literalPacket(Buffer.alloc(4 << 20))), rare: true },
    { label: 'bare zip bomb 2 MiB', binary: compressedPacket(literalPacket(Buffer.alloc(2 << 20)), 1), rare: true },
    { label: 'nested compression', binary: compressedPacket(compressedPacket(literalPacket(Buffer.alloc(1 << 20)))), rare: true },
    { label: 'compressed junk', binary: compressedPacket(Buffer.from('not a packet at all')) },
  ];
  const valid: PgpCorpus['valid'] = [{ label: 'encrypted offer', raw: template }];
  const signedOnly = await buildMail(message('announce', ALICE, HITOSHI), { sender: cast.alice, date: T0, fromName: 'Alice' });
  valid.push({ label: 'signed announce', raw: signedOnly.raw.toString('latin1') });
  const msgMail = await buildMail(hostileMessage, { sender: cast.alice, recipientKey: cast.hitoshi.publicKey, date: T0 });
  valid.push({ label: 'encrypted message with bidi text', raw: msgMail.raw.toString('latin1') });
  return { template, templateArmor, payloads, valid };
}

type Mutation =
  | { t: 'none' }
  | { t: 'truncate'; at: number }
  | { t: 'flip'; at: number[]; bit: number }
  | { t: 'tag'; at: number; tag: number }
  | { t: 'duplicate' }
  | { t: 'append'; junk: Uint8Array }
  | { t: 'prepend-literal' }
  | { t: 'armor-char'; at: number; ch: string }
  | { t: 'armor-cut'; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constant({ t: 'none' as const }),
  fc.double({ min: 0, max: 1, noNaN: true }).map((at) => ({ t: 'truncate' as const, at })),
  fc.record({ t: fc.constant('flip' as const), at: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ t: fc.constant('tag' as const), at: fc.nat(), tag: fc.integer({ min: 0, max: 63 }) }),
  fc.constant({ t: 'duplicate' as const }),
  fc.record({ t: fc.constant('append' as const), junk: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.constant({ t: 'prepend-literal' as const }),
  fc.record({ t: fc.constant('armor-char' as const), at: fc.nat(), ch: fc.constantFrom('=', '-', '\x1b', '\u009b', ' ', '\r\n', 'A', '\x00') }),
  fc.record({ t: fc.constant('armor-cut' as const), at: fc.nat() }),
);

function mutate(binary: Buffer, m: Mutation): string {
  const b = Buffer.from(binary);
  switch (m.t) {
    case 'none':
      return armor(b);
    case 'truncate':
      return armor(b.subarray(0, Math.floor(b.length * m.at)));
    case 'flip':
      for (const at of m.at) b[at % b.length]! ^= 1 << m.bit;
      return armor(b);
    case 'tag': {
      // first packet header, or any byte: a wrong tag where a packet starts or not
      const at = m.at % 3 === 0 ? 0 : m.at % b.length;
      b[at] = 0xc0 | m.tag;
      return armor(b);
    }
    case 'duplicate':
      return armor(Buffer.concat([b, b]));
    case 'append':
      return armor(Buffer.concat([b, Buffer.from(m.junk)]));
    case 'prepend-literal':
      return armor(Buffer.concat([literalPacket(Buffer.from('{"v":1}')), b]));
    case 'armor-char': {
      const a = armor(b);
      const at = m.at % a.length;
      return a.slice(0, at) + m.ch + a.slice(at + 1);
    }
    case 'armor-cut': {
      const a = armor(b);
      return a.slice(0, m.at % a.length);
    }
  }
}

/** A real envelope around a mutated real payload: the parser goes all the way to openpgp. */
export function pgpMail(corpus: PgpCorpus): fc.Arbitrary<HostileMail> {
  const indexes = corpus.payloads.map((_, i) => i);
  const common = indexes.filter((i) => !corpus.payloads[i]!.rare);
  const rare = indexes.filter((i) => corpus.payloads[i]!.rare);
  return fc
    .record({ which: fc.oneof({ arbitrary: fc.constantFrom(...common), weight: 12 }, { arbitrary: fc.constantFrom(...rare), weight: 1 }), m: mutation, from: fc.constantFrom(ALICE, ALICE, MALLORY, 'carol@example.test') })
    .map(({ which, m, from }) => {
      const p = corpus.payloads[which]!;
      const armored = mutate(p.binary, m).replace(/\r?\n/g, '\r\n');
      let raw = corpus.template.replace(corpus.templateArmor, () => `${armored}\r\n`);
      if (from !== ALICE) raw = raw.replace(`<${ALICE}>`, `<${from}>`);
      return hostile(`pgp(${p.label}, ${m.t}, from ${from})`, raw);
    });
}

/** Real, valid mails with one header changed: display names, Subject, Message-ID, our version header, our key header (and a legacy Autocrypt one). */
export function headerMutants(corpus: PgpCorpus): fc.Arbitrary<HostileMail> {
  return fc
    .record({
      which: fc.nat({ max: corpus.valid.length - 1 }),
      op: fc.constantFrom('display-name', 'subject', 'message-id', 'version-dup', 'version-odd', 'autocrypt', 'legacy-autocrypt', 'from-local', 'none', 'extra-header'),
      text: hostileText,
      version: versionValue,
    })
    .map(({ which, op, text, version }) => {
      let raw = corpus.valid[which]!.raw;
      const set = (re: RegExp, line: string): void => {
        raw = raw.replace(re, () => line);
      };
      switch (op) {
        case 'display-name':
          set(/^From: .*$/m, `From: "${text}" <${ALICE}>`);
          break;
        case 'subject':
          set(/^Subject: .*$/m, `Subject: ${text}`);
          break;
        case 'message-id':
          set(/^Message-ID: .*$/m, `Message-ID: <${text}@example.test>`);
          break;
        case 'version-dup':
          set(/^Peerdial-Version: 1$/m, `Peerdial-Version: 1\r\nPeerdial-Version: ${version}`);
          break;
        case 'version-odd':
          set(/^Peerdial-Version: 1$/m, `Peerdial-Version: ${version}`);
          break;
        case 'autocrypt':
          set(/^Peerdial-Key: addr=[^;]*;/m, `Peerdial-Key: addr=${text};`);
          break;
        case 'legacy-autocrypt':
          // as a peer on an older peerdial wrote it, with a hostile addr
          raw = raw.replace(/^Peerdial-Key: addr=[^;]*;/m, () => `Autocrypt: addr=${text};`);
          break;
        case 'from-local':
          set(/^From: .*$/m, `From: Alice <${text}@example.test>`);
          break;
        case 'extra-header':
          raw = `X-Hostile: ${text}\r\n${raw}`;
          break;
        default:
          break;
      }
      return hostile(`valid(${corpus.valid[which]!.label}, ${op})`, raw);
    });
}
