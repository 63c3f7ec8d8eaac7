/**
 * Hostile mail against a running agent (issue 10): hitoshi's agent runs as
 * its own process with a small V8 heap, and its resident memory is read
 * from /proc while mallory's compression bombs (116 KB, 927 KB and 3.7 MB
 * mails inflating ~1000-fold), a 30 MB mail, and the same bombs forged
 * "from alice" (so they pass the header screen and reach the capped
 * examiner) land in its INBOX. Mallory's are a stranger's: the first gets a
 * line of the log, the others are counted in the strangers' tally. Alice calls meanwhile and is connected. The
 * agent's peak RSS stays under 200 MB, it never restarts, every hostile
 * mail is reported once and left in INBOX untouched.
 *
 * Then the quarantine: the agent is killed (SIGKILL) while it examines a
 * mail; after the restart that mail is reported once as quarantined and
 * never parsed again.
 */
import { promises as fs } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ledger } from '../src/store/ledger.js';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { BIN, mailboxSnapshot, makePeer, runCli, tempDir, waitFor, type Peer } from './harness/peers.js';
import { bombMail, forgedOffer, hugeMail } from './harness/hostile.js';

const RSS_BOUND_KB = 200 * 1024;
const MB = 1000 * 1000;

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
let mallory: Peer;
let aliceFingerprint: string;
const running: ChildProcess[] = [];

interface AgentProcess {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
  /** Peak resident set size so far (kB), as the kernel counts it (VmHWM). */
  peakRssKb: () => Promise<number>;
}

async function statusField(pid: number, field: string): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

