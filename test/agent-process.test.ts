/**
 * `peerdial agent` as the long-running process it is in real use: other
 * commands of the same account go through it instead of racing it for the
 * mailbox, a second agent is refused, and SIGTERM shuts it down cleanly
 * (a ringing call is declined, queued mail is sent, the process exits).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { BIN, introduce, makePeer, runCli, tempDir, waitFor, type Peer } from './harness/peers.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
const running: ChildProcess[] = [];

function agentProcess(peer: Peer): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, '--config', peer.configFile, 'agent'], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, out: () => out, exited: new Promise((r) => child.on('close', (c) => r(c))) };
}

beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice', 'hitoshi'] });
  dir = await tempDir('agentproc');
  alice = await makePeer(stack, 'alice', dir, { ringSeconds: 30 });
  hitoshi = await makePeer(stack, 'hitoshi', dir, { answer: 'auto-answer', ringSeconds: 30 });
  await introduce(alice, hitoshi);
}, 120_000);

afterAll(async () => {
  for (const c of running) if (c.exitCode === null) c.kill('SIGKILL');
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('commands beside a running agent', () => {
  it('peerdial send goes through alice\'s running agent; a second agent is refused', async () => {
    const ha = agentProcess(hitoshi);
    const aa = agentProcess(alice);
    try {
      await waitFor('agents up', () => ha.out().includes('mailbox connected') && aa.out().includes('mailbox connected'), 30_000);
      const second = await runCli(['--config', alice.configFile, 'agent']);
      expect(second.code).not.toBe(0);
      expect(second.stderr).toContain('already running');
      const file = path.join(dir, 'notes.bin');
      const data = randomBytes(2 * 1024 * 1024);
      await fs.writeFile(file, data);
      const r = await runCli(['--config', alice.configFile, 'send', 'hitoshi', file], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('using the running agent of alice@example.test');
      expect(r.stdout).toContain('sent notes.bin');
      const saved = path.join(hitoshi.downloadDir, 'notes.bin');
      await waitFor('saved', async () => (await fs.stat(saved).catch(() => undefined))?.size === data.length);
      expect(createHash('sha256').update(await fs.readFile(saved)).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
      // alice's agent sent the offer; the answer came to it and was handed to the send command
      expect(aa.out()).toMatch(/sent offer to hitoshi@example\.test/);
      expect(ha.out()).toMatch(/call \S+ from alice@example\.test: connected via/);
    } finally {
      aa.child.kill('SIGTERM');
      ha.child.kill('SIGTERM');
      expect(await aa.exited).toBe(0);
      expect(await ha.exited).toBe(0);
    }
  });

  it('SIGTERM while a call rings: the caller hears "declined", the agent flushes its outbox and exits', async () => {
    const acc = await hitoshi.open();
    await acc.contacts.update(alice.email, (c) => (c.answer = 'ring'));
    const ha = agentProcess(hitoshi);
    try {
      await waitFor('agent up', () => ha.out().includes('mailbox connected'), 30_000);
      const calling = runCli(['--config', alice.configFile, 'call', 'hitoshi'], { timeoutMs: 60_000 });
      await waitFor('ringing', () => ha.out().includes('is ringing'), 30_000);
      ha.child.kill('SIGTERM');
      expect(await ha.exited).toBe(0);
      expect(ha.out()).toContain('stopped');
      expect(ha.out()).toMatch(/sent decline to alice@example\.test/);
      expect((await acc.outbox.list()).length).toBe(0);
      const r = await calling;
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('declined');
      expect(r.stderr).toContain('the callee shut down');
    } finally {
      await acc.contacts.update(alice.email, (c) => delete c.answer);
      if (ha.child.exitCode === null) ha.child.kill('SIGKILL');
    }
  });

  it('a call rings at the agent; `peerdial answer` takes it, `peerdial decline` refuses the next one', async () => {
    const acc = await hitoshi.open();
    await acc.contacts.update(alice.email, (c) => (c.answer = 'ring'));
    const ha = agentProcess(hitoshi);
    try {
      await waitFor('agent up', () => ha.out().includes('mailbox connected'), 30_000);
      const nothing = await runCli(['--config', hitoshi.configFile, 'answer']);
      expect(nothing.code).not.toBe(0);
      expect(nothing.stderr).toContain('No call is ringing');
      // an id from another peer may start with "-": after "--" it is an id, not an option
      const dashed = await runCli(['--config', hitoshi.configFile, 'answer', '--', '-AbCdEfGhIjKlMnOp']);
      expect(dashed.code).not.toBe(0);
      expect(dashed.stderr).not.toContain('unknown option');
      expect(dashed.stderr).toContain('No call is ringing');

      const first = runCli(['--config', alice.configFile, 'call', 'hitoshi'], { timeoutMs: 60_000 });
      await waitFor('ringing', () => ha.out().includes('is ringing'), 30_000);
      const ringing = JSON.parse((await runCli(['--config', hitoshi.configFile, '--json', 'ringing'])).stdout) as { peer: string; callId: string }[];
      expect(ringing).toEqual([expect.objectContaining({ peer: alice.email })]);
      const answered = await runCli(['--config', hitoshi.configFile, 'answer', ringing[0]!.callId]);
      expect(answered.code, answered.stderr).toBe(0);
      const r1 = await first;
      expect(r1.code, r1.stderr).toBe(0);
      expect(r1.stderr).toContain('connected to hitoshi@example.test');

      const second = runCli(['--config', alice.configFile, 'call', 'hitoshi'], { timeoutMs: 60_000 });
      await waitFor('ringing again', () => (ha.out().match(/is ringing/g) ?? []).length >= 2, 30_000);
      const declined = await runCli(['--config', hitoshi.configFile, 'decline', '--text', 'in a meeting']);
      expect(declined.code, declined.stderr).toBe(0);
      const r2 = await second;
      expect(r2.code).toBe(2);
      expect(r2.stderr).toContain('declined the call (in a meeting)');
    } finally {
      await acc.contacts.update(alice.email, (c) => delete c.answer);
      ha.child.kill('SIGTERM');
      await ha.exited;
    }
  });

  it('`peerdial listen --pipe` beside a running agent: the agent hands the call to the terminal', async () => {
    const ha = agentProcess(hitoshi);
    try {
      await waitFor('agent up', () => ha.out().includes('mailbox connected'), 30_000);
      const listener = spawn(process.execPath, [BIN, '--config', hitoshi.configFile, 'listen', '--pipe'], { stdio: ['ignore', 'pipe', 'pipe'] });
      running.push(listener);
      let lout = '';
      let lerr = '';
      listener.stdout!.on('data', (d) => (lout += d));
      listener.stderr!.on('data', (d) => (lerr += d));
      const lexit = new Promise((r) => listener.on('close', r));
      await waitFor('listener ready', () => lerr.includes('hands the next call to this terminal') && lerr.includes('waiting for a call'), 30_000);
      const r = await runCli(['--config', alice.configFile, 'call', 'hitoshi', '--pipe'], { input: 'through the agent to the terminal\n', timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(await lexit).toBe(0);
      expect(lout).toBe('through the agent to the terminal\n');
      // the agent itself did not carry the call
      expect(ha.out()).not.toMatch(/pipe: \d+ bytes into/);
    } finally {
      ha.child.kill('SIGTERM');
      await ha.exited;
    }
  });
});
