/**
 * Terminal escapes from anyone, on the real mail stack: mallory (a
 * stranger) and alice (a contact) send mails whose headers (From display
 * name and local part, Subject, Message-ID, Peerdial-Version, Peerdial-Key)
 * and payload fields (message text, text that is not JSON, so that the
 * library's error quotes it) carry `ESC]0;pwned BEL`, `ESC[31m`, the
 * one-byte CSI 0x9b, bidi overrides and newlines. Hitoshi runs the real
 * CLI: `inbox` (text and --json), `log`, `messages`, `agent --once` and the
 * running agent. None of their stdout/stderr bytes carries ESC, BEL, 0x9b
 * or U+202E; the hostile text is there, escaped, so it was read and shown.
 * Strangers' mail is one summary line and never a row of the call log.
 */
import { promises as fs } from 'node:fs';
import { spawn } from 'node:child_process';
import nodemailer from 'nodemailer';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { BIN, introduce, makePeer, runCli, tempDir, waitFor, type Peer } from './harness/peers.js';
import { createHash } from 'node:crypto';
import { agentOf } from './harness/agents.js';
import { announce } from '../src/api/mail.js';
import { encodeControl } from '../src/carriers/frames.js';
import { buildMail } from '../src/wire/build.js';
import { generateIdentity, type Identity } from '../src/wire/identity.js';
import type { PeerdialMessage } from '../src/wire/message.js';

/** Everything an attacker would like to reach hitoshi's terminal. */
const EVIL = '\x1b]0;pwned\x07\x1b[31m\u009b2J\u202etxt.exe\u202c\r\n2026-12-01T00:00:00.000Z call from boss: connected';
/** The same on one line, so that the header around it still parses. */
const EVIL_LINE = EVIL.replace('\r\n', ' ');
/** ...and folded: the newline is part of the header. */
const EVIL_FOLDED = EVIL.replace('\r\n', '\r\n ');
/** What may carry a payload's text (no C0 there: the schema refuses it), still hostile. */
const EVIL_TEXT = 'see \u009b31mred\u009b0m and \u202eexe.txt\u202c \u2066isolated\u2069\nsecond line';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
let mallory: Identity;
let aliceId: Identity;

/** The raw bytes of one CLI run's output carry nothing a terminal would act on. */
function assertInert(what: string, out: Buffer): void {
  expect(out.includes(0x1b), `${what}: ESC reached the output:\n${out.toString('latin1')}`).toBe(false);
  expect(out.includes(0x07), `${what}: BEL reached the output`).toBe(false);
  expect(out.includes(0x9b), `${what}: a 0x9b byte reached the output`).toBe(false);
  const text = out.toString('utf8');
  expect(text.includes('\u009b'), `${what}: U+009B reached the output`).toBe(false);
  expect(text.includes('\u202e'), `${what}: U+202E reached the output`).toBe(false);
  expect(text.includes('\u2066'), `${what}: U+2066 reached the output`).toBe(false);
  expect(text.includes('\r'), `${what}: CR reached the output`).toBe(false);
  // the forged second line never starts a line of its own
  expect(/^2026-12-01T00:00:00\.000Z call from boss/m.test(text), `${what}: a forged log line`).toBe(false);
}

interface RawRun {
  code: number | null;
  stdout: Buffer;
  stderr: Buffer;
}

/** The real CLI, keeping stdout and stderr as bytes. */
function cliBytes(args: string[]): Promise<RawRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err) }));
  });
}

function payload(from: Identity, kind: PeerdialMessage['kind'], extra: Partial<PeerdialMessage> = {}): PeerdialMessage {
  const now = Date.now();
  return {
    v: 1,
    kind,
    from: from.email,
    to: hitoshi.email,
    callId: `c${Math.random().toString(36).slice(2)}xxxxxxxxxxxxxxxx`,
    created: new Date(now).toISOString(),
    expires: new Date(now + 3600_000).toISOString(),
    nonce: `n${Math.random().toString(36).slice(2)}xxxxxxxxxxxxxxxx`,
    addresses: kind === 'announce' ? [{ ip: '203.0.113.9', source: 'interface', scope: 'public' }] : [],
    ...extra,
  };
}

