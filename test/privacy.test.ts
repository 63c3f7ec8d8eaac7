/**
 * Addresses and ICE credentials never travel in clear text unless the user
 * asks (`--plain`). alice has hitoshi's key (they exchanged keys); carol is
 * in her address book, but without a key. Everything goes through a real
 * Postfix and Dovecot, and the mails are checked as they arrive: what
 * anybody without the keys (both providers) can read, MIME and OpenPGP
 * armour undone, holds no IP address and no ice-ufrag / ice-pwd.
 */
import { promises as fs } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simpleParser } from 'mailparser';
import * as openpgp from 'openpgp';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { introduce, introduceWithoutKeys, mailboxSnapshot, makePeer, runCli, tempDir, waitFor, type Peer } from './harness/peers.js';
import { agentOf } from './harness/agents.js';
import { announce } from '../src/api/mail.js';
import { OutboxLoop } from '../src/agent/mailbox.js';
import { isPeerdialError } from '../src/errors.js';
import type { DetectedAddress } from '../src/address/interfaces.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
let carol: Peer;

const ADDRS = [
  { ip: '198.51.100.23', source: 'interface' as const, scope: 'documentation' },
  { ip: '2001:db8::23', source: 'interface' as const, scope: 'documentation' },
];
const UFRAG = 'Qx7uFragAlice';
const PWD = 'pwdAliceSecretIcePassword01';
const SDP = [
  'v=0',
  'o=- 4611 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  'c=IN IP4 0.0.0.0',
  `a=ice-ufrag:${UFRAG}`,
  `a=ice-pwd:${PWD}`,
  'a=candidate:1 1 UDP 2122317823 198.51.100.23 50123 typ host',
  'a=candidate:2 1 UDP 2122317823 2001:db8::23 50124 typ host',
  '',
].join('\r\n');
const SECRETS = ['198.51.100.23', '2001:db8::23', UFRAG, PWD];

/** What a mail provider can read of a raw mail: the text, its decoded parts, and OpenPGP messages that are not encrypted. */
async function readableWithoutKeys(raw: string): Promise<string> {
  const parsed = await simpleParser(raw);
  const parts = [raw, parsed.text ?? '', ...parsed.attachments.map((a) => a.content.toString('utf8'))];
  for (const armored of raw.match(/-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/g) ?? []) {
    const msg = await openpgp.readMessage({ armoredMessage: armored.replace(/\r\n/g, '\n') });
    if (msg.getEncryptionKeyIDs().length === 0) parts.push(String(await msg.getText()));
    else parts.push('(encrypted)');
  }
  return parts.join('\n');
}

async function arrived(name: string, n: number): Promise<string[]> {
  const mails = await waitFor(`${n} mail(s) at ${name}'s`, async () => {
    const m = await mailboxSnapshot(stack, name);
    return m.length >= n && m;
  }, 30_000);
  return mails.map((m) => m.source);
}

beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice', 'hitoshi', 'carol'] });
  dir = await tempDir('privacy');
  alice = await makePeer(stack, 'alice', dir);
  hitoshi = await makePeer(stack, 'hitoshi', dir);
  carol = await makePeer(stack, 'carol', dir);
  await introduce(alice, hitoshi);
  await introduceWithoutKeys(alice, carol);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('alice writes to carol, whose key she does not have', () => {
  it('`peerdial announce carol` and `peerdial call carol` are refused; the hint names invite, --key and --plain; nothing is mailed', async () => {
    const ann = await runCli(['--config', alice.configFile, 'announce', 'carol']);
    expect(ann.code).toBe(1);
    expect(ann.stderr).toContain('[CONTACT_KEY_MISSING]');
    expect(ann.stderr).toContain('in clear text');
    expect(ann.stderr).toContain('peerdial invite');
    expect(ann.stderr).toContain('--key');
    expect(ann.stderr).toContain('--plain');
    const call = await runCli(['--config', alice.configFile, 'call', 'carol', '--ring-seconds', '5'], { timeoutMs: 60_000 });
    expect(call.code).toBe(1);
    expect(call.stderr).toContain('[CONTACT_KEY_MISSING]');
    expect(call.stderr).toContain('ICE credentials');
    expect((await (await alice.open()).outbox.list()).length).toBe(0);
    expect(await mailboxSnapshot(stack, 'carol')).toEqual([]);
  }, 120_000);

  it('an offer queued for her without --plain is refused too; with plain (she asked) the same offer arrives readable', async () => {
    const acc = await alice.open();
    const err = await acc.queue({ kind: 'offer', to: carol.email, sdp: SDP, addresses: ADDRS, purpose: 'chat' }).catch((e) => e);
    expect(isPeerdialError(err, 'CONTACT_KEY_MISSING')).toBe(true);
    expect((await acc.outbox.list()).length).toBe(0);
    await acc.queue({ kind: 'offer', to: carol.email, sdp: SDP, addresses: ADDRS, purpose: 'chat', plain: true });
    expect((await new OutboxLoop(acc).drainOnce({ force: true })).sent).toBe(1);
    const [raw] = await arrived('carol', 1);
    // the check below can fail: this mail, sent in clear on request, shows everything
    const readable = await readableWithoutKeys(raw!);
    for (const s of SECRETS) expect(readable).toContain(s);
  });

  it('`peerdial announce carol --plain` sends it, because she asked', async () => {
    const r = await runCli(['--config', alice.configFile, '--json', 'announce', 'carol', '--plain']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).queued.map((q: { to: string }) => q.to)).toEqual([carol.email]);
    await arrived('carol', 2);
  });
});

describe('alice writes to hitoshi, whose key she has', () => {
  it('the announce and the offer arrive with no address and no ICE credential readable by the providers', async () => {
    const acc = await alice.open();
    const a = await announce(acc, { to: ['hitoshi'], addresses: ADDRS });
    expect(a.drain?.sent).toBe(1);
    await acc.queue({ kind: 'offer', to: hitoshi.email, sdp: SDP, addresses: ADDRS, purpose: 'chat' });
    expect((await new OutboxLoop(acc).drainOnce({ force: true })).sent).toBe(1);
    const mails = await arrived('hitoshi', 2);
    for (const raw of mails) {
      const readable = await readableWithoutKeys(raw);
      expect(readable).toContain('(encrypted)');
      for (const s of SECRETS) expect(readable).not.toContain(s);
      expect(readable).not.toMatch(/ice-ufrag|ice-pwd|a=candidate/);
    }
  });
});

describe("alice's agent, when her address changes", () => {
  it('announces to hitoshi only; carol is skipped, and the reason is given once', async () => {
    const before = (await mailboxSnapshot(stack, 'carol')).length;
    const hitoshiBefore = (await mailboxSnapshot(stack, 'hitoshi')).length;
    const addr = (ip: string): DetectedAddress => ({ ip, family: ip.includes(':') ? 6 : 4, interface: 'eth0', scope: 'documentation', meaning: '', source: 'interface' });
    let current = [addr('203.0.113.10')];
    const a = await agentOf(alice, { addressWatch: { read: () => current, monitor: null, fallbackMs: 200, debounceMs: 10 } });
    try {
      current = [addr('203.0.113.77')];
      const first = await waitFor('first change', () => a.events.find((e) => e.type === 'address-changed'));
      expect(first).toMatchObject({ addresses: ['203.0.113.77'], announcedTo: [hitoshi.email], notAnnounced: [carol.email] });
      current = [addr('203.0.113.78')];
      const second = await waitFor('second change', () => a.events.filter((e) => e.type === 'address-changed')[1]);
      expect(second).toMatchObject({ addresses: ['203.0.113.78'], announcedTo: [hitoshi.email] });
      expect(second).not.toHaveProperty('notAnnounced');
      await arrived('hitoshi', hitoshiBefore + 2);
    } finally {
      await a.agent.stop();
    }
    // the agent flushed its outbox when it stopped: nothing went to carol
    expect((await mailboxSnapshot(stack, 'carol')).length).toBe(before);
  });
});
