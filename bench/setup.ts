/**
 * Figures 1 and 5 (and peerdial's leg of figure 6): calls placed with
 * Agent.call() through the real Postfix + Dovecot, the callee's agent idling
 * on IDLE; the mail floor measured between the calls.
 */
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { randomBytes } from 'node:crypto';
import type { MailStack } from '../test/harness/mail-stack.js';
import { waitFor, type Peer } from '../test/harness/peers.js';
import { Agent, type AgentEvent } from '../src/agent/agent.js';
import type { ActiveCall } from '../src/agent/phone-types.js';
import { log, now, sleep, summarize, type Summary } from './lib.js';

export interface Stamped {
  at: number;
  e: AgentEvent;
}

export interface RunningAgent {
  agent: Agent;
  events: Stamped[];
  stop(): Promise<void>;
}

/** Starts a peer's agent in this process; holds incoming calls until they end. */
export async function startAgent(peer: Peer): Promise<RunningAgent> {
  const events: Stamped[] = [];
  const agent = new Agent({
    account: await peer.open(),
    onEvent: (e) => events.push({ at: now(), e }),
    onIncoming: async (call: ActiveCall) => {
      await call.ended;
    },
  });
  agent.start();
  await waitFor(`${peer.name}'s agent idling`, () => events.some((s) => s.e.type === 'idle'), 30_000, 10);
  return { agent, events, stop: () => agent.stop() };
}

/** When a call's machine entered `state` (first time), from the agent's events. */
export function stateAt(events: Stamped[], callId: string, state: string): number | undefined {
  return events.find((s) => s.e.type === 'state' && s.e.callId === callId && s.e.state === state)?.at;
}

/**
 * Waits until the agent has settled after a call: the ending's mail (if
 * any) handled and back in IDLE. Quiet = no event for 400 ms and the last
 * mailbox event is 'idle' (at most 5 s).
 */
export async function settled(a: RunningAgent): Promise<void> {
  const deadline = now() + 5_000;
  for (;;) {
    const last = a.events.at(-1);
    const lastMailbox = [...a.events].reverse().find((s) => s.e.type === 'idle' || s.e.type === 'checked');
    if ((!last || now() - last.at > 400) && (!lastMailbox || lastMailbox.e.type === 'idle')) return;
    if (now() > deadline) return;
    await sleep(50);
  }
}

/**
 * The mail floor: SMTP submission (a fresh connection with STARTTLS + AUTH,
 * as peerdial's outbox does) of a small mail -> the EXISTS of the IDLE at
 * the other side.
 */
export class MailFloor {
  private client?: ImapFlow;
  private waiting?: (at: number) => void;
  /** SMTP submission alone (connect, STARTTLS, AUTH, DATA accepted), per measurement */
  readonly submitMs: number[] = [];

  constructor(private readonly stack: MailStack, private readonly from: string, private readonly to: string) {}

  async start(): Promise<void> {
    const client = new ImapFlow({ ...this.stack.imapConfig(this.to), logger: false, disableAutoIdle: true });
    client.on('error', () => undefined);
    await client.connect();
    await client.mailboxOpen('INBOX');
    client.on('exists', () => this.waiting?.(now()));
    this.client = client;
    void client.idle().catch(() => undefined);
    await sleep(200);
  }

  async measure(): Promise<number> {
    const transport = nodemailer.createTransport(this.stack.smtpConfig(this.from));
    const got = new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('mail floor: no EXISTS within 20 s')), 20_000);
      this.waiting = (at) => {
        clearTimeout(t);
        this.waiting = undefined;
        resolve(at);
      };
    });
    const t0 = now();
    const u = this.stack.users;
    const info = transport.sendMail({
      from: u[this.from]!.email,
      to: u[this.to]!.email,
      subject: 'floor',
      text: randomBytes(600).toString('base64'),
    });
    await info;
    this.submitMs.push(now() - t0);
    const at = await got;
    transport.close();
    return at - t0;
  }

  async stop(): Promise<void> {
    await this.client?.logout().catch(() => this.client?.close());
  }
}

export interface CallRun {
  setupMs: number;
  gatherMs: number;
  /** caller offer-queued -> callee offer-received (the verified offer is in the callee's agent) */
  offerLegMs: number;
  /** callee answer-queued -> caller connecting (answer applied) */
  answerLegMs: number;
  /** caller connecting -> connected: ICE + DTLS + SCTP + control channel open */
  connectMs: number;
}

