/**
 * Hostile From addresses on the real Postfix + Dovecot: mallory mails
 * hitoshi (who takes calls from everybody and answers them automatically)
 * signed offers whose sender is `a/../../../../x@evil.test` and other
 * addresses that would make a path if anything built one from them. His
 * agent refuses each one before anything acts on it: no call, no answer
 * mail, no file anywhere. Then alice makes an honest pipe call: what she
 * sends lands inside hitoshi's download directory, named from the call id,
 * private (0600 in a 0700 directory) though the process runs with umask 0.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import nodemailer from 'nodemailer';
import { MailComposer } from '../src/wire/nodemailer.js';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelNamed, type AgentEvent } from '../src/agent/agent.js';
import { runPipe } from '../src/carriers/pipe.js';
import { Session, shutdownSessions } from '../src/session/index.js';
import { buildKeyHeader } from '../src/wire/autocrypt.js';
import { AUTO_SUBMITTED_VALUE, HEADER_AUTO_SUBMITTED, HEADER_KEY, HEADER_VERSION, NEUTRAL_SUBJECT, PAYLOAD_FILENAME, PAYLOAD_MEDIA_TYPE } from '../src/wire/headers.js';
import type { Identity } from '../src/wire/identity.js';
import { agentOf, type RecordedAgent } from './harness/agents.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { introduce, makePeer, runCli, tempDir, waitFor, type Peer } from './harness/peers.js';
import { ensureMailServers } from './harness/system.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
let malloryKey: Identity;
let umask: number;

beforeAll(async () => {
  ensureMailServers();
  umask = process.umask(0);
  stack = await startMailStack({ users: ['alice', 'hitoshi', 'mallory'] });
  dir = await tempDir('hostile-from');
  alice = await makePeer(stack, 'alice', dir);
  hitoshi = await makePeer(stack, 'hitoshi', dir, { whoMayCall: 'everybody', answer: 'auto-answer', ringSeconds: 20 });
  const mallory = await makePeer(stack, 'mallory', dir);
  malloryKey = (await mallory.open()).identity;
  await introduce(alice, hitoshi);
}, 120_000);

afterAll(async () => {
  process.umask(umask);
  shutdownSessions();
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** A signed pipe offer from `from`, with a real SDP, sent through Postfix as mallory: built by hand, since buildMail refuses such a sender. */
async function forgedOffer(from: string): Promise<string> {
  const { session, sdp } = await Session.createOffer({ ice: { iceServers: [], bindAddress: '127.0.0.1' } });
  session.close('only its description is needed');
  const now = Date.now();
  const payload = {
    v: 1,
    kind: 'offer',
    from,
    to: hitoshi.email,
    callId: randomBytes(12).toString('base64url'),
    nonce: randomBytes(12).toString('base64url'),
    created: new Date(now).toISOString(),
    expires: new Date(now + 5 * 60_000).toISOString(),
    addresses: [],
    sdp,
    purpose: 'pipe',
  };
  const armored = await openpgp.sign({
    message: await openpgp.createMessage({ text: JSON.stringify(payload), format: 'utf8' }),
    signingKeys: malloryKey.privateKey,
    format: 'armored',
  });
  const messageId = `<${randomBytes(12).toString('hex')}@evil.test>`;
  const built = await new MailComposer({
    to: hitoshi.email,
    subject: NEUTRAL_SUBJECT,
    messageId,
    headers: {
      [HEADER_VERSION]: '1',
      [HEADER_AUTO_SUBMITTED]: AUTO_SUBMITTED_VALUE,
      [HEADER_KEY]: buildKeyHeader(from, malloryKey.publicKey),
    },
    text: 'a call',
    attachments: [{ filename: PAYLOAD_FILENAME, content: armored, contentType: PAYLOAD_MEDIA_TYPE, contentTransferEncoding: '7bit' }],
  })
    .compile()
    .build();
  // the From header as mallory writes it, not quoted the way nodemailer would quote it for an honest sender
  const raw = Buffer.concat([Buffer.from(`From: ${from}\r\n`), built]);
  // the hostile address really is in the header hitoshi's agent reads
  expect(raw.toString('utf8')).toContain(`From: ${from}\r\n`);
  await nodemailer.createTransport(stack.smtpConfig('mallory')).sendMail({ envelope: { from: 'mallory@example.test', to: [hitoshi.email] }, raw });
  return messageId;
}

