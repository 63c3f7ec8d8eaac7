/**
 * Mail is slow: on the real Postfix + Dovecot, Postfix keeps one sender's
 * mail in its hold queue for a minute or more, then delivers it. An answer
 * that reaches the caller 90 s late, and an offer that reaches the callee
 * 60 s late, must still lead to a direct connection that carries data
 * (loopback only). Each scenario asserts both state sequences and prints
 * the time from the release of the held mail to "connected".
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { waitFor, type Peer, aliceAndHitoshi, type Pair } from './harness/peers.js';
import { agentOf, endedStates } from './harness/agents.js';
import { Agent, type AgentEvent } from '../src/agent/agent.js';
import type { Channel } from '../src/session/index.js';
import type { ActiveCall } from '../src/agent/phone-types.js';
import { runChat } from '../src/carriers/chat.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));



function statesSoFar(events: AgentEvent[], direction: 'in' | 'out'): string[] {
  return events.filter((e): e is Extract<AgentEvent, { type: 'state' }> => e.type === 'state' && e.direction === direction).map((e) => e.state);
}

/** Fails with `what` instead of hanging until the test's own timeout, so a stall says where it was. */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Both sides' states so far, for the failure output. */
function explain(a: AgentEvent[], h: AgentEvent[]): void {
  console.log(`alice: ${statesSoFar(a, 'out').join(' -> ')}\nhitoshi: ${statesSoFar(h, 'in').join(' -> ')}`);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * hitoshi's side of a call: a chat greeting, and the SHA-256 of whatever
 * arrives on the "data" channel, sent back on it. One onChannel listener
 * for both: Session.onChannel hands channels that arrived before any
 * listener to the FIRST listener only, so a second listener (channelNamed)
 * could miss a chat channel that alice opened quickly.
 */
function hitoshiCarries(lines: string[]) {
  return async (call: ActiveCall) => {
    const chat = new Promise<Channel>((resolve) => {
      call.session.onChannel((ch) => {
        if (ch.label === 'chat') resolve(ch);
        if (ch.label !== 'data') return;
        ch.onMessage((m) => {
          const bytes = typeof m === 'string' ? Buffer.from(m) : m;
          void ch.send(sha256(bytes)).catch(() => undefined);
        });
      });
    });
    const ch = await Promise.race([chat, call.ended.then(() => undefined)]);
    if (!ch) return;
    async function* reply() {
      yield 'hello alice, hitoshi here';
      await call.ended;
    }
    await runChat(ch, reply(), { onLine: (from, text) => from === 'remote' && lines.push(`hitoshi got: ${text}`) });
  };
}

/** alice's side: one chat line each way, then 48 KiB over a second channel, checked by hash. */
async function aliceTalks(call: ActiveCall, hitoshiLines: string[]): Promise<void> {
  expect(call.pair.local).toContain('127.0.0.1');
  expect(call.pair.remote).toContain('127.0.0.1');
  const ch = await within(10_000, 'the chat channel opens', call.session.openChannel('chat'));
  const got: string[] = [];
  async function* say() {
    yield 'hi hitoshi, sorry, the mail was slow';
    await waitFor('reply', () => got.length > 0);
  }
  const r = await within(30_000, 'the chat ends', runChat(ch, say(), { onLine: (from, text) => from === 'remote' && got.push(text) }));
  expect(r.ended).toBe('local-bye');
  expect(got).toEqual(['hello alice, hitoshi here']);
  await waitFor('hitoshi got the line', () => hitoshiLines.length > 0);
  expect(hitoshiLines).toEqual(['hitoshi got: hi hitoshi, sorry, the mail was slow']);

  const data = await within(10_000, 'the data channel opens', call.session.openChannel('data'));
  const payload = randomBytes(48 * 1024);
  const echoed = new Promise<string>((resolve) => data.onMessage((m) => resolve(String(m))));
  await within(10_000, 'the data is sent', data.send(payload));
  expect(await within(10_000, "hitoshi's hash of the data", echoed)).toBe(sha256(payload));
}

let pair: Pair | undefined;
beforeAll(async () => {
  ensureMailServers();
  pair = await aliceAndHitoshi('slow-mail', () => startMailStack({ users: ['alice', 'hitoshi'] }));
  ({ stack, dir, alice, hitoshi } = pair);
}, 120_000);

afterAll(async () => {
  await pair?.stop();
});

describe('mail is slow', () => {
  it('an answer held back 90 s in the mail queue still leads to a connection', async () => {
    const lines: string[] = [];
    const h = await agentOf(hitoshi, { onIncoming: hitoshiCarries(lines) });
    const a = await agentOf(alice);
    let held = false;
    try {
      await stack.holdDelivery({ from: hitoshi.email });
      held = true;
      let connectedAt = 0;
      const calling = a.agent.call('hitoshi', { purpose: 'chat', ringSeconds: 150 }).then((c) => {
        connectedAt = performance.now();
        return c;
      });
      calling.catch(() => undefined); // awaited below; not unhandled meanwhile

      // hitoshi answered at once: his answer left his outbox and sits in Postfix's hold queue
      await waitFor('hitoshi handed his answer to the mail server', () => statesSoFar(h.events, 'in').includes('connecting'), 60_000);
      await waitFor('the answer is in the queue', async () => (await stack.queueSize()) === 1, 20_000);
      const queuedAt = performance.now();
      expect(statesSoFar(h.events, 'in')).toEqual(['offer-received', 'answering', 'answer-queued', 'connecting']);

      await sleep(90_000 - (performance.now() - queuedAt));
      // still waiting on both sides, nothing gave up meanwhile
      expect(await stack.queueSize()).toBe(1);
      expect(statesSoFar(a.events, 'out')).toEqual(['gathering', 'offer-queued', 'offer-sent']);
      expect(statesSoFar(h.events, 'in').at(-1)).toBe('connecting');
      expect(endedStates(h.events, 'in')).toEqual([]);

      const heldMs = performance.now() - queuedAt;
      const releasedAt = performance.now();
      await stack.releaseDelivery();
      held = false;
      const call = await within(60_000, 'alice connected after the release', calling);
      const releaseToConnectedMs = Math.round(connectedAt - releasedAt);
      console.log(`answer held ${(heldMs / 1000).toFixed(1)} s: release -> connected ${releaseToConnectedMs} ms (caller setup ${call.setupMs} ms)`);

      await aliceTalks(call, lines);
      call.hangup();
      expect(await within(10_000, "alice's call ended", call.ended)).toBe('closed');
      await waitFor('hitoshi saw the hang-up', () => endedStates(h.events, 'in').length > 0);
      expect(endedStates(a.events, 'out')[0]).toEqual(['gathering', 'offer-queued', 'offer-sent', 'connecting', 'connected', 'closed']);
      expect(endedStates(h.events, 'in')[0]).toEqual(['offer-received', 'answering', 'answer-queued', 'connecting', 'connected', 'closed']);
    } catch (err) {
      explain(a.events, h.events);
      throw err;
    } finally {
      if (held) await stack.releaseDelivery().catch(() => undefined);
      await within(30_000, "alice's agent stopped", a.agent.stop());
      await within(30_000, "hitoshi's agent stopped", h.agent.stop());
    }
  }, 240_000);

  it('an offer that reaches hitoshi 60 s after it was sent still connects', async () => {
    const lines: string[] = [];
    const h = await agentOf(hitoshi, { onIncoming: hitoshiCarries(lines) });
    const a = await agentOf(alice);
    let held = false;
    try {
      await stack.holdDelivery({ from: alice.email });
      held = true;
      let connectedAt = 0;
      const calling = a.agent.call('hitoshi', { purpose: 'chat', ringSeconds: 150 }).then((c) => {
        connectedAt = performance.now();
        return c;
      });
      calling.catch(() => undefined);

      await waitFor('alice sent her offer', () => statesSoFar(a.events, 'out').includes('offer-sent'), 60_000);
      await waitFor('the offer is in the queue', async () => (await stack.queueSize()) === 1, 20_000);
      const queuedAt = performance.now();

      await sleep(60_000 - (performance.now() - queuedAt));
      expect(await stack.queueSize()).toBe(1);
      expect(statesSoFar(a.events, 'out')).toEqual(['gathering', 'offer-queued', 'offer-sent']);
      expect(statesSoFar(h.events, 'in')).toEqual([]);

      const heldMs = performance.now() - queuedAt;
      const releasedAt = performance.now();
      await stack.releaseDelivery();
      held = false;
      const call = await within(60_000, 'alice connected after the release', calling);
      const releaseToConnectedMs = Math.round(connectedAt - releasedAt);
      console.log(`offer held ${(heldMs / 1000).toFixed(1)} s: release -> connected ${releaseToConnectedMs} ms (caller setup ${call.setupMs} ms)`);

      await aliceTalks(call, lines);
      call.hangup();
      expect(await within(10_000, "alice's call ended", call.ended)).toBe('closed');
      await waitFor('hitoshi saw the hang-up', () => endedStates(h.events, 'in').length > 0);
      expect(endedStates(a.events, 'out')[0]).toEqual(['gathering', 'offer-queued', 'offer-sent', 'connecting', 'connected', 'closed']);
      expect(endedStates(h.events, 'in')[0]).toEqual(['offer-received', 'answering', 'answer-queued', 'connecting', 'connected', 'closed']);
      const log = await h.agent.account.calls.list();
      expect(log.filter((e) => e.callId === call.callId && e.direction === 'in' && e.outcome === 'connected')).toHaveLength(1);
    } catch (err) {
      explain(a.events, h.events);
      throw err;
    } finally {
      if (held) await stack.releaseDelivery().catch(() => undefined);
      await within(30_000, "alice's agent stopped", a.agent.stop());
      await within(30_000, "hitoshi's agent stopped", h.agent.stop());
    }
  }, 240_000);
});
