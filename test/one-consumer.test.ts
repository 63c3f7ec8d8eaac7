/**
 * One consumer of the mailbox per account, on the real Dovecot + Postfix.
 *
 * Alice queues twenty messages for hitoshi and runs `peerdial outbox flush`
 * twice at once: every message reaches hitoshi exactly once.
 *
 * Then alice's agent runs. `peerdial inbox`, `messages`, `announce`,
 * `outbox flush` and `doctor` beside it go through its control socket: the
 * agent's log shows each request, Dovecot shows no IMAP login but the
 * agent's, and the commands print what they print without an agent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MailStack } from './harness/mail-stack.js';
import { BIN, mailboxSnapshot, runCli, waitFor, type Peer } from './harness/peers.js';
import { introducedPeers } from './harness/scene.js';
import { announce } from '../src/api/mail.js';
import { leaveMessage } from '../src/api/messages.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;

introducedPeers('one-consumer', { alice: {}, hitoshi: {} }, async (s) => {
  stack = s.stack;
  dir = s.dir;
  alice = s.peers.alice!;
  hitoshi = s.peers.hitoshi!;
  // first mails carry the keys: from here on everything between them is encrypted
  await announce(await hitoshi.open(), { to: ['alice'] });
  await announce(await alice.open(), { to: ['hitoshi'] });
  expect((await runCli(['--config', alice.configFile, 'inbox'])).code).toBe(0);
  expect((await runCli(['--config', hitoshi.configFile, 'inbox'])).code).toBe(0);
});

/** Message-IDs of the mail in a folder, with how often each is there. */
async function messageIds(name: string, folder = 'INBOX'): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const m of await mailboxSnapshot(stack, name, folder)) {
    const id = /^message-id:\s*(<[^>]+>)/im.exec(m.source)?.[1] ?? '';
    out.set(id, (out.get(id) ?? 0) + 1);
  }
  return out;
}

/** IMAP logins of a user so far, from Dovecot's log. */
async function imapLogins(name: string): Promise<number> {
  const user = stack.users[name]!.user;
  return (await stack.log()).split('\n').filter((l) => /imap-login: (Info: )?Login: /.test(l) && l.includes(`user=<${user}>`)).length;
}

