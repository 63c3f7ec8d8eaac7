/**
 * The TLS lane through the commands people type, on loopback with the real
 * mail stack: `peerdial send` to an agent that answers by itself, and
 * `call --pipe` into `listen --pipe`. Both say `via tls`; the bytes arrive
 * with their SHA-256. A port forward through the agent API goes over lanes
 * too, and the callee's allow list still holds on them.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { MailStack } from './harness/mail-stack.js';
import { runCli, waitFor, type Peer } from './harness/peers.js';
import { introducedPeers } from './harness/scene.js';
import { startCli } from './harness/cli-process.js';
import { Agent, type AgentEvent } from '../src/agent/agent.js';
import { agentOf } from './harness/agents.js';
import { FORWARD_PROTOCOL, forwardLocal, openCarrierChannel, type Via } from '../src/carriers/index.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

introducedPeers('tls-lane-call', { alice: { ringSeconds: 30 }, hitoshi: { answer: 'auto-answer', ringSeconds: 30 } }, async (s) => {
  stack = s.stack;
  dir = s.dir;
  alice = s.peers.alice!;
  hitoshi = s.peers.hitoshi!;
});

describe('peerdial send on loopback', () => {
  it('goes via tls, and the agent saves the file with the same SHA-256', async () => {
    const events: AgentEvent[] = [];
    const agent = new Agent({ account: await hitoshi.open(), onEvent: (e) => events.push(e) });
    agent.start();
    try {
      const file = path.join(dir, 'lane.bin');
      const data = randomBytes(32 * 1024 * 1024 + 7);
      await fs.writeFile(file, data);
      const r = await runCli(['--config', alice.configFile, 'send', 'hitoshi', file], { timeoutMs: 180_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('via tls');
      expect(r.stderr).not.toContain('via datachannel');
      expect(r.stdout).toContain(`sha256 ${sha256(data).slice(0, 16)}`);
      const saved = path.join(hitoshi.downloadDir, 'lane.bin');
      await waitFor('saved', async () => (await fs.stat(saved).catch(() => undefined))?.size === data.length, 30_000);
      expect(sha256(await fs.readFile(saved))).toBe(sha256(data));
      expect(events.some((e) => e.type === 'carried' && e.what === 'file' && e.detail.startsWith(`saved ${saved}`))).toBe(true);
    } finally {
      await agent.stop();
    }
  }, 240_000);
});

describe('peerdial call --pipe on loopback', () => {
  it('both ends say via tls and stdout holds stdin, SHA-256 for SHA-256', async () => {
    const input = path.join(dir, 'pipe-in.bin');
    const data = randomBytes(16 * 1024 * 1024);
    await fs.writeFile(input, data);
    const listener = startCli(['--config', hitoshi.configFile, 'listen', '--pipe']);
    await waitFor('listener waiting', () => listener.stderr().includes('waiting for a call'), 30_000);
    const caller = startCli(['--config', alice.configFile, 'call', 'hitoshi', '--pipe'], input);
    const [cc, lc] = await Promise.all([caller.exited, listener.exited]);
    expect(cc, caller.stderr()).toBe(0);
    expect(lc, listener.stderr()).toBe(0);
    expect(caller.stderr()).toContain('via tls');
    expect(listener.stderr()).toContain('via tls');
    expect(sha256(listener.stdout())).toBe(sha256(data));
  }, 240_000);
});

describe('port forwarding over TLS lanes', () => {
  it("each forwarded connection gets its own lane; the allowed target echoes, the other is refused", async () => {
    const echo = net.createServer((sock) => sock.pipe(sock));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const echoPort = (echo.address() as net.AddressInfo).port;
    await (await hitoshi.open()).contacts.setCapabilities(alice.email, (c) => (c.forward = [`127.0.0.1:${echoPort}`]));
    const h = await agentOf(hitoshi);
    const a = await agentOf(alice);
    const servers: { close(): Promise<void> }[] = [];
    try {
      const call = await a.agent.call('hitoshi', { purpose: 'forward' });
      const vias: Via[] = [];
      let n = 0;
      const open = async () => {
        const c = await openCarrierChannel(call, `forward-${++n}`, { protocol: FORWARD_PROTOCOL });
        vias.push(c.via);
        return c.channel;
      };
      const allowed = await forwardLocal({ listenPort: 0, targetHost: '127.0.0.1', targetPort: echoPort, openStream: open });
      const refused = await forwardLocal({ listenPort: 0, targetHost: '127.0.0.1', targetPort: echoPort + 1, openStream: open });
      servers.push(allowed, refused);
      const roundTrip = (port: number, payload: Buffer) =>
        new Promise<{ data: Buffer; error?: string }>((resolve) => {
          const c = net.connect(port, '127.0.0.1');
          const got: Buffer[] = [];
          let error: string | undefined;
          c.on('data', (d) => got.push(d));
          c.on('error', (e: NodeJS.ErrnoException) => (error = e.code));
          c.on('close', () => resolve({ data: Buffer.concat(got), ...(error ? { error } : {}) }));
          c.end(payload);
        });
      const payload = randomBytes(4 * 1024 * 1024);
      const [one, two] = await Promise.all([roundTrip(allowed.port, payload), roundTrip(allowed.port, payload.subarray(0, 1000))]);
      expect(one.error).toBeUndefined();
      expect(sha256(one.data)).toBe(sha256(payload));
      expect(two.data.equals(payload.subarray(0, 1000))).toBe(true);
      const no = await roundTrip(refused.port, Buffer.from('hello'));
      expect(no.data.length).toBe(0);
      expect(vias).toEqual(['tls', 'tls', 'tls']);
      await waitFor('refusal reported', () => h.events.some((e) => e.type === 'carried' && e.what === 'forward' && e.detail.includes('refused')));
      call.hangup();
      await call.ended;
    } finally {
      for (const s of servers) await s.close();
      echo.close();
      await a.agent.stop();
      await h.agent.stop();
    }
  }, 240_000);
});