/** A genuine mail, then one header line replaced by raw bytes (the signature covers the payload only). */
async function mailWith(from: Identity, msg: PeerdialMessage, header: { name: string; value: string } | undefined, encryptTo?: openpgp.PublicKey): Promise<Buffer> {
  const built = await buildMail(msg, { sender: from, date: new Date(), fromName: from === mallory ? 'Mallory' : 'Alice', ...(encryptTo ? { recipientKey: encryptTo } : {}) });
  let raw = built.raw.toString('latin1');
  if (header) {
    const bytes = Buffer.from(header.value, 'utf8').toString('latin1');
    const re = new RegExp(`^${header.name}: .*(\\r\\n[ \\t].*)*$`, 'm');
    raw = re.test(raw) ? raw.replace(re, () => `${header.name}: ${bytes}`) : `${header.name}: ${bytes}\r\n${raw}`;
  }
  return Buffer.from(raw, 'latin1');
}

/** Alice's envelope around a signed payload whose text is not JSON: the parser quotes the library's error. */
async function notJsonFromAlice(): Promise<Buffer> {
  const good = await mailWith(aliceId, payload(aliceId, 'announce'), undefined);
  const signed = await openpgp.sign({ message: await openpgp.createMessage({ text: `${EVIL} is not json` }), signingKeys: aliceId.privateKey, format: 'armored' });
  const raw = good.toString('latin1').replace(/-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/, () => (signed as string).trim().replace(/\r?\n/g, '\r\n'));
  return Buffer.from(raw, 'latin1');
}

async function sendBySmtp(user: string, to: string, raw: Buffer): Promise<void> {
  const transport = nodemailer.createTransport(stack.smtpConfig(user));
  try {
    await transport.sendMail({ envelope: { from: `${user}@example.test`, to }, raw });
  } finally {
    transport.close();
  }
}

beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice', 'hitoshi', 'mallory'] });
  dir = await tempDir('escapes');
  alice = await makePeer(stack, 'alice', dir);
  hitoshi = await makePeer(stack, 'hitoshi', dir);
  await introduce(alice, hitoshi);
  aliceId = (await alice.open()).identity;
  mallory = await generateIdentity('mallory@example.test', 'Mallory');
  // alice's first mail pins her key at hitoshi's
  await announce(await alice.open(), { to: ['hitoshi'] });
  const first = await runCli(['--config', hitoshi.configFile, 'inbox']);
  expect(first.code, first.stderr).toBe(0);
  expect(first.stdout).toContain(`${alice.email}  announce`);
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** Stranger's mails: every header we read or a mail program shows, hostile. */
async function strangersMails(): Promise<Buffer[]> {
  const offer = (): PeerdialMessage => payload(mallory, 'message', { text: EVIL_TEXT });
  return [
    await mailWith(mallory, offer(), { name: 'From', value: `"${EVIL_LINE}" <mal\x1b[31mlory\u202e@example.test>` }),
    await mailWith(mallory, offer(), { name: 'From', value: `=?utf-8?B?${Buffer.from(EVIL).toString('base64')}?= <mallory@example.test>` }),
    await mailWith(mallory, offer(), { name: 'Subject', value: EVIL_FOLDED }),
    await mailWith(mallory, offer(), { name: 'Message-ID', value: `<${Math.random().toString(36).slice(2)}${EVIL}@example.test>` }),
    await mailWith(mallory, offer(), { name: 'Peerdial-Version', value: EVIL }),
    await mailWith(mallory, offer(), { name: 'Peerdial-Key', value: `addr=${EVIL}; keydata=${EVIL}` }),
  ];
}

/** A contact's mails: verified ones with hostile text, and rejected ones whose details quote hostile bytes. */
async function contactsMails(): Promise<Buffer[]> {
  const hitoshiKey = (await hitoshi.open()).identity.publicKey;
  return [
    await mailWith(aliceId, payload(aliceId, 'message', { text: EVIL_TEXT }), { name: 'Subject', value: EVIL }, hitoshiKey),
    await mailWith(aliceId, payload(aliceId, 'message', { text: `${EVIL_TEXT} (2)` }), { name: 'From', value: `"${EVIL_FOLDED}" <${alice.email}>` }, hitoshiKey),
    await mailWith(aliceId, payload(aliceId, 'announce'), { name: 'Peerdial-Version', value: EVIL }),
    await mailWith(aliceId, payload(aliceId, 'announce'), { name: 'Peerdial-Key', value: `addr=${alice.email}; keydata=${Buffer.from(EVIL).toString('base64')}` }),
    await notJsonFromAlice(),
  ];
}