function agentProcess(peer: Peer, env: NodeJS.ProcessEnv = {}): AgentProcess {
  const child = spawn(process.execPath, ['--max-old-space-size=96', BIN, '--config', peer.configFile, 'agent'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  running.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return {
    child,
    out: () => out,
    exited: new Promise((r) => child.on('close', (c) => r(c))),
    peakRssKb: () => statusField(child.pid!, 'VmHWM'),
  };
}

/** waitFor, with what the agent said when it does not come. */
async function waitOn(agent: AgentProcess, what: string, fn: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  try {
    await waitFor(what, fn, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}\nthe agent said:\n${agent.out()}`);
  }
}

const count = (text: string, needle: string): number => text.split(needle).length - 1;
const messageIdOf = (raw: Buffer): string => /^Message-ID: (<[^>]+>)/im.exec(raw.toString('latin1'))![1]!;

beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice', 'hitoshi', 'mallory'] });
  dir = await tempDir('hostile');
  alice = await makePeer(stack, 'alice', dir, { ringSeconds: 60 });
  hitoshi = await makePeer(stack, 'hitoshi', dir, { answer: 'auto-answer', ringSeconds: 60 });
  mallory = await makePeer(stack, 'mallory', dir);
  // alice and hitoshi know each other's keys; mallory is a stranger to hitoshi
  const a = await alice.open();
  const h = await hitoshi.open();
  await a.contacts.add({ name: 'hitoshi', email: hitoshi.email });
  await a.contacts.pinKey(hitoshi.email, h.identity.armoredPublicKey, h.identity.fingerprint, 'manual');
  await h.contacts.add({ name: 'alice', email: alice.email });
  await h.contacts.pinKey(alice.email, a.identity.armoredPublicKey, a.identity.fingerprint, 'manual');
  aliceFingerprint = a.identity.fingerprint;
}, 120_000);

afterAll(async () => {
  for (const c of running) if (c.exitCode === null) c.kill('SIGKILL');
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('hitoshi\'s agent under hostile mail', () => {
  it('bombs and a 30 MB mail land in INBOX; the agent stays under 200 MB, reports each once, leaves them, and alice\'s call connects', async () => {
    const hostile: { what: string; raw: Buffer; reason: RegExp }[] = [];
    for (const size of [116_000, 927_000, 3_700_000]) {
      // a stranger's bomb costs a header fetch
      hostile.push({ what: `mallory's ${size} B bomb`, raw: (await bombMail(size, { from: mallory.email, to: hitoshi.email })).raw, reason: /mail from a stranger ignored: mallory@example\.test \(unknown-sender\)/ });
      // the same bomb "from alice", claiming her key: past the screen, into the capped examiner
      hostile.push({ what: `a ${size} B bomb forged from alice`, raw: (await bombMail(size, { from: alice.email, to: hitoshi.email, signer: aliceFingerprint })).raw, reason: /mail from alice@example\.test rejected: too-large: payload inflates to more than \d+ bytes/ });
    }
    hostile.push({ what: 'a 30 MB mail', raw: await hugeMail(30 * MB, { from: alice.email, to: hitoshi.email, signer: aliceFingerprint }), reason: /mail from alice@example\.test rejected: too-large: mail is 3\d{7} bytes, more than 8388608/ });

    const agent = agentProcess(hitoshi);
    try {
      await waitOn(agent, 'agent up', () => agent.out().includes('mailbox connected'), 60_000);
      const pid = agent.child.pid!;
      for (const h of hostile) await stack.deliverRaw('hitoshi', h.raw);
      const call = runCli(['--config', alice.configFile, 'call', 'hitoshi'], { timeoutMs: 120_000 });

      const tally = async () => (await (await hitoshi.open()).strangers.read())?.count ?? 0;
      // a stranger's mail: the first one gets a line, the others are counted (summarised after 15 min)
      await waitOn(agent, 'every hostile mail reported', async () => hostile.every((h) => h.reason.test(agent.out())) && (await tally()) === 3, 120_000);
      const r = await call;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('connected to hitoshi@example.test');

      // the same process all along, under the bound
      expect(agent.child.exitCode).toBe(null);
      expect(agent.child.pid).toBe(pid);
      expect(count(agent.out(), 'started (who may call')).toBe(1);
      const peak = await agent.peakRssKb();
      console.log(`hitoshi's agent: peak RSS ${Math.round(peak / 1024)} MB (VmHWM) after ${hostile.length} hostile mails`);
      expect(peak).toBeLessThan(RSS_BOUND_KB);

      // each reported once: mallory's three (one line, three counted), alice's forged three plus the 30 MB mail
      expect(count(agent.out(), 'mail from a stranger ignored')).toBe(1);
      expect((await (await hitoshi.open()).strangers.read())?.byReason).toEqual({ 'unknown-sender': 3 });
      expect(count(agent.out(), 'rejected: too-large')).toBe(4);

      // all of them still in INBOX, no flag set; none in the peerdial folder
      const inbox = await mailboxSnapshot(stack, 'hitoshi');
      for (const h of hostile) {
        const id = messageIdOf(h.raw);
        const there = inbox.filter((m) => m.source.includes(id));
        expect(there, h.what).toHaveLength(1);
        expect(there[0]!.flags, h.what).toEqual([]);
      }
      const filed = await mailboxSnapshot(stack, 'hitoshi', 'Peerdial');
      for (const h of hostile) expect(filed.some((m) => m.source.includes(messageIdOf(h.raw))), h.what).toBe(false);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  }, 400_000);

  it('killed while examining a mail, the agent quarantines it after the restart: reported once, never parsed again, left in INBOX', async () => {
    // a forgery "from alice" that would be rejected as key-mismatch if it were ever parsed
    const mallorysKey = (await mallory.open()).identity.privateKey;
    const raw = await forgedOffer({ from: alice.email, to: hitoshi.email, signer: mallorysKey });
    const id = messageIdOf(raw);
    const accountDir = (await hitoshi.open()).stateDir;
    // a fresh view of the ledger file each time (a Ledger reads its file once)
    const ledger = () => new Ledger(accountDir);

    // the examiner never finishes (test hook): the agent is killed while the mail is marked 'examining'
    const first = agentProcess(hitoshi, { PEERDIAL_TEST_EXAMINE_HANG: '1' });
    await waitOn(first, 'agent up', () => first.out().includes('mailbox connected'), 60_000);
    await stack.deliverRaw('hitoshi', raw);
    await waitOn(first, 'examining', async () => (await ledger().resultOf(id)) === 'examining', 60_000);
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe(null);

    const second = agentProcess(hitoshi);
    try {
      await waitOn(second, 'quarantined', () => second.out().includes(`rejected: quarantined: examining ${id} stopped the process once`), 60_000);
      expect(await ledger().resultOf(id)).toBe('quarantined');
    } finally {
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    }
    expect(count(second.out(), 'rejected: quarantined')).toBe(1);
    expect(second.out()).not.toContain('key-mismatch');

    // a third start: nothing more to say about it
    const third = agentProcess(hitoshi);
    try {
      await waitOn(third, 'agent up', () => third.out().includes('mailbox connected'), 60_000);
      // a mail delivered after it proves the agent has looked at the INBOX since
      await stack.deliverRaw('hitoshi', await forgedOffer({ from: mallory.email, to: hitoshi.email }));
      await waitOn(third, 'later mail seen', () => third.out().includes('mail from a stranger ignored: mallory@example.test (unknown-sender)'), 60_000);
    } finally {
      third.child.kill('SIGTERM');
      expect(await third.exited).toBe(0);
    }
    expect(third.out()).not.toContain('quarantined');
    expect(third.out()).not.toContain('key-mismatch');

    const inbox = await mailboxSnapshot(stack, 'hitoshi');
    const there = inbox.filter((m) => m.source.includes(id));
    expect(there).toHaveLength(1);
    expect(there[0]!.flags).toEqual([]);
  }, 300_000);
});
