/**
 * A session cannot take the agent down (issue 12): `peerdial agent` runs
 * each call's session in a session process of its own. Scenarios on the real
 * mail stack, with the real CLI and agent processes, sessions on loopback:
 *
 * - alice pipes into hitoshi's agent; mid-call hitoshi's session process is
 *   killed with SIGSEGV: the agent lives on, logs the crash and the call it
 *   ended (call log outcome `session-crashed`), keeps watching mail, and
 *   alice's next call (a file) connects and arrives whole; on SIGTERM the
 *   agent exits 0 and leaves no process behind.
 * - hitoshi's agent is killed (SIGKILL) mid-call: its session process does
 *   not outlive it.
 * - a camera node whose sessions are isolated streams to two viewers (RTP
 *   through the session processes); one viewer's session process dies: that
 *   call ends, the other viewer keeps watching.
 */
import { promises as fs, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers, requireCommand } from './harness/system.js';
import { agentOf } from './harness/agents.js';
import { defaultMediaSpec } from '../src/session/index.js';
import type { RemoteSession } from '../src/session/index.js';
import type { AgentEvent } from '../src/agent/agent.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { BIN, introduce, makePeer, runCli, tempDir, waitFor, type Peer } from './harness/peers.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
let carol: Peer;
let camera: Peer;
const running: ChildProcess[] = [];

interface Running {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

function start(args: string[], opts: { group?: boolean } = {}): Running {
  // group: a process group of its own, as a terminal gives a command (Ctrl-C signals all of it)
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'], detached: opts.group ?? false });
  running.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, out: () => out, exited: new Promise((r) => child.on('close', (c) => r(c))) };
}

/** Session processes (src/session/host.js) whose parent is `pid`, from /proc. */
function sessionProcessesOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(`session${path.sep}host.js`)) found.push(Number(entry));
    } catch {
      // the process went away meanwhile
    }
  }
  return found;
}