/** Every entry under `top` (recursively) whose name mentions "evil". */
async function evilNames(top: string): Promise<string[]> {
  const all = await fs.readdir(top, { recursive: true }).catch(() => [] as string[]);
  return all.filter((e) => /evil/i.test(e));
}

describe('mallory mails hitoshi offers from addresses that would make a path', () => {
  const hostile = [
    'a/../../../../x@evil.test',
    '/tmp/x@evil.test',
    'a/b@evil.test',
    'A/../../X@Evil.Test',
    'x/../../../../../etc/cron.d/evil@evil.test',
  ];

  it('his agent refuses each before acting on it: no call, no answer, no file; all stays inside download_dir', async () => {
    let h: RecordedAgent | undefined;
    try {
      h = await agentOf(hitoshi);
      const events: AgentEvent[] = h.events;
      for (const from of hostile) await forgedOffer(from);
      const rejected = await waitFor(
        'hitoshi rejected every forged offer',
        () => {
          const r = events.filter((e): e is Extract<AgentEvent, { type: 'mail-rejected' }> => e.type === 'mail-rejected');
          return r.length >= hostile.length && r;
        },
        60_000,
      );
      for (const r of rejected) {
        expect(r.reason).toBe('malformed');
        expect(r.detail).toMatch(/field "from" is not a lower-case mail address|From does not name exactly one address/);
      }
      expect(events.filter((e) => e.type === 'ringing' || (e.type === 'connected' && 'call' in e) || e.type === 'carried')).toEqual([]);
      const account = await hitoshi.open();
      expect(await account.outbox.list()).toEqual([]); // no answer was queued for anybody
      expect(await fs.readdir(hitoshi.downloadDir).catch(() => [])).toEqual([]);
      expect(await evilNames(dir)).toEqual([]);
      expect(await evilNames(path.dirname(dir))).toEqual([]);
    } finally {
      await h?.agent.stop();
    }
  }, 120_000);
});

describe('alice makes an honest pipe call to hitoshi, whose agent takes it unattended', () => {
  it('the bytes land inside download_dir, named from the call id, 0600 in a 0700 directory, under umask 0', async () => {
    await fs.rm(hitoshi.downloadDir, { recursive: true, force: true }); // the agent makes it
    const h = await agentOf(hitoshi);
    const a = await agentOf(alice);
    try {
      const call = await a.agent.call('hitoshi', { purpose: 'pipe' });
      const ch = await call.session.openChannel('pipe');
      const sink = new Writable({ write: (_c, _e, cb) => cb() });
      await runPipe(ch, Readable.from([Buffer.from('hello from alice\n')]), sink);
      const carried = await waitFor('hitoshi kept the bytes', () =>
        h.events.find((e): e is Extract<AgentEvent, { type: 'carried' }> => e.type === 'carried' && e.what === 'pipe'),
      );
      const real = await fs.realpath(hitoshi.downloadDir);
      const file = /^\d+ bytes into (.+)$/.exec(carried.detail)?.[1];
      expect(file).toBeDefined();
      expect(path.dirname(file!)).toBe(real);
      expect(path.basename(file!)).toMatch(new RegExp(`^pipe-${call.callId}-[0-9T-]+Z\\.bin$`));
      expect(path.basename(file!)).not.toContain('alice');
      expect(await fs.readFile(file!, 'utf8')).toBe('hello from alice\n');
      expect((await fs.stat(file!)).mode & 0o777).toBe(0o600);
      expect((await fs.stat(real)).mode & 0o777).toBe(0o700);
      call.hangup();
      await call.ended;
    } finally {
      await a.agent.stop();
      await h.agent.stop();
    }
  }, 120_000);
});

describe('hitoshi types addresses the grammar refuses', () => {
  it('contacts add lh bob@localhost is refused at once with the reason; announce and call to it say the same, not "a bug in buildMail"', async () => {
    const cli = (...args: string[]) => runCli(['--config', hitoshi.configFile, ...args]);
    const add = await cli('contacts', 'add', 'lh', 'bob@localhost');
    expect(add.code).toBe(64);
    expect(add.stderr).toContain('"bob@localhost" is not an e-mail address peerdial accepts: "localhost" is a single-label domain, not an internet mail domain');
    expect((await cli('--json', 'contacts')).stdout).not.toContain('localhost');
    for (const args of [['announce', 'bob@localhost'], ['call', 'a/../../x@evil.test']]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(64);
      expect(r.stderr).toMatch(/is not an e-mail address peerdial accepts/);
      expect(r.stderr).not.toContain('buildMail');
    }
  }, 180_000);
});
