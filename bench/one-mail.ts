/**
 * Figure 1b: set-up of one-mail calls beside two-mail calls, interleaved in
 * one run, alice -> hitoshi through the real Postfix + Dovecot. Before each
 * one-mail call hitoshi's agent announces with a standing answer and alice's
 * agent has read it (not timed: it happens whenever hitoshi's address
 * changes, long before a call); the two-mail call right after it is placed
 * with `standing: false`. Set-up = agent.call() -> channel open.
 */
import { waitFor } from '../test/harness/peers.js';
import type { ActiveCall } from '../src/agent/phone-types.js';
import { log, now, sleep, summarize, type Summary } from './lib.js';
import { settled, stateAt, type RunningAgent } from './setup.js';

export interface OneMailResult {
  oneMail: Summary;
  twoMail: Summary;
  /** one-mail: offer queued -> connected (the mail leg and the connect) */
  oneMailOfferToConnected: Summary;
  /** calls that should have gone with one mail but went with two (a refused standing answer) */
  fellBack: number;
  failures: string[];
}

async function placeAndHangUp(caller: RunningAgent, callee: RunningAgent, calleeName: string, standing: boolean): Promise<{ ms: number; call: ActiveCall }> {
  const t0 = now();
  const call = await caller.agent.call(calleeName, { purpose: 'chat', standing });
  const ms = now() - t0;
  call.hangup();
  await call.ended;
  await waitFor('callee saw the end', () => callee.events.some((s) => s.e.type === 'ended' && s.e.callId === call.callId), 10_000, 10).catch(() => undefined);
  await Promise.all([settled(caller), settled(callee)]);
  return { ms, call };
}

export async function measureOneMail(caller: RunningAgent, callee: RunningAgent, callerEmail: string, calleeEmail: string, calleeName: string, n: number): Promise<OneMailResult> {
  const one: number[] = [];
  const two: number[] = [];
  const legs: number[] = [];
  const failures: string[] = [];
  let fellBack = 0;
  for (let i = 0; i < n; i++) {
    try {
      await callee.agent.announce({ to: [callerEmail], addresses: [{ ip: '192.0.2.10', source: 'interface', scope: 'documentation' }] });
      await waitFor('the caller holds a fresh standing answer', async () => (await caller.agent.account.standing.peek(calleeEmail))?.state === 'fresh', 30_000, 10);
      await Promise.all([settled(caller), settled(callee)]);
      await sleep(150);
      const a = await placeAndHangUp(caller, callee, calleeName, true);
      if (a.call.states.includes('connecting-one-mail')) {
        one.push(a.ms);
        const q = caller.events.find((s) => s.e.type === 'state' && s.e.callId === a.call.callId && s.e.state === 'connecting-one-mail')?.at;
        const c = stateAt(caller.events, a.call.callId, 'connected');
        if (q !== undefined && c !== undefined) legs.push(c - q);
      } else fellBack++;
      await sleep(150);
      const b = await placeAndHangUp(caller, callee, calleeName, false);
      two.push(b.ms);
      log(`one-mail vs two-mail ${i + 1}/${n}: ${Math.round(a.ms)} ms vs ${Math.round(b.ms)} ms`);
    } catch (err) {
      failures.push((err as Error).message);
      const said = [...caller.events, ...callee.events].filter((s) => s.e.type === 'error' || s.e.type === 'mail-rejected').map((s) => ('error' in s.e ? s.e.error.message : JSON.stringify(s.e)));
      log(`one-mail round ${i + 1}/${n} failed: ${(err as Error).message}${said.length ? ` (the agents said: ${said.slice(-3).join('; ')})` : ''}`);
    }
  }
  return { oneMail: summarize(one), twoMail: summarize(two), oneMailOfferToConnected: summarize(legs), fellBack, failures };
}

/**
 * Run alone (`node bench/.build/bench/one-mail.js`, after `tsc -p
 * bench/tsconfig.json`): the figure without the rest of the benchmark
 * (which needs the Delta Chat RPC server installed). BENCH_ONEMAIL_CALLS
 * sets the number of rounds (default 10).
 */
async function standalone(): Promise<void> {
  const { ensureMailServers } = await import('../test/harness/system.js');
  const { startMailStack } = await import('../test/harness/mail-stack.js');
  const { introduce, makePeer, tempDir } = await import('../test/harness/peers.js');
  const { startAgent } = await import('./setup.js');
  const { fmt } = await import('./lib.js');
  const { promises: fs } = await import('node:fs');
  ensureMailServers();
  const stack = await startMailStack({ users: ['alice', 'hitoshi'] });
  const dir = await tempDir('bench-onemail');
  try {
    const alice = await makePeer(stack, 'alice', dir, { ringSeconds: 30 });
    const hitoshi = await makePeer(stack, 'hitoshi', dir, { answer: 'auto-answer', ringSeconds: 30 });
    await introduce(alice, hitoshi);
    const h = await startAgent(hitoshi);
    const a = await startAgent(alice);
    try {
      const n = Number(process.env.BENCH_ONEMAIL_CALLS ?? 10);
      const r = await measureOneMail(a, h, alice.email, hitoshi.email, 'hitoshi', n);
      const row = (s: Summary) => `${fmt(s.p50)} | ${fmt(s.p95)} | ${fmt(s.min)} | ${fmt(s.max)} | ${s.n}`;
      process.stdout.write(`\n| figure | median | p95 | min | max | n |\n|---|---|---|---|---|---|\n`);
      process.stdout.write(`| two-mail call set-up, agent.call() -> channel open (ms) | ${row(r.twoMail)} |\n`);
      process.stdout.write(`| one-mail call set-up, agent.call() -> channel open (ms) | ${row(r.oneMail)} |\n`);
      process.stdout.write(`| of the one-mail set-up: offer queued -> connected (ms) | ${row(r.oneMailOfferToConnected)} |\n`);
      process.stdout.write(`\nratio one-mail / two-mail (medians): ${fmt(r.oneMail.p50 / r.twoMail.p50, 2)}; fell back to two mails: ${r.fellBack}; failed: ${r.failures.length}\n`);
    } finally {
      await a.stop();
      await h.stop();
    }
  } finally {
    await stack.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('one-mail.js')) {
  standalone().catch((err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  });
}
