/**
 * The commands people type, run as real processes against the real mail
 * stack: `call --pipe` into `listen --pipe`, `send` with a resumed
 * transfer, and a call nobody answers. Every process must exit by itself.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { MailStack } from './harness/mail-stack.js';
import { runCli, waitFor, type Peer } from './harness/peers.js';
import { introducedPeers } from './harness/scene.js';
import { startCli, type CliProcess } from './harness/cli-process.js';
import { Agent, type AgentEvent } from '../src/agent/agent.js';
import { PARTIAL_SUFFIX } from '../src/carriers/index.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Fails the test if the process has not exited by itself in time. */
async function exitsWithin(p: CliProcess, ms: number): Promise<number | null> {
  const timer = new Promise<'hung'>((r) => setTimeout(() => r('hung'), ms));
  const code = await Promise.race([p.exited, timer]);
  if (code === 'hung') {
    p.child.kill('SIGKILL');
    throw new Error(`process did not exit by itself within ${ms} ms; stderr:\n${p.stderr()}`);
  }
  return code;
}

introducedPeers('cli', { alice: { ringSeconds: 30 }, hitoshi: { answer: 'auto-answer', ringSeconds: 30 } }, async (s) => {
  stack = s.stack;
  dir = s.dir;
  alice = s.peers.alice!;
  hitoshi = s.peers.hitoshi!;
});

describe('peerdial call --pipe', () => {
  it('64 MiB from alice\'s stdin arrive on hitoshi\'s stdout with the same SHA-256; both processes exit by themselves', async () => {
    const input = path.join(dir, 'pipe-in.bin');
    const data = randomBytes(64 * 1024 * 1024);
    await fs.writeFile(input, data);
    const listener = startCli(['--config', hitoshi.configFile, 'listen', '--pipe']);
    await waitFor('listener waiting', () => listener.stderr().includes('waiting for a call'), 30_000);
    const caller = startCli(['--config', alice.configFile, 'call', 'hitoshi', '--pipe'], input);
    const [cc, lc] = await Promise.all([exitsWithin(caller, 120_000), exitsWithin(listener, 120_000)]);
    expect(cc, caller.stderr()).toBe(0);
    expect(lc, listener.stderr()).toBe(0);
    const got = listener.stdout();
    expect(got.length).toBe(data.length);
    expect(sha256(got)).toBe(sha256(data));
    expect(caller.stderr()).toMatch(/connected to hitoshi@example\.test via .*127\.0\.0\.1.* <-> .*127\.0\.0\.1.* in \d+ ms, direct$/m);
    expect(listener.stderr()).toMatch(/connected to alice@example\.test via .* <-> .*, direct$/m);
    expect(caller.stderr()).toContain('offer sent by mail; ringing...');
    // no relay is configured: the call log says the call went direct
    const log = await (await alice.open()).calls.list();
    expect(log.filter((e) => e.outcome === 'connected').at(-1)?.path).toBe('direct');
  }, 180_000);
});

describe('peerdial send', () => {
  it('an interrupted transfer resumes instead of starting over', async () => {
    const events: AgentEvent[] = [];
    const agent = new Agent({ account: await hitoshi.open(), onEvent: (e) => events.push(e) });
    agent.start();
    try {
      const file = path.join(dir, 'film.bin');
      const data = randomBytes(96 * 1024 * 1024);
      await fs.writeFile(file, data);
      const partial = path.join(hitoshi.downloadDir, `film.bin${PARTIAL_SUFFIX}`);
      const first = startCli(['--config', alice.configFile, 'send', 'hitoshi', file]);
      // kill the sender mid-file: no bye, no mail, just gone
      await waitFor('part of the file arrived', async () => ((await fs.stat(partial).catch(() => undefined))?.size ?? 0) > 8 * 1024 * 1024, 60_000, 5);
      first.child.kill('SIGKILL');
      await first.exited;
      const kept = (await fs.stat(partial)).size;
      expect(kept).toBeLessThan(data.length);
      const second = startCli(['--config', alice.configFile, 'send', 'hitoshi', file]);
      expect(await exitsWithin(second, 120_000), second.stderr()).toBe(0);
      const m = /resumed at byte (\d+)/.exec(second.stdout().toString());
      expect(m, second.stdout().toString() + second.stderr()).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThan(0);
      const saved = path.join(hitoshi.downloadDir, 'film.bin');
      await waitFor('saved', async () => (await fs.stat(saved).catch(() => undefined))?.size === data.length, 30_000);
      expect(sha256(await fs.readFile(saved))).toBe(sha256(data));
      // nothing was overwritten silently: sending it again makes a second copy
      const third = await runCli(['--config', alice.configFile, 'send', 'hitoshi', file], { timeoutMs: 120_000 });
      expect(third.code, third.stderr).toBe(0);
      expect(third.stdout).toContain('saved as "film (1).bin"');
    } finally {
      await agent.stop();
    }
  }, 300_000);
});

describe('a call nobody answers', () => {
  it('times out with a clear message and exit code 2', async () => {
    const r = await runCli(['--config', alice.configFile, 'call', 'hitoshi', '--ring-seconds', '5'], { timeoutMs: 60_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('hitoshi@example.test did not answer');
    expect(r.stderr).toContain('what to do:');
    expect(r.stderr).toContain('[CALL_TIMEOUT]');
  });
});