describe('escape sequences in every header and field that is ever printed', () => {
  it('peerdial inbox, log, messages and agent --once print them escaped, never raw; strangers are one summary line', async () => {
    const strangers = await strangersMails();
    await sendBySmtp('mallory', hitoshi.email, strangers[0]!);
    for (const raw of strangers.slice(1)) await stack.deliverRaw('hitoshi', raw);
    for (const raw of await contactsMails()) await stack.deliverRaw('hitoshi', raw);
    // the SMTP one has arrived when Dovecot has it
    await waitFor('mallory\'s mail through Postfix', async () => (await fs.readdir(`${stack.users.hitoshi!.maildir}/new`).catch(() => [])).length + (await fs.readdir(`${stack.users.hitoshi!.maildir}/cur`).catch(() => [])).length >= 11);

    const inbox = await cliBytes(['--config', hitoshi.configFile, 'inbox']);
    expect(inbox.code, inbox.stderr.toString()).toBe(0);
    assertInert('inbox stdout', inbox.stdout);
    assertInert('inbox stderr', inbox.stderr);
    const text = inbox.stdout.toString('utf8');
    // a contact's rejections are listed with their (escaped) details...
    expect(text).toContain('REJECTED: unsupported-version: Peerdial-Version is "\\x1b]0;pwned\\x07');
    expect(text).toMatch(/REJECTED: malformed: payload is not JSON \(.*\\x1b\]0;pwned\\x07/);
    // ...her verified messages too...
    expect(text.match(new RegExp(`${alice.email}  message`, 'g'))?.length).toBe(2);
    // ...and the strangers' six mails are one line
    expect(text).toMatch(/6 mails from strangers ignored \(last: .*\); left in INBOX, untouched/);
    expect(text).not.toMatch(/mallory.*REJECTED/);

    const json = await cliBytes(['--config', hitoshi.configFile, '--json', 'log']);
    assertInert('log --json', json.stdout);
    expect((JSON.parse(json.stdout.toString('utf8')) as { outcome: string }[]).some((e) => e.outcome === 'rejected')).toBe(false);

    const log = await cliBytes(['--config', hitoshi.configFile, 'log']);
    expect(log.code, log.stderr.toString()).toBe(0);
    assertInert('log stdout', log.stdout);
    assertInert('log stderr', log.stderr);
    expect(log.stdout.toString('utf8')).toMatch(/6 mails from strangers ignored since .* \(last: /);
    // the call log holds calls: no row for any rejected mail
    expect(log.stdout.toString('utf8')).not.toMatch(/\brejected\b/);

    const messages = await cliBytes(['--config', hitoshi.configFile, 'messages', '--no-check']);
    expect(messages.code, messages.stderr.toString()).toBe(0);
    assertInert('messages stdout', messages.stdout);
    assertInert('messages stderr', messages.stderr);
    expect(messages.stdout.toString('utf8')).toContain(`${alice.email}: see \\x9b31mred\\x9b0m and \\u{202e}exe.txt\\u{202c} \\u{2066}isolated\\u{2069}\\nsecond line`);

    const messagesJson = await cliBytes(['--config', hitoshi.configFile, '--json', 'messages', '--no-check']);
    assertInert('messages --json', messagesJson.stdout);
    // JSON stays lossless: the escapes are JSON's own
    expect((JSON.parse(messagesJson.stdout.toString('utf8')) as { text?: string }[]).map((m) => m.text)).toContain(EVIL_TEXT);

    // more of the same arrive; `agent --once` and `inbox --json` read them
    for (const raw of await strangersMails()) await stack.deliverRaw('hitoshi', raw);
    for (const raw of await contactsMails()) await stack.deliverRaw('hitoshi', raw);
    const once = await cliBytes(['--config', hitoshi.configFile, 'agent', '--once']);
    expect(once.code, once.stderr.toString()).toBe(0);
    assertInert('agent --once stdout', once.stdout);
    assertInert('agent --once stderr', once.stderr);
    expect(once.stdout.toString('utf8')).toContain('11 peerdial mail(s)');
    expect(once.stdout.toString('utf8')).toMatch(/^6 mails from strangers ignored \(last: /m);
    expect(once.stdout.toString('utf8')).toContain(`${alice.email} rejected: unsupported-version`);
  });

  it('the running agent logs them escaped; strangers get one line, then a count', async () => {
    const agent = spawn(process.execPath, [BIN, '--config', hitoshi.configFile, 'agent'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    agent.stdout.on('data', (d: Buffer) => out.push(d));
    agent.stderr.on('data', (d: Buffer) => err.push(d));
    const closed = new Promise<number | null>((r) => agent.on('close', r));
    try {
      await waitFor('the agent started', () => Buffer.concat(out).toString().includes('started'), 60_000);
      const strangers = await strangersMails();
      await sendBySmtp('mallory', hitoshi.email, strangers[0]!);
      for (const raw of strangers.slice(1)) await stack.deliverRaw('hitoshi', raw);
      for (const raw of await contactsMails()) await stack.deliverRaw('hitoshi', raw);
      await waitFor('the agent read all of them', () => {
        const s = Buffer.concat(out).toString('utf8');
        return (s.match(/message from alice@example\.test/g)?.length ?? 0) >= 2 && s.includes('payload is not JSON') && s.includes('mail from a stranger ignored');
      }, 60_000);
    } finally {
      agent.kill('SIGTERM');
    }
    expect(await closed).toBe(0);
    const stdout = Buffer.concat(out);
    assertInert('agent stdout', stdout);
    assertInert('agent stderr', Buffer.concat(err));
    const text = stdout.toString('utf8');
    expect(text).toContain('message from alice@example.test: see \\x9b31mred');
    expect(text).toContain('rejected: unsupported-version: Peerdial-Version is "\\x1b]0;pwned\\x07');
    // one line for the first stranger's mail, the other five counted and summarised when the agent stops
    expect(text.match(/mail from a stranger ignored/g)?.length).toBe(1);
    expect(text).toMatch(/5 mails from strangers ignored since .* \(last: /);
    expect(text).not.toMatch(/mail from mal.*rejected/);
  }, 120_000);

  it('a chat line and file names from a peer reach `peerdial listen`\'s terminal escaped', async () => {
    const a = await agentOf(alice);
    try {
      // a chat line
      const chatListener = spawn(process.execPath, [BIN, '--config', hitoshi.configFile, 'listen'], { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      chatListener.stdout.on('data', (d: Buffer) => out.push(d));
      chatListener.stderr.on('data', (d: Buffer) => err.push(d));
      const chatClosed = new Promise<number | null>((r) => chatListener.on('close', r));
      await waitFor('listener waiting', () => Buffer.concat(err).toString().includes('waiting for a call'), 60_000);
      const call = await a.agent.call('hitoshi', { purpose: 'chat' });
      const chat = await call.session.openChannel('chat');
      await chat.send(JSON.stringify({ t: 'chat', text: EVIL }));
      await chat.send(JSON.stringify({ t: 'chat', text: `${EVIL_LINE}\tend` }));
      await waitFor('both lines shown', () => (Buffer.concat(out).toString().match(/alice@example\.test: /g)?.length ?? 0) >= 2, 30_000);
      await chat.send(JSON.stringify({ t: 'bye' }));
      call.hangup();
      chatListener.stdin.end();
      expect(await chatClosed).toBe(0);
      assertInert('listen (chat) stdout', Buffer.concat(out));
      assertInert('listen (chat) stderr', Buffer.concat(err));
      expect(Buffer.concat(out).toString('utf8')).toContain('alice@example.test: \\x1b]0;pwned\\x07\\x1b[31m\\x9b2J\\u{202e}txt.exe\\u{202c}\\r\\n2026-12-01');

      // file names: one with escapes (refused, and the refusal names it), one with a bidi override (shown escaped)
      const fileOut: Buffer[] = [];
      const fileErr: Buffer[] = [];
      const fileListener = spawn(process.execPath, [BIN, '--config', hitoshi.configFile, 'listen', '--dir', hitoshi.downloadDir], { stdio: ['ignore', 'pipe', 'pipe'] });
      fileListener.stdout.on('data', (d: Buffer) => fileOut.push(d));
      fileListener.stderr.on('data', (d: Buffer) => fileErr.push(d));
      const fileClosed = new Promise<number | null>((r) => fileListener.on('close', r));
      await waitFor('listener waiting', () => Buffer.concat(fileErr).toString().includes('waiting for a call'), 60_000);
      const fcall = await a.agent.call('hitoshi', { purpose: 'file' });
      const files = await fcall.session.openChannel('file');
      const replies: string[] = [];
      files.onMessage((m) => replies.push(Buffer.isBuffer(m) ? m.subarray(1).toString('utf8') : String(m)));
      const sha = createHash('sha256').update('abc').digest('hex');
      await files.send(encodeControl({ t: 'offer', name: `${EVIL_LINE}.txt`, size: 3, sha256: sha }));
      await waitFor('the offer is refused', () => replies.some((r) => r.includes('"reject"')), 30_000);
      await files.send(encodeControl({ t: 'end' }));
      expect(await fileClosed, Buffer.concat(fileErr).toString()).toBe(0);
      fcall.hangup();
      const fileStdout = Buffer.concat(fileOut);
      assertInert('listen (file) stdout', fileStdout);
      assertInert('listen (file) stderr', Buffer.concat(fileErr));
      expect(fileStdout.toString('utf8')).toContain('refused \\x1b]0;pwned\\x07');
      // what came back to the sender is sanitised by the sender's decoder too
      expect(replies.join('\n')).toContain('unsafe file name');
    } finally {
      await a.agent.stop();
    }
  }, 240_000);
});