/** True while `pid` runs (a zombie waiting to be reaped counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

beforeAll(async () => {
  ensureMailServers();
  requireCommand('ffmpeg', 'ffmpeg');
  stack = await startMailStack({ users: ['alice', 'hitoshi', 'carol', 'camera'] });
  dir = await tempDir('isolate');
  alice = await makePeer(stack, 'alice', dir, { ringSeconds: 60 });
  hitoshi = await makePeer(stack, 'hitoshi', dir, { answer: 'auto-answer', ringSeconds: 60 });
  await introduce(alice, hitoshi);
  carol = await makePeer(stack, 'carol', dir);
  camera = await makePeer(stack, 'camera', dir, { answer: 'auto-answer' });
  await introduce(alice, camera);
  await introduce(carol, camera);
}, 120_000);

afterEach(async () => {
  // an agent a failed scenario left running would make the next one "already running"
  for (const c of running.splice(0)) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    c.kill('SIGKILL');
    await new Promise((r) => c.once('close', r));
  }
});

afterAll(async () => {
  for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('a session cannot take the agent down', () => {
  it('hitoshi\'s session process dies of SIGSEGV mid-call: his agent logs it, goes on, and alice\'s next call connects', { timeout: 300_000 }, async () => {
    const agent = start(['--config', hitoshi.configFile, 'agent']);
    const agentPid = agent.child.pid!;
    await waitFor('hitoshi\'s agent watching', () => agent.out().includes('mailbox connected'), 30_000);
    // no call, no session process
    expect(sessionProcessesOf(agentPid)).toEqual([]);

    // alice pipes into hitoshi's agent and keeps the pipe open: the call stays up
    const caller = start(['--config', alice.configFile, 'call', 'hitoshi', '--pipe']);
    caller.child.stdin!.write('before the crash\n');
    const connected = await waitFor('hitoshi\'s agent connected', () => /call (\S+) from alice@example\.test: connected via/.exec(agent.out()) ?? undefined, 60_000);
    const callId = connected[1]!;
    const [host] = await waitFor('hitoshi\'s session process', () => {
      const pids = sessionProcessesOf(agentPid);
      return pids.length === 1 ? pids : undefined;
    });
    process.kill(host!, 'SIGSEGV');

    // the agent reports the crash and the call it ended, and lives on
    await waitFor('the crash in the agent\'s log', () => agent.out().includes(`call ${callId} from alice@example.test: ended by a crash of its session process`), 30_000);
    expect(agent.out()).toContain(`the session process (pid ${host}) crashed (SIGSEGV), carrying 1 session(s)`);
    const ended = new RegExp(`call ${callId} from alice@example\\.test: ended closed \\(connection lost \\(the session process \\(pid ${host}\\) crashed \\(SIGSEGV\\)\\)\\)`);
    await waitFor('the call ended in the agent\'s log', () => ended.test(agent.out()), 30_000);
    expect(agent.child.exitCode).toBeNull();
    expect(alive(agentPid)).toBe(true);
    expect(alive(host!)).toBe(false);
    const log = await (await hitoshi.open()).calls.list();
    expect(log.filter((e) => e.callId === callId).map((e) => e.outcome).sort()).toEqual(['connected', 'hung-up', 'session-crashed']);
    expect(log.find((e) => e.outcome === 'session-crashed')?.detail).toContain('SIGSEGV');

    // alice's call ends: hitoshi's agent told her by mail
    caller.child.stdin!.end();
    await caller.exited;

    // the agent still watches mail, and the next call connects through a fresh session process
    const file = path.join(dir, 'after-crash.bin');
    const data = randomBytes(3 * 1024 * 1024);
    await fs.writeFile(file, data);
    const sent = await runCli(['--config', alice.configFile, 'send', 'hitoshi', file], { timeoutMs: 90_000 });
    expect(sent.code, sent.stderr).toBe(0);
    const saved = path.join(hitoshi.downloadDir, 'after-crash.bin');
    await waitFor('the file saved', async () => (await fs.stat(saved).catch(() => undefined))?.size === data.length, 30_000);
    expect(createHash('sha256').update(await fs.readFile(saved)).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    expect((agent.out().match(/connected via/g) ?? []).length).toBe(2);
    expect(agent.out().match(/crashed \(SIG\w+\), carrying/g)).toHaveLength(1); // the second call's process ended normally

    // a finished call's session process goes away; SIGTERM ends the agent cleanly
    await waitFor('no session process once the calls are over', () => sessionProcessesOf(agentPid).length === 0, 30_000);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(agent.out()).toContain('stopped');
  });

  it('Ctrl-C reaches hitoshi\'s agent and its session process mid-call: the agent hangs up over the channel, nothing "crashed", and it exits 0', { timeout: 180_000 }, async () => {
    const agent = start(['--config', hitoshi.configFile, 'agent'], { group: true });
    const agentPid = agent.child.pid!;
    await waitFor('hitoshi\'s agent watching', () => agent.out().includes('mailbox connected'), 30_000);
    const caller = start(['--config', alice.configFile, 'call', 'hitoshi', '--pipe']);
    caller.child.stdin!.write('hello\n');
    await waitFor('hitoshi\'s agent connected', () => /call \S+ from alice@example\.test: connected via/.test(agent.out()), 60_000);
    const [host] = await waitFor('hitoshi\'s session process', () => {
      const pids = sessionProcessesOf(agentPid);
      return pids.length === 1 ? pids : undefined;
    });
    process.kill(-agentPid, 'SIGINT'); // the whole process group, as the terminal does
    expect(await agent.exited, agent.out()).toBe(0);
    expect(agent.out()).toMatch(/from alice@example\.test: ended closed/);
    expect(agent.out()).not.toContain('crashed');
    expect(alive(host!), agent.out()).toBe(false);
    const log = await (await hitoshi.open()).calls.list();
    expect(log.at(-1), `${JSON.stringify(log.slice(-3))}\n${agent.out()}`).toMatchObject({ peer: alice.email, outcome: 'hung-up', detail: 'by the callee' });
    caller.child.stdin!.end();
    await caller.exited;
  });

  it('hitoshi\'s agent is killed mid-call: its session process goes with it', { timeout: 180_000 }, async () => {
    const agent = start(['--config', hitoshi.configFile, 'agent']);
    const agentPid = agent.child.pid!;
    await waitFor('hitoshi\'s agent watching', () => agent.out().includes('mailbox connected'), 30_000);
    const caller = start(['--config', alice.configFile, 'call', 'hitoshi', '--pipe']);
    caller.child.stdin!.write('hello\n');
    await waitFor('hitoshi\'s agent connected', () => /call \S+ from alice@example\.test: connected via/.test(agent.out()), 60_000);
    const [host] = await waitFor('hitoshi\'s session process', () => {
      const pids = sessionProcessesOf(agentPid);
      return pids.length === 1 ? pids : undefined;
    });
    agent.child.kill('SIGKILL');
    await agent.exited;
    await waitFor(`session process ${host} gone with its agent`, () => !alive(host!), 10_000);
    caller.child.stdin!.end();
    caller.child.kill('SIGTERM');
    await caller.exited;
  });
});

describe('a camera node with isolated sessions', () => {
  it('streams to alice and carol through two session processes; alice\'s dies of SIGSEGV, carol keeps watching', { timeout: 180_000 }, async () => {
    const cam = await agentOf(camera, { camera: { video: { kind: 'test' }, audio: { kind: 'test' }, fps: 30 }, sessions: 'isolated' });
    const a = await agentOf(alice);
    const c = await agentOf(carol);
    try {
      const view = () => ({ purpose: 'view' as const, media: defaultMediaSpec({ video: true, audio: true }, 'recvonly') });
      const [va, vc] = await Promise.all([a.agent.call('camera', view()), c.agent.call('camera', view())]);
      const videoOf = (call: typeof va) => call.session.tracks().find((t) => t.kind === 'video')!;
      await waitFor('both receive the picture', () => videoOf(va).stats().keyframesReceived > 0 && videoOf(vc).stats().keyframesReceived > 0, 30_000);
      expect(cam.agent.sessionHosts!.pids()).toHaveLength(2);
      const connectedIn = (peer: string) =>
        cam.events.find((e): e is Extract<AgentEvent, { type: 'connected'; call: unknown }> => e.type === 'connected' && 'call' in e && e.call.peer === peer)!.call;
      const alicesCall = connectedIn(alice.email);
      const pid = (alicesCall.session as RemoteSession).hostPid;
      expect((connectedIn(carol.email).session as RemoteSession).hostPid).not.toBe(pid);

      process.kill(pid, 'SIGSEGV');
      await waitFor('the camera ends alice\'s call', () => cam.events.some((e) => e.type === 'ended' && e.peer === alice.email), 30_000);
      expect(cam.events.filter((e) => e.type === 'session-process-crashed').map((e) => 'signal' in e && e.signal)).toEqual(['SIGSEGV']);
      expect(cam.events.find((e) => e.type === 'session-crashed')).toMatchObject({ peer: alice.email, direction: 'in' });
      // carol's call goes on: her picture keeps coming
      const before = videoOf(vc).stats().packetsReceived;
      await waitFor('more of the picture for carol', () => videoOf(vc).stats().packetsReceived > before + 30, 20_000);
      expect(cam.events.some((e) => e.type === 'ended' && e.peer === carol.email)).toBe(false);
      await va.ended;
      vc.hangup();
      await vc.ended;
      await waitFor('the encoder stops with the last viewer', () => cam.agent.camera!.viewers === 0 && cam.agent.camera!.source === undefined, 15_000);
    } finally {
      await a.agent.stop();
      await c.agent.stop();
      await cam.agent.stop();
    }
    expect(cam.agent.sessionHosts!.pids()).toEqual([]);
  });
});
