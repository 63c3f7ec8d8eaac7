/**
 * `peerdial status` asks the running agent how it is. Alice runs her
 * agent on the real Dovecot + Postfix; her IMAP server stops, and
 * `peerdial status` says "disconnected" when the connection drops, without
 * waiting for the re-check (idle_seconds is the maximum, so no re-check
 * happens during the test); the server comes back, and it says "connected" again.
 */
import { promises as fs } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { BIN, makePeer, runCli, tempDir, waitFor, type Peer } from './harness/peers.js';
import type { AgentHealth } from '../src/agent/health.js';

/** The longest allowed: IDLE is never re-issued during the test, so only the dropped connection can show "disconnected". */
const IDLE_SECONDS = 1740;

let stack: MailStack;
let dir: string;
let alice: Peer;
let agent: ChildProcess | undefined;

beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice'] });
  dir = await tempDir('status');
  alice = await makePeer(stack, 'alice', dir);
  const cfg = await fs.readFile(alice.configFile, 'utf8');
  expect(cfg).toMatch(/^idle_seconds = \d+$/m);
  await fs.writeFile(alice.configFile, cfg.replace(/^idle_seconds = \d+$/m, `idle_seconds = ${IDLE_SECONDS}`));
}, 120_000);

afterAll(async () => {
  if (agent && agent.exitCode === null) agent.kill('SIGKILL');
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function status(): Promise<{ code: number | null; health: AgentHealth | { agentUp: false } }> {
  const r = await runCli(['--config', alice.configFile, 'status', '--json'], { timeoutMs: 20_000 });
  return { code: r.code, health: JSON.parse(r.stdout) };
}

describe('peerdial status', () => {
  it('no agent: exit 3 and how to start one', async () => {
    const r = await runCli(['--config', alice.configFile, 'status']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('agent not running (start it: peerdial agent, or peerdial service install)');
    expect(await status()).toEqual({ code: 3, health: { agentUp: false } });
  });

  it('alice\'s IMAP server stops: status says disconnected when the connection drops (no re-check needed), then connected again once it is back', async () => {
    agent = spawn(process.execPath, [BIN, '--config', alice.configFile, 'agent', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    agent.stdout!.on('data', (d) => (out += d));
    agent.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => agent!.on('close', (c) => r(c)));
    try {
      await waitFor('agent connected', () => out.includes('"type":"connected","idle"'), 30_000);
      // JSON log lines: one object per line
      for (const line of out.split('\n').filter((l) => l.startsWith('{'))) expect(() => JSON.parse(line)).not.toThrow();

      const up = await waitFor('a first check', async () => {
        const s = await status();
        return s.code === 0 && 'lastCheck' in s.health && s.health.lastCheck ? s.health : undefined;
      });
      expect(up).toMatchObject({ agentUp: true, pid: agent.pid, email: alice.email, mailbox: 'connected', idle: true, outboxLength: 0, activeCalls: 0 });
      expect(Date.parse(up.startedAt)).toBeLessThanOrEqual(Date.now());
      const text = await runCli(['--config', alice.configFile, 'status']);
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(/mailbox:\s+connected \(IDLE alive\)/);
      expect(text.stdout).toMatch(/outbox:\s+0 mail\(s\) waiting/);

      await stack.stopImap();
      const stoppedAt = Date.now();
      const down = await waitFor('status: disconnected', async () => {
        const s = await status();
        return 'mailbox' in s.health && s.health.mailbox === 'disconnected' ? s.health : undefined;
      }, 60_000, 100); // a hang guard only: the re-check is 29 minutes away
      console.log(`status says disconnected ${Date.now() - stoppedAt} ms after Dovecot stopped: ${down.lastError}`);
      expect(down.idle).toBe(false);
      expect(down.lastError).toBeTruthy();
      expect(down.retryAt).toBeTruthy();
      const downText = await runCli(['--config', alice.configFile, 'status']);
      expect(downText.stdout).toMatch(/mailbox:\s+disconnected: .+; retrying/);

      await stack.startImap();
      const back = await waitFor('status: connected again', async () => {
        const s = await status();
        return 'mailbox' in s.health && s.health.mailbox === 'connected' ? s.health : undefined;
      }, 60_000, 200);
      expect(back).toMatchObject({ mailbox: 'connected', idle: true, pid: agent.pid });
      expect(back.lastError).toBeUndefined();
    } finally {
      agent.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
    expect((await status()).code).toBe(3);
  }, 210_000);
});
