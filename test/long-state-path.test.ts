/**
 * Alice and hitoshi have long home directories: STATE_DIR/accounts/ADDR/
 * agent.sock is longer than a Unix socket name may be (107 bytes on
 * Linux). Their agents serve the control socket on a short path instead;
 * `peerdial status` finds hitoshi's agent up with its mailbox connected,
 * and `peerdial send` goes through alice's agent to hitoshi's, which
 * answers. An agent that cannot serve its control socket at all exits
 * with CONTROL_SOCKET_FAILED instead of running where nobody reaches it.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { BIN, introduce, makePeer, runCli, tempDir, waitFor, type Peer } from './harness/peers.js';
import { accountStateDir } from '../src/store/paths.js';
import { controlSocketPaths } from '../src/agent/control.js';
import type { AgentHealth } from '../src/agent/health.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
let carol: Peer;
let shortDir: string;
const running: ChildProcess[] = [];

function agentProcess(peer: Peer): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, '--config', peer.configFile, 'agent'], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, out: () => out, exited: new Promise((r) => child.on('close', (c) => r(c))) };
}

const accountDir = (p: Peer) => accountStateDir(p.stateDir, p.email);

beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice', 'hitoshi', 'carol'] });
  // a home of ~60 characters: the natural socket path is well over 107 bytes
  dir = await tempDir(`longpath-${'h'.repeat(40)}`);
  alice = await makePeer(stack, 'alice', dir);
  hitoshi = await makePeer(stack, 'hitoshi', dir, { answer: 'auto-answer' });
  await introduce(alice, hitoshi);
  // carol's state dir is short: her socket's place is the natural one
  shortDir = await tempDir('sp');
  carol = await makePeer(stack, 'carol', shortDir);
}, 120_000);

afterAll(async () => {
  for (const c of running) if (c.exitCode === null) c.kill('SIGKILL');
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
  if (shortDir) await fs.rm(shortDir, { recursive: true, force: true });
});

describe('agents with a state dir too long for a socket name', () => {
  it('serve on a short path: status sees hitoshi\'s agent up, and a file goes through alice\'s agent to his', async () => {
    for (const p of [alice, hitoshi]) expect(Buffer.byteLength(path.join(accountDir(p), 'agent.sock'))).toBeGreaterThan(107);
    const ha = agentProcess(hitoshi);
    const aa = agentProcess(alice);
    try {
      await waitFor('agents up', () => ha.out().includes('mailbox connected') && aa.out().includes('mailbox connected'), 30_000);
      const where = controlSocketPaths(accountDir(hitoshi));
      expect(where.every((f) => !f.startsWith(accountDir(hitoshi)))).toBe(true);
      const served = [];
      for (const f of where) if ((await fs.lstat(f).catch(() => undefined))?.isSocket()) served.push(f);
      expect(served).toHaveLength(1);
      expect((await fs.lstat(served[0]!)).mode & 0o777).toBe(0o600);
      await expect(fs.access(path.join(accountDir(hitoshi), 'agent.sock'))).rejects.toThrow();

      const s = await runCli(['--config', hitoshi.configFile, 'status', '--json'], { timeoutMs: 20_000 });
      expect(s.code, s.stderr).toBe(0);
      const health = JSON.parse(s.stdout) as AgentHealth;
      expect(health).toMatchObject({ agentUp: true, pid: ha.child.pid, email: hitoshi.email, mailbox: 'connected' });

      const file = path.join(dir, 'notes.bin');
      const data = randomBytes(256 * 1024);
      await fs.writeFile(file, data);
      const r = await runCli(['--config', alice.configFile, 'send', 'hitoshi', file], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('using the running agent of alice@example.test');
      const saved = path.join(hitoshi.downloadDir, 'notes.bin');
      await waitFor('saved', async () => (await fs.stat(saved).catch(() => undefined))?.size === data.length);
      expect(createHash('sha256').update(await fs.readFile(saved)).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
      expect(ha.out()).toMatch(/call \S+ from alice@example\.test: connected via/);

      // a second agent of hitoshi's finds the first on the short path
      const second = await runCli(['--config', hitoshi.configFile, 'agent']);
      expect(second.code).not.toBe(0);
      expect(second.stderr).toContain('already running');
    } finally {
      aa.child.kill('SIGTERM');
      ha.child.kill('SIGTERM');
      expect(await aa.exited).toBe(0);
      expect(await ha.exited).toBe(0);
    }
    // stopped: the socket is gone, status says so
    expect((await runCli(['--config', hitoshi.configFile, 'status'])).code).toBe(3);
  }, 150_000);

  it('an agent that cannot serve its control socket exits with CONTROL_SOCKET_FAILED, not up and deaf', async () => {
    // a directory where the socket must go
    const places = controlSocketPaths(accountDir(carol));
    expect(places).toEqual([path.join(accountDir(carol), 'agent.sock')]);
    await fs.mkdir(places[0]!, { recursive: true });
    try {
      const r = await runCli(['--config', carol.configFile, 'agent'], { timeoutMs: 60_000 });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('[CONTROL_SOCKET_FAILED]');
      expect(r.stderr).toContain('cannot serve its control socket');
      expect(r.stderr).not.toContain('this is a bug');
      expect(r.stdout).not.toContain('started');
    } finally {
      await fs.rm(places[0]!, { recursive: true, force: true });
    }
    expect((await runCli(['--config', carol.configFile, 'status'])).code).toBe(3);
  }, 90_000);
});