export interface SetupResult {
  runs: CallRun[];
  floors: number[];
  setup: Summary;
  floor: Summary;
  connect: Summary;
  offerLeg: Summary;
  answerLeg: Summary;
  gather: Summary;
  /** setup / (2 x median floor + this run's connect) */
  ratio: Summary;
  stallThresholdMs: number;
  stalls: number;
  slowSetups: number;
  failures: string[];
}

/** Figure 1: `n` calls alice -> hitoshi, one after another, with a floor measurement before each. */
export async function measureSetup(caller: RunningAgent, callee: RunningAgent, calleeName: string, floor: MailFloor, n: number): Promise<SetupResult> {
  const runs: CallRun[] = [];
  const floors: number[] = [];
  const failures: string[] = [];
  for (let i = 0; i < n; i++) {
    floors.push(await floor.measure());
    await sleep(150);
    const t0 = now();
    let call: ActiveCall;
    try {
      call = await caller.agent.call(calleeName, { purpose: 'chat' });
    } catch (err) {
      failures.push((err as Error).message);
      log(`call ${i + 1}/${n} failed: ${(err as Error).message}`);
      continue;
    }
    const t1 = now();
    const ev = caller.events;
    const g = stateAt(ev, call.callId, 'offer-queued');
    const conn = stateAt(ev, call.callId, 'connecting');
    const connected = stateAt(ev, call.callId, 'connected') ?? t1;
    const recv = stateAt(callee.events, call.callId, 'offer-received');
    const aq = stateAt(callee.events, call.callId, 'answer-queued');
    runs.push({
      setupMs: t1 - t0,
      gatherMs: (g ?? t0) - t0,
      offerLegMs: recv !== undefined && g !== undefined ? recv - g : NaN,
      answerLegMs: aq !== undefined && conn !== undefined ? conn - aq : NaN,
      connectMs: conn !== undefined ? connected - conn : NaN,
    });
    call.hangup();
    await call.ended;
    await waitFor('callee saw the end', () => callee.events.some((s) => s.e.type === 'ended' && s.e.callId === call.callId), 10_000, 10).catch(() => undefined);
    await Promise.all([settled(caller), settled(callee)]);
  }
  const floorSum = summarize(floors);
  const stallThresholdMs = 900;
  return {
    runs,
    floors,
    setup: summarize(runs.map((r) => r.setupMs)),
    floor: floorSum,
    connect: summarize(runs.map((r) => r.connectMs).filter((x) => !Number.isNaN(x))),
    offerLeg: summarize(runs.map((r) => r.offerLegMs).filter((x) => !Number.isNaN(x))),
    answerLeg: summarize(runs.map((r) => r.answerLegMs).filter((x) => !Number.isNaN(x))),
    gather: summarize(runs.map((r) => r.gatherMs)),
    ratio: summarize(runs.map((r) => r.setupMs / (2 * floorSum.p50 + (Number.isNaN(r.connectMs) ? 0 : r.connectMs)))),
    stallThresholdMs,
    stalls: runs.filter((r) => r.connectMs > stallThresholdMs).length,
    slowSetups: runs.filter((r) => r.setupMs > 2 * floorSum.p50 + stallThresholdMs).length,
    failures,
  };
}

export interface ConcurrencyResult {
  calls: number;
  rounds: number;
  connected: number;
  setup: Summary;
  /** the same calls' setup / the sequential setup median */
  failures: string[];
}

/** Figure 5: `callers.length` calls placed at the same moment into one agent. */
export async function measureConcurrency(callers: RunningAgent[], callee: RunningAgent, calleeName: string, rounds: number): Promise<ConcurrencyResult> {
  const setups: number[] = [];
  const failures: string[] = [];
  let connected = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = now();
    const results = await Promise.allSettled(
      callers.map(async (c) => {
        const call = await c.agent.call(calleeName, { purpose: 'chat' });
        return { call, ms: now() - t0 };
      }),
    );
    const calls: ActiveCall[] = [];
    for (const res of results) {
      if (res.status === 'fulfilled') {
        connected++;
        setups.push(res.value.ms);
        calls.push(res.value.call);
      } else failures.push((res.reason as Error).message);
    }
    for (const c of calls) c.hangup();
    await Promise.all(calls.map((c) => c.ended));
    await waitFor('callee has no call left', () => callee.agent.phone.activeCount() === 0, 20_000, 20).catch(() => undefined);
    await Promise.all([callee, ...callers].map((a) => settled(a)));
  }
  return { calls: callers.length * rounds, rounds, connected, setup: summarize(setups), failures };
}
