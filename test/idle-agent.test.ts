/**
 * An idle agent keeps what IDLE needs and nothing else (issue 17): hitoshi
 * runs his agent as `peerdial agent` does (control socket, address watch)
 * on the real Postfix + Dovecot and nobody calls. Every timer the process
 * arms is recorded (setTimeout / setInterval, and sockets' inactivity
 * timeouts). Once he idles, the timers still pending are exactly imapflow's
 * re-IDLE (idle_seconds) and nothing on a schedule besides: no outbox
 * re-drain, no poll, no summary. The IDLE connection's liveness check is
 * its socket's inactivity timeout, a minute past the re-IDLE. What the
 * timers used to do still happens, on events: a message `peerdial
 * message` queues beside the running agent goes out on the poke, and
 * alice's mail is seen through IDLE.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { Agent, type AgentEvent } from '../src/agent/agent.js';
import { leaveMessage } from '../src/api/messages.js';
import { LIVENESS_MARGIN_MS } from '../src/mail/imap.js';
import type { MailStack } from './harness/mail-stack.js';
import { mailboxSnapshot, waitFor, type Peer } from './harness/peers.js';
import { introducedPeers } from './harness/scene.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;

introducedPeers('idle-agent', { alice: {}, hitoshi: {} }, async (s) => {
  stack = s.stack;
  dir = s.dir;
  alice = s.peers.alice!;
  hitoshi = s.peers.hitoshi!;
});

interface Armed {
  kind: 'timeout' | 'interval';
  ms: number;
  where: string;
}

/** Records every timer armed from now on that has not fired or been cleared yet. */
function timerCensus(): { pending: () => Armed[]; socketTimeouts: number[]; restore: () => void } {
  const pending = new Map<unknown, Armed>();
  const socketTimeouts: number[] = [];
  const g = globalThis as unknown as Record<string, (...a: unknown[]) => unknown>;
  const orig = { setTimeout: g.setTimeout!, setInterval: g.setInterval!, clearTimeout: g.clearTimeout!, clearInterval: g.clearInterval! };
  const where = () => (new Error().stack ?? '').split('\n').slice(3, 6).map((l) => l.trim()).join(' < ');
  g.setTimeout = function (fn: unknown, ms?: unknown, ...rest: unknown[]) {
    const entry: Armed = { kind: 'timeout', ms: Number(ms ?? 0), where: where() };
    const t = orig.setTimeout.call(globalThis, (...a: unknown[]) => {
      pending.delete(t);
      (fn as (...a: unknown[]) => void)(...a);
    }, ms, ...rest);
    pending.set(t, entry);
    return t;
  };
  g.setInterval = function (fn: unknown, ms?: unknown, ...rest: unknown[]) {
    const t = orig.setInterval.call(globalThis, fn, ms, ...rest);
    pending.set(t, { kind: 'interval', ms: Number(ms ?? 0), where: where() });
    return t;
  };
  g.clearTimeout = function (t: unknown) {
    pending.delete(t);
    return orig.clearTimeout.call(globalThis, t);
  };
  g.clearInterval = function (t: unknown) {
    pending.delete(t);
    return orig.clearInterval.call(globalThis, t);
  };
  const sockSetTimeout = net.Socket.prototype.setTimeout;
  net.Socket.prototype.setTimeout = function (this: net.Socket, ms: number, cb?: () => void) {
    if (ms > 0) socketTimeouts.push(ms);
    return sockSetTimeout.call(this, ms, cb);
  };
  return {
    pending: () => [...pending.values()],
    socketTimeouts,
    restore: () => {
      Object.assign(g, orig);
      net.Socket.prototype.setTimeout = sockSetTimeout;
    },
  };
}

describe('hitoshi leaves his agent running and nobody calls', () => {
  it('idling, it holds the re-IDLE and the liveness check only; queued mail and new mail still move, on events', async () => {
    const acc = await hitoshi.open();
    const idleMs = acc.config.idleSeconds * 1000;
    // a fresh account re-issues IDLE under the 29 minutes servers allow, not every few minutes
    expect(acc.config.idleSeconds).toBeGreaterThan(20 * 60);
    expect(acc.config.idleSeconds).toBeLessThan(29 * 60);
    const census = timerCensus();
    const events: AgentEvent[] = [];
    const agent = new Agent({ account: acc, onEvent: (e) => events.push(e), control: 'serve', addressWatch: {} });
    try {
      await agent.serveControl();
      agent.start();
      await waitFor("hitoshi's agent idling", () => events.some((e) => e.type === 'idle'));
      // start-up's own timers (connect and greeting limits) are cleared once it is done; what stays is scheduled work
      const scheduled = () => census.pending().filter((t) => t.kind === 'interval' || t.ms >= 1_000);
      await waitFor('only the re-IDLE pending', () => scheduled().length === 1, 30_000).catch(() => undefined);
      const left = scheduled();
      expect(left, JSON.stringify(left, null, 1)).toHaveLength(1);
      expect(left[0]).toMatchObject({ kind: 'timeout', ms: idleMs });
      // the IDLE connection's liveness check: its socket's inactivity timeout, past the re-IDLE
      expect(census.socketTimeouts).toContain(idleMs + LIVENESS_MARGIN_MS);

      // `peerdial message` beside the running agent: queued, poked, sent (no timer had to come round)
      const r = await leaveMessage(await hitoshi.open(), alice.email, { text: 'still here?' });
      expect(r.sent).toBe(false);
      await waitFor('the message sent by the agent', () => events.some((e) => e.type === 'sent' && e.kind === 'message'));
      await waitFor('the message in alice\'s INBOX', async () => (await mailboxSnapshot(stack, 'alice')).length > 0);

      // alice writes back: IDLE brings it
      const aliceAcc = await alice.open();
      await leaveMessage(aliceAcc, hitoshi.email, { text: 'yes' });
      await waitFor('hitoshi has alice\'s message', () => events.some((e) => e.type === 'message' && e.message.from === alice.email));
    } finally {
      await agent.stop();
      census.restore();
    }
  });
});
