/**
 * Calls on the real Postfix + Dovecot: alice calls hitoshi, whose agent
 * answers by policy; the offer and answer travel as mail, the session is
 * direct (loopback). Each scenario asserts the state sequence.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { FORWARD_PROTOCOL, forwardLocal } from '../src/carriers/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { introduce, makePeer, tempDir, waitFor, type Peer } from './harness/peers.js';
import { agentOf, endedStates } from './harness/agents.js';
import { Agent, channelNamed, type AgentEvent } from '../src/agent/agent.js';
import type { ActiveCall } from '../src/agent/phone-types.js';
import { runChat } from '../src/carriers/chat.js';
import { sendFiles } from '../src/carriers/file.js';
import { isPeerdialError } from '../src/errors.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
let carol: Peer;



beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice', 'hitoshi', 'carol'] });
  dir = await tempDir('call');
  alice = await makePeer(stack, 'alice', dir, { ringSeconds: 20 });
  hitoshi = await makePeer(stack, 'hitoshi', dir, { answer: 'auto-answer', ringSeconds: 20 });
  carol = await makePeer(stack, 'carol', dir);
  await introduce(alice, hitoshi);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('alice calls hitoshi, whose agent answers automatically', () => {
  it('the channel opens directly over loopback and a chat line goes each way', async () => {
    const lines: string[] = [];
    const h = await agentOf(hitoshi, {
      onIncoming: async (call: ActiveCall) => {
        const ch = await channelNamed(call, 'chat');
        async function* reply() {
          yield 'hello alice, hitoshi here';
          await call.ended;
        }
        await runChat(ch, reply(), { onLine: (from, text) => from === 'remote' && lines.push(`hitoshi got: ${text}`) });
      },
    });
    const a = await agentOf(alice);
    try {
      const call = await a.agent.call('hitoshi', { purpose: 'chat' });
      expect(call.pair.local).toContain('127.0.0.1');
      expect(call.pair.remote).toContain('127.0.0.1');
      const ch = await call.session.openChannel('chat');
      const got: string[] = [];
      async function* say() {
        yield 'hi hitoshi, alice here';
        await waitFor('reply', () => got.length > 0);
      }
      const r = await runChat(ch, say(), { onLine: (from, text) => from === 'remote' && got.push(text) });
      expect(r.ended).toBe('local-bye');
      expect(got).toEqual(['hello alice, hitoshi here']);
      await waitFor('hitoshi got the line', () => lines.length > 0);
      expect(lines).toEqual(['hitoshi got: hi hitoshi, alice here']);
      call.hangup();
      expect(await call.ended).toBe('closed');
      await waitFor('hitoshi saw the hang-up', () => endedStates(h.events, 'in').length > 0);
      expect(endedStates(a.events, 'out')[0]).toEqual(['gathering', 'offer-queued', 'offer-sent', 'connecting', 'connected', 'closed']);
      expect(endedStates(h.events, 'in')[0]).toEqual(['offer-received', 'answering', 'answer-queued', 'connecting', 'connected', 'closed']);
    } finally {
      await a.agent.stop();
      await h.agent.stop();
    }
  });

  it('a file sent to hitoshi lands in his download folder, intact', async () => {
    const h = await agentOf(hitoshi);
    const a = await agentOf(alice);
    try {
      const file = path.join(dir, 'photo.bin');
      const data = randomBytes(3 * 1024 * 1024 + 17);
      await fs.writeFile(file, data);
      const call = await a.agent.call('hitoshi', { purpose: 'file' });
      const ch = await call.session.openChannel('file');
      const sent = await sendFiles(ch, [file]);
      expect(sent[0]).toMatchObject({ status: 'sent', resumedFrom: 0 });
      call.hangup();
      const saved = path.join(hitoshi.downloadDir, 'photo.bin');
      await waitFor('file saved', async () => (await fs.stat(saved).catch(() => undefined))?.size === data.length);
      expect(createHash('sha256').update(await fs.readFile(saved)).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    } finally {
      await a.agent.stop();
      await h.agent.stop();
    }
  });
});

describe('several calls at once', () => {
  it('alice and carol call hitoshi at the same time; both connect, each to its own session', async () => {
    await introduce(carol, hitoshi);
    const h = await agentOf(hitoshi, { onIncoming: async (call) => void (await call.ended) });
    const a = await agentOf(alice);
    const c = await agentOf(carol);
    try {
      const [ca, cc] = await Promise.all([a.agent.call('hitoshi'), c.agent.call('hitoshi')]);
      expect(ca.callId).not.toBe(cc.callId);
      await waitFor('both connected at hitoshi', () => h.events.filter((e) => e.type === 'connected' && 'call' in e).length === 2);
      const peers = h.events.filter((e): e is Extract<AgentEvent, { type: 'connected'; call: unknown }> => e.type === 'connected' && 'call' in e).map((e) => e.call.peer).sort();
      expect(peers).toEqual([alice.email, carol.email]);
      ca.hangup();
      cc.hangup();
      expect(await ca.ended).toBe('closed');
      expect(await cc.ended).toBe('closed');
    } finally {
      await Promise.all([a.agent.stop(), c.agent.stop(), h.agent.stop()]);
      const acc = await hitoshi.open();
      await acc.contacts.remove('carol');
    }
  });
});

describe('port forwarding over a call', () => {
  it("alice reaches hitoshi's allowed local service through the call; a target he did not allow is refused", async () => {
    const echo = net.createServer((sock) => sock.pipe(sock));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const echoPort = (echo.address() as net.AddressInfo).port;
    // hitoshi lets alice (and only her) forward to that one port
    await (await hitoshi.open()).contacts.setCapabilities(alice.email, (c) => (c.forward = [`127.0.0.1:${echoPort}`]));
    const h = await agentOf(hitoshi);
    const a = await agentOf(alice);
    const servers: { close(): Promise<void> }[] = [];
    try {
      const call = await a.agent.call('hitoshi', { purpose: 'forward' });
      let n = 0;
      const open = () => call.session.openChannel(`forward-${++n}`, { protocol: FORWARD_PROTOCOL });
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
      const payload = randomBytes(256 * 1024);
      const ok = await roundTrip(allowed.port, payload);
      expect(ok.error).toBeUndefined();
      expect(ok.data.equals(payload)).toBe(true);
      // refused: the local connection is cut, not a byte comes back
      const no = await roundTrip(refused.port, Buffer.from('hello'));
      expect(no.data.length).toBe(0);
      await waitFor('refusal reported', () => h.events.some((e) => e.type === 'carried' && e.what === 'forward' && e.detail.includes('refused')));
      call.hangup();
      await call.ended;
    } finally {
      for (const s of servers) await s.close();
      echo.close();
      await a.agent.stop();
      await h.agent.stop();
    }
  });
});

describe('calls that do not connect', () => {
  it('hitoshi declines: alice hears "declined", both logs say so', async () => {
    const h = await agentOf(hitoshi, {});
    const acc = h.agent.account;
    // hitoshi wants to be asked for alice's calls: it rings, he declines
    await acc.contacts.update(alice.email, (c) => (c.answer = 'ring'));
    const a = await agentOf(alice);
    try {
      const ringing = waitFor('ringing', () => h.events.find((e): e is Extract<AgentEvent, { type: 'ringing' }> => e.type === 'ringing'));
      const calling = a.agent.call('hitoshi').catch((e) => e);
      (await ringing).call.decline('not now');
      const err = await calling;
      expect(isPeerdialError(err, 'CALL_DECLINED')).toBe(true);
      expect(endedStates(a.events, 'out')[0]).toEqual(['gathering', 'offer-queued', 'offer-sent', 'declined']);
      await waitFor('callee ended', () => endedStates(h.events, 'in').length > 0);
      expect(endedStates(h.events, 'in')[0]).toEqual(['offer-received', 'ringing', 'declined']);
    } finally {
      await acc.contacts.update(alice.email, (c) => delete c.answer);
      await a.agent.stop();
      await h.agent.stop();
    }
  });
});

describe('more ways a call ends', () => {
  it('alice cancels while it rings: hitoshi sees a missed call', async () => {
    const h = await agentOf(hitoshi);
    await h.agent.account.contacts.update(alice.email, (c) => (c.answer = 'ring'));
    const a = await agentOf(alice);
    try {
      const ac = new AbortController();
      const calling = a.agent.call('hitoshi', { signal: ac.signal }).catch((e) => e);
      await waitFor('ringing', () => h.events.some((e) => e.type === 'ringing'));
      ac.abort();
      expect(isPeerdialError(await calling, 'CALL_CANCELLED')).toBe(true);
      expect(endedStates(a.events, 'out')[0]).toEqual(['gathering', 'offer-queued', 'offer-sent', 'cancelled']);
      await waitFor('the cancel mail reaches hitoshi', () => endedStates(h.events, 'in').length > 0);
      expect(endedStates(h.events, 'in')[0]).toEqual(['offer-received', 'ringing', 'missed']);
      const log = await h.agent.account.calls.list();
      expect(log.at(-1)).toMatchObject({ direction: 'in', peer: alice.email, outcome: 'missed' });
    } finally {
      await h.agent.account.contacts.update(alice.email, (c) => delete c.answer);
      await a.agent.stop();
      await h.agent.stop();
    }
  });

  it('hitoshi is busy: he takes one call at a time and is already in one', async () => {
    const h = await agentOf(hitoshi, { onIncoming: async (call) => void (await call.ended) });
    h.agent.account.config.singleCall = true;
    const a = await agentOf(alice);
    try {
      const first = await a.agent.call('hitoshi');
      const second = await a.agent.call('hitoshi').catch((e) => e);
      expect(isPeerdialError(second, 'CALL_BUSY')).toBe(true);
      expect(endedStates(a.events, 'out')[0]).toEqual(['gathering', 'offer-queued', 'offer-sent', 'busy']);
      await waitFor('callee side ended', () => endedStates(h.events, 'in').length > 0);
      expect(endedStates(h.events, 'in')[0]).toEqual(['offer-received', 'busy']);
      first.hangup();
      await first.ended;
    } finally {
      h.agent.account.config.singleCall = false;
      await a.agent.stop();
      await h.agent.stop();
    }
  });

  it("hitoshi hangs up: alice's side ends by the channel, without waiting for mail", async () => {
    const h = await agentOf(hitoshi, {
      onIncoming: async (call) => {
        await new Promise((r) => setTimeout(r, 200));
        call.hangup();
      },
    });
    const a = await agentOf(alice);
    try {
      const call = await a.agent.call('hitoshi');
      expect(await call.ended).toBe('closed');
      expect(endedStates(a.events, 'out')[0]).toEqual(['gathering', 'offer-queued', 'offer-sent', 'connecting', 'connected', 'closed']);
      const log = await a.agent.account.calls.list();
      expect(log.at(-1)).toMatchObject({ outcome: 'hung-up', detail: 'by the callee' });
      await waitFor('callee ended', () => endedStates(h.events, 'in').length > 0);
      expect(endedStates(h.events, 'in')[0]).toEqual(['offer-received', 'answering', 'answer-queued', 'connecting', 'connected', 'closed']);
    } finally {
      await a.agent.stop();
      await h.agent.stop();
    }
  });
});

describe('offers that must not lead to a connection', () => {
  /** A UDP socket standing in for the caller's address: it must never see a packet. */
  async function decoy(): Promise<{ port: number; packets: () => number; close: () => void }> {
    const sock = dgram.createSocket('udp4');
    let n = 0;
    sock.on('message', () => n++);
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    return { port: sock.address().port, packets: () => n, close: () => sock.close() };
  }

  async function offerFrom(peer: Peer, to: string, port: number): Promise<void> {
    const { Session } = await import('../src/session/index.js');
    const { session, sdp } = await Session.createOffer({ ice: { iceServers: [], bindAddress: '127.0.0.1' } });
    session.close('only its SDP is needed');
    // every candidate now points at the decoy
    const decoySdp = sdp.replace(/(a=candidate:\S+ \d+ UDP \d+ 127\.0\.0\.1 )\d+/g, `$1${port}`);
    expect(decoySdp).toContain(` ${port} typ host`);
    const acc = await peer.open();
    await acc.queue({ kind: 'offer', to, sdp: decoySdp, purpose: 'chat' });
    const { flushOutbox } = await import('../src/api/mail.js');
    expect((await flushOutbox(acc)).sent).toBe(1);
  }

  it('a blocked caller: no packet goes to its addresses; the mail is counted with strangers\' mail, the call log holds calls only', async () => {
    const h = await agentOf(hitoshi);
    await h.agent.account.contacts.update(alice.email, (c) => (c.blocked = true));
    const d = await decoy();
    const callsBefore = (await h.agent.account.calls.list()).length;
    try {
      await offerFrom(alice, hitoshi.email, d.port);
      const rejected = await waitFor('rejection', () => h.events.find((e) => e.type === 'mail-rejected'));
      expect(rejected).toMatchObject({ from: alice.email, reason: 'blocked-sender', stranger: true });
      await new Promise((r) => setTimeout(r, 1500));
      expect(d.packets()).toBe(0);
      expect(h.events.some((e) => e.type === 'state' && e.direction === 'in')).toBe(false);
      expect((await h.agent.account.calls.list()).length).toBe(callsBefore);
      expect((await h.agent.account.strangers.read())?.last).toMatchObject({ from: alice.email, reason: 'blocked-sender' });
    } finally {
      d.close();
      await h.agent.account.contacts.update(alice.email, (c) => (c.blocked = false));
      await h.agent.stop();
    }
  });

  it('an unknown caller while only contacts may call: no packet; counted as a stranger with the reason, not put in the call log', async () => {
    const h = await agentOf(hitoshi);
    const d = await decoy();
    const callsBefore = (await h.agent.account.calls.list()).length;
    try {
      await offerFrom(carol, hitoshi.email, d.port);
      const rejected = await waitFor('rejection', () => h.events.find((e) => e.type === 'mail-rejected'));
      expect(rejected).toMatchObject({ from: carol.email, reason: 'unknown-sender', stranger: true });
      await new Promise((r) => setTimeout(r, 1500));
      expect(d.packets()).toBe(0);
      expect((await h.agent.account.calls.list()).length).toBe(callsBefore);
      expect((await h.agent.account.strangers.read())?.last).toMatchObject({ from: carol.email, reason: 'unknown-sender' });
    } finally {
      d.close();
      await h.agent.stop();
    }
  });
});

describe('hitoshi is offline', () => {
  it("alice's call times out with a clear message; hitoshi's agent, started later, logs a missed call and does not connect", async () => {
    const a = await agentOf(alice);
    let err: unknown;
    try {
      err = await a.agent.call('hitoshi', { ringSeconds: 5 }).catch((e) => e);
    } finally {
      await a.agent.stop();
    }
    expect(isPeerdialError(err, 'CALL_TIMEOUT')).toBe(true);
    expect((err as Error).message).toContain('did not answer');
    expect((err as { hint?: string }).hint).toContain('offline');
    expect(endedStates(a.events, 'out')[0]).toEqual(['gathering', 'offer-queued', 'offer-sent', 'timed-out']);
    const h = await agentOf(hitoshi);
    try {
      await waitFor('missed call logged', async () => (await h.agent.account.calls.list()).find((e) => e.outcome === 'missed' && e.peer === alice.email && e.detail?.includes('expired')));
      expect(h.events.some((e) => e.type === 'connected' && 'call' in e)).toBe(false);
      expect(h.events.some((e) => e.type === 'state' && e.state === 'answering')).toBe(false);
    } finally {
      await h.agent.stop();
    }
  });
});