describe('two processes drain one outbox', () => {
  it('alice queues twenty messages and runs `outbox flush` twice at once: hitoshi gets each exactly once', async () => {
    const acc = await alice.open();
    const queued: string[] = [];
    for (let i = 0; i < 20; i++) {
      const q = await acc.queue({ kind: 'message', to: hitoshi.email, text: `note ${i}`, ttlSeconds: 3600 });
      queued.push(q.messageId);
    }
    const before = await messageIds('hitoshi');
    await stack.holdDelivery();
    const [a, b] = await Promise.all([
      runCli(['--config', alice.configFile, '--json', 'outbox', 'flush']),
      runCli(['--config', alice.configFile, '--json', 'outbox', 'flush']),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const ra = JSON.parse(a.stdout) as { sent: number; deferred: number; failed: number };
    const rb = JSON.parse(b.stdout) as { sent: number; deferred: number; failed: number };
    expect(ra.sent + rb.sent).toBe(20);
    expect(ra.failed + rb.failed + ra.deferred + rb.deferred).toBe(0);
    expect(await acc.outbox.list()).toEqual([]);
    // everything submitted is delivered now: count what arrived
    await stack.releaseDelivery();
    const after = await messageIds('hitoshi');
    for (const id of queued) expect({ id, copies: (after.get(id) ?? 0) - (before.get(id) ?? 0) }).toEqual({ id, copies: 1 });
  }, 120_000);
});

describe("commands beside alice's running agent", () => {
  let agent: ChildProcess;
  let log = '';
  let exited: Promise<number | null>;
  let loginsBefore = 0;

  const requests = (name: string) => log.split('\n').filter((l) => l.startsWith('{') && JSON.parse(l).type === 'control-request' && JSON.parse(l).name === name).length;

  beforeAll(async () => {
    agent = spawn(process.execPath, [BIN, '--config', alice.configFile, 'agent', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    agent.stdout!.on('data', (d) => (log += d));
    agent.stderr!.on('data', (d) => (log += d));
    exited = new Promise<number | null>((r) => agent.on('close', (c) => r(c)));
    await waitFor("alice's agent connected", () => log.includes('"type":"connected","idle"'), 30_000);
    // from here on, the agent's login is the only one alice's mailbox may see
    await waitFor("the agent's login in Dovecot's log", async () => (await imapLogins('alice')) > 0);
    loginsBefore = await imapLogins('alice');
  }, 60_000);

  afterAll(async () => {
    if (agent && agent.exitCode === null) {
      agent.kill('SIGTERM');
      await exited;
    }
  });

  it("hitoshi announces; alice's `peerdial inbox` lists it through the agent, once", async () => {
    await announce(await hitoshi.open(), { to: ['alice'], addresses: [{ ip: '192.0.2.7', source: 'interface', scope: 'ipv4-public' }] });
    await waitFor("alice's agent handled hitoshi's announce", () => /"type":"message".*"kind":"announce".*"from":"hitoshi@/.test(log), 30_000);
    const r = await runCli(['--config', alice.configFile, 'inbox']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${hitoshi.email}  announce  192\\.0\\.2\\.7 \\(ipv4-public\\)  sent `, 'm'));
    expect(requests('inbox')).toBe(1);
    // asked once, told once
    const again = await runCli(['--config', alice.configFile, 'inbox']);
    expect(again.stdout).toMatch(/^Nothing new \(\d+ new mail\(s\) looked at by header, none of them peerdial's\)\.$/m);
    expect(requests('inbox')).toBe(2);
    expect(await imapLogins('alice')).toBe(loginsBefore);
  }, 60_000);

  it("hitoshi leaves a message; alice's `peerdial messages` asks the agent to check, and lists it", async () => {
    await leaveMessage(await hitoshi.open(), 'alice', { text: 'the camera is back up' });
    const r = await runCli(['--config', alice.configFile, 'messages']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${hitoshi.email}: the camera is back up`);
    expect(requests('check')).toBe(1);
    expect(await imapLogins('alice')).toBe(loginsBefore);
  }, 60_000);

  it('`peerdial announce` and `outbox flush` beside the agent: the agent queues and sends, hitoshi gets one copy', async () => {
    const before = await messageIds('hitoshi');
    const r = await runCli(['--config', alice.configFile, 'announce', 'hitoshi']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^announced .* to ${hitoshi.email}$`, 'm'));
    expect(requests('announce')).toBe(1);
    expect(log).toContain('"type":"sent","to":["hitoshi@');
    const flush = await runCli(['--config', alice.configFile, 'outbox', 'flush']);
    expect(flush.code, flush.stderr).toBe(0);
    expect(flush.stdout).toContain('sent 0, still queued 0, refused 0');
    expect(requests('outbox-flush')).toBe(1);
    const after = await waitFor('the announce at hitoshi', async () => {
      const now = await messageIds('hitoshi');
      return [...now].some(([id, n]) => n > (before.get(id) ?? 0)) ? now : undefined;
    }, 30_000);
    expect([...after].filter(([id, n]) => n > (before.get(id) ?? 0))).toHaveLength(1);
  }, 60_000);

  it("`peerdial doctor` beside the agent: the agent answers for the mailbox and times IDLE with its own watcher", async () => {
    const filedBefore = (await mailboxSnapshot(stack, 'alice', 'Peerdial')).length;
    const logins = await imapLogins('alice'); // this test's own look into the folder logged in too
    const r = await runCli(['--config', alice.configFile, 'doctor', '--timeout', '20', '--map-method', 'off'], { timeoutMs: 90_000 });
    expect(r.stdout).toContain(`[ok  ] IMAP login: the running agent (pid ${agent.pid}) is logged in as`);
    expect(r.stdout).toMatch(/\[ok {2}\] IMAP IDLE \(time from a sent mail to its notification\): IDLE supported; a mail to yourself was submitted, delivered and announced by IDLE in \d+ ms/);
    expect(requests('mailbox')).toBe(1);
    expect(requests('idle-timing')).toBe(1);
    expect(await imapLogins('alice')).toBe(logins);
    // the test mail was filed like the doctor files it, and never reached the phone
    expect((await mailboxSnapshot(stack, 'alice', 'Peerdial')).length).toBe(filedBefore + 1);
    expect(log).not.toContain('peerdial doctor: test of the mail path');
    expect(log).not.toMatch(/"type":"mail-rejected"[^\n]*"from":"alice@/);
  }, 120_000);

  it('the agent stops; `peerdial inbox` works alone again', async () => {
    agent.kill('SIGTERM');
    expect(await exited).toBe(0);
    const logins = await imapLogins('alice');
    const r = await runCli(['--config', alice.configFile, 'inbox']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Nothing new/m);
    expect(await imapLogins('alice')).toBe(logins + 1);
  }, 60_000);
});
