/**
 * A long-running agent: alice calls hitoshi 50 times in a row on the real
 * Postfix + Dovecot, one agent each for the whole run. Every call connects
 * (loopback), carries one message over a channel of its own, and is hung up.
 * Neither agent may crash (node-datachannel's cleanup() once segfaulted
 * after 40+ cycles, notes/webrtc.md), leak sessions, or grow its memory
 * without bound. Every call is placed once by the test (the phone itself
 * makes at most one fresh offer for a connection that failed without timing
 * out, and says so in the states; counted and printed): a call that fails is counted, the run goes on, and the test
 * fails at the end with every failure listed.
 * PEERDIAL_SOAK_CALLS=<n> places n calls instead of 50 (`npm run soak` uses
 * it under load).
 */
import { getEventListeners } from 'node:events';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { waitFor, type Peer, aliceAndHitoshi, type Pair } from './harness/peers.js';
import { agentOf, endedStates } from './harness/agents.js';
import { Agent, type AgentEvent } from '../src/agent/agent.js';
import type { ActiveCall } from '../src/agent/phone-types.js';
import { liveSessionCount } from '../src/session/index.js';

const CALLS = Math.max(10, Number(process.env.PEERDIAL_SOAK_CALLS ?? 50));
const MiB = 1024 * 1024;
/** RSS may grow this much from call 10 to call 50; anything more is a leak worth a look. */
const RSS_GROWTH_BOUND = 150 * MiB;

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;



/** global.gc when node runs with --expose-gc; otherwise the same function, exposed at run time. */
function collector(): (() => void) | undefined {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}

function rss(): number {
  const gc = collector();
  gc?.();
  gc?.();
  return process.memoryUsage().rss;
}

const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

/** Listeners on the agent's own abort signal: they must not pile up call after call. */
function abortListeners(agent: Agent): number {
  const ac = (agent as unknown as { ac?: AbortController }).ac;
  return ac ? getEventListeners(ac.signal, 'abort').length : -1;
}

let pair: Pair | undefined;
beforeAll(async () => {
  ensureMailServers();
  pair = await aliceAndHitoshi('call-soak', () => startMailStack({ users: ['alice', 'hitoshi'] }));
  ({ stack, dir, alice, hitoshi } = pair);
}, 120_000);

afterAll(async () => {
  await pair?.stop();
});

describe('a long-running agent', () => {
  it(`${CALLS} calls in a row in one agent neither crash nor grow memory without bound`, async () => {
    const received: string[] = [];
    const h = await agentOf(hitoshi, {
      onIncoming: async (call: ActiveCall) => {
        call.session.onChannel((ch) => {
          if (ch.label === 'soak') ch.onMessage((m) => received.push(String(m)));
        });
        await call.ended;
      },
    });
    const a = await agentOf(alice);
    const failures: string[] = [];
    /** Fresh offers the phone made by itself (a connection that failed without timing out); the callee ends the first attempt. */
    const reoffers = () => endedStates(a.events, 'out').filter((s) => s.filter((x) => x === 'gathering').length === 2).length;
    const setupMs: number[] = [];
    let connected = 0;
    let rssAfter10 = 0;
    let rssAfter50 = 0;
    const t0 = performance.now();
    try {
      for (let i = 1; i <= CALLS; i++) {
        let call: ActiveCall;
        try {
          call = await a.agent.call('hitoshi');
        } catch (err) {
          failures.push(`call ${i}: ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
          // hitoshi's side of the failed call ends too (its session failed, or alice's hang-up mail arrives)
          await waitFor(`hitoshi's side of failed call ${i} ended`, () => endedStates(h.events, 'in').length >= i + reoffers(), 200_000, 100);
          continue;
        }
        connected++;
        setupMs.push(call.setupMs);
        expect(call.pair.local).toContain('127.0.0.1');
        const ch = await call.session.openChannel('soak');
        await ch.send(`call ${i}`);
        await waitFor(`hitoshi got the message of call ${i}`, () => received.includes(`call ${i}`));
        call.hangup();
        expect(await call.ended).toBe('closed');
        await waitFor(`hitoshi's side of call ${i} ended`, () => endedStates(h.events, 'in').length >= i + reoffers());
        if (i === 10) rssAfter10 = rss();
      }
      rssAfter50 = rss();
      const seconds = (performance.now() - t0) / 1000;
      const sorted = [...setupMs].sort((x, y) => x - y);
      console.log(
        `${CALLS} calls in ${seconds.toFixed(1)} s (${(seconds / CALLS).toFixed(2)} s a call); ` +
          `setup p50 ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms; ` +
          `RSS after call 10 ${mib(rssAfter10)}, after call ${CALLS} ${mib(rssAfter50)} (growth ${mib(rssAfter50 - rssAfter10)}, gc ${collector() ? 'yes' : 'no'}); ` +
          `failed calls ${failures.length}${failures.length ? `: ${failures.join('; ')}` : ''}; ` +
          `abort listeners on the agents' signals: alice ${abortListeners(a.agent)}, hitoshi ${abortListeners(h.agent)}`,
      );

      expect(failures).toEqual([]);
      expect(connected).toBe(CALLS);
      expect(received).toEqual(Array.from({ length: CALLS }, (_, k) => `call ${k + 1}`));
      expect(rssAfter50 - rssAfter10).toBeLessThan(RSS_GROWTH_BOUND);
      // nothing piles up per call on the agents' long-lived signals
      expect(abortListeners(a.agent)).toBeLessThanOrEqual(2);
      expect(abortListeners(h.agent)).toBeLessThanOrEqual(2);

      const outs = endedStates(a.events, 'out');
      const ins = endedStates(h.events, 'in');
      // One call each; a call whose connection failed made one fresh offer by
      // itself (same call), and the callee ended the first attempt as failed.
      const plain = ['gathering', 'offer-queued', 'offer-sent', 'connecting', 'connected', 'closed'];
      const reoffered = ['gathering', 'offer-queued', 'offer-sent', 'connecting', 'gathering', 'offer-queued', 'offer-sent', 'connecting', 'connected', 'closed'];
      expect(outs).toHaveLength(CALLS);
      for (const s of outs) expect([plain, reoffered]).toContainEqual(s);
      console.log(`fresh offers made by the phone itself: ${reoffers()}`);
      const full = (s: string[]) => s.at(-2) === 'connected' && s.at(-1) === 'closed';
      expect(ins).toHaveLength(CALLS + reoffers());
      for (const s of ins.filter(full)) expect(s).toEqual(['offer-received', 'answering', 'answer-queued', 'connecting', 'connected', 'closed']);
      expect(ins.filter(full)).toHaveLength(CALLS);

      expect(a.agent.phone.activeCount()).toBe(0);
      expect(h.agent.phone.activeCount()).toBe(0);
      await waitFor('every session closed', () => liveSessionCount() === 0, 5_000);
      expect(liveSessionCount()).toBe(0);

      const log = await a.agent.account.calls.list();
      expect(log.filter((e) => e.direction === 'out' && e.peer === hitoshi.email && e.outcome === 'connected')).toHaveLength(CALLS);
      expect(log.filter((e) => e.direction === 'out' && e.outcome === 'hung-up' && e.detail === 'by the caller')).toHaveLength(CALLS);
    } finally {
      await a.agent.stop();
      await h.agent.stop();
    }
    expect(liveSessionCount()).toBe(0);
  }, Math.max(900_000, CALLS * 20_000));
});
