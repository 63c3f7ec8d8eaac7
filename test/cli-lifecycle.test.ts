/**
 * A call's life from the command line (issue 12), with the real CLI against
 * the real Postfix + Dovecot: `send` checks its files before it calls;
 * SIGTERM while it rings mails a cancel; Ctrl-C during a call says bye over
 * the channel; both call logs agree on who hung up; a transfer that arrived
 * whole is logged as such; the auto-answer greeting names the peer once.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { MailStack } from './harness/mail-stack.js';
import { BIN, runCli, waitFor, type Peer } from './harness/peers.js';
import { introducedPeers } from './harness/scene.js';
import { Agent, type AgentEvent } from '../src/agent/agent.js';
import type { CallLogEntry } from '../src/store/calllog.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;

interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** The CLI as a user runs it; stdin stays open (a terminal nobody types into). */
function start(args: string[]): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  child.stdin!.on('error', () => undefined);
  return { child, stdout: () => out, stderr: () => err, exited: new Promise((r) => child.on('close', (code) => r(code))) };
}

async function exitsWithin(p: Proc, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), ms)));
  const code = await Promise.race([p.exited, hung]);
  clearTimeout(timer);
  if (code === 'hung') {
    p.child.kill('SIGKILL');
    throw new Error(`process did not exit by itself within ${ms} ms; stderr:\n${p.stderr()}`);
  }
  return code;
}

async function logOf(peer: Peer): Promise<CallLogEntry[]> {
  return (await peer.open()).calls.list();
}

async function hitoshiAgent(): Promise<{ agent: Agent; events: AgentEvent[] }> {
  const events: AgentEvent[] = [];
  const agent = new Agent({ account: await hitoshi.open(), onEvent: (e) => events.push(e) });
  agent.start();
  return { agent, events };
}

introducedPeers('cli-lifecycle', { alice: { ringSeconds: 120 }, hitoshi: { answer: 'auto-answer', ringSeconds: 120 } }, async (s) => {
  stack = s.stack;
  dir = s.dir;
  alice = s.peers.alice!;
  hitoshi = s.peers.hitoshi!;
});

describe('peerdial send checks its files before it calls', () => {
  it('a missing file and a directory: USAGE (exit 64) naming both, and nobody is called', async () => {
    const folder = path.join(dir, 'a-folder');
    await fs.mkdir(folder, { recursive: true });
    const good = path.join(dir, 'good.txt');
    await fs.writeFile(good, 'fine');
    const missing = path.join(dir, 'no-such.txt');
    const before = (await logOf(alice)).length;
    const r = await runCli(['--config', alice.configFile, 'send', 'hitoshi', good, missing, folder], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(64);
    expect(r.stderr).toContain(`${missing}: no such file`);
    expect(r.stderr).toContain(`${folder}: not a regular file`);
    expect(r.stderr).not.toContain(good + ':');
    expect(r.stderr).toContain('[USAGE]');
    expect(r.stderr).not.toContain('calling');
    expect(await logOf(alice)).toHaveLength(before);
  });
});

describe('SIGTERM while it rings', () => {
  it('alice is stopped while her offer waits for hitoshi: a cancel goes out by mail, and hitoshi never connects', async () => {
    const caller = start(['--config', alice.configFile, 'call', 'hitoshi']);
    await waitFor('the offer went out', () => caller.stderr().includes('offer sent by mail; ringing'), 60_000);
    caller.child.kill('SIGTERM');
    const code = await exitsWithin(caller, 60_000);
    expect(code, caller.stderr()).not.toBe(0);
    expect(caller.stderr()).toContain('cancelling');
    const mine = (await logOf(alice)).filter((e) => e.direction === 'out');
    expect(mine.at(-1)?.outcome, JSON.stringify(mine)).toBe('cancelled');
    // hitoshi's agent comes up only now and finds the offer and the cancel.
    const h = await hitoshiAgent();
    try {
      const callId = mine.at(-1)!.callId;
      const ended = await waitFor('hitoshi ended the cancelled call', async () => {
        const e = (await logOf(hitoshi)).filter((x) => x.callId === callId && x.outcome !== 'connected');
        return e.length > 0 ? e : undefined;
      }, 60_000);
      expect(['cancelled', 'missed']).toContain(ended.at(-1)!.outcome);
      expect((await logOf(hitoshi)).some((x) => x.callId === callId && x.outcome === 'connected')).toBe(false);
    } finally {
      await h.agent.stop();
    }
  }, 180_000);
});

describe('a chat hung up with Ctrl-C', () => {
  it("the bye goes over the channel: both logs say the caller hung up; hitoshi's greeting names him once", async () => {
    const h = await hitoshiAgent();
    try {
      const caller = start(['--config', alice.configFile, 'call', 'hitoshi']);
      await waitFor('the greeting arrived', () => caller.stdout().includes('answered automatically'), 90_000);
      const greeting = caller.stdout().split('\n').find((l) => l.includes('answered automatically'))!;
      expect(greeting.split(hitoshi.email)).toHaveLength(2);
      caller.child.kill('SIGINT');
      expect(await exitsWithin(caller, 30_000), caller.stderr()).toBe(0);
      expect(caller.stderr()).toContain('hanging up');
      const mine = (await logOf(alice)).filter((e) => e.direction === 'out');
      const callId = mine.at(-1)!.callId;
      expect(mine.at(-1)).toMatchObject({ outcome: 'hung-up', detail: 'by the caller' });
      const theirs = await waitFor("hitoshi's log has the hang-up", async () => (await logOf(hitoshi)).find((e) => e.callId === callId && e.outcome === 'hung-up'), 30_000);
      expect(theirs.detail).toBe('by the caller');
    } finally {
      await h.agent.stop();
    }
  }, 180_000);
});

describe('a file sent whole', () => {
  it('is saved, logged as saved (never failed), and both logs say the sender hung up', async () => {
    const h = await hitoshiAgent();
    try {
      const file = path.join(dir, 'note.txt');
      await fs.writeFile(file, 'whole\n'.repeat(10_000));
      const r = await runCli(['--config', alice.configFile, 'send', 'hitoshi', file], { timeoutMs: 120_000 });
      expect(r.code, r.stderr).toBe(0);
      const mine = (await logOf(alice)).filter((e) => e.direction === 'out');
      const callId = mine.at(-1)!.callId;
      expect(mine.at(-1)).toMatchObject({ outcome: 'hung-up', detail: 'by the caller' });
      const theirs = await waitFor("hitoshi's log has the hang-up", async () => (await logOf(hitoshi)).find((e) => e.callId === callId && e.outcome === 'hung-up'), 30_000);
      expect(theirs.detail).toBe('by the caller');
      const carried = h.events.filter((e) => e.type === 'carried') as Array<Extract<AgentEvent, { type: 'carried' }>>;
      expect(carried.map((e) => e.detail).join('\n')).toMatch(/^saved .*note\.txt/m);
      expect(carried.filter((e) => /fail/i.test(e.detail))).toEqual([]);
    } finally {
      await h.agent.stop();
    }
  }, 180_000);
});
