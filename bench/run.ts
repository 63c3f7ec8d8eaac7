/**
 * `npm run bench`: starts its own Dovecot + Postfix on loopback, measures
 * the figures of BENCHMARKS.md, each against a baseline taken in the same
 * run, prints a table (markdown) and writes bench/results.json.
 *
 * Environment:
 *   BENCH_QUICK=1           small sizes and few repeats (a smoke run of ~3 min)
 *   BENCH_ONLY=a,b          only these sections: startup, setup, onemail, mailleg, concurrency, deltachat, idle, mailbox, bulk, media
 *   BENCH_ONEMAIL_CALLS=10  one-mail calls (each beside a two-mail call) for figure 1b
 *   BENCH_LEG_ROUNDS=10     mails of the mail-leg split, per way of waiting
 *   BENCH_STARTUP_RUNS=15   cold starts of each command (bench/startup.mjs)
 *   BENCH_MEDIA_SECONDS=10  how long the camera streams for the media figures
 *   BENCH_CALLS=20          sequential calls for the set-up figure
 *   BENCH_BULK_MIB=1024     size of the bulk transfers (MiB)
 *   BENCH_BULK_RUNS=3       repeats of each bulk transfer
 *   BENCH_TRY_MIB=256       size of each raw DataChannel try
 *   BENCH_IDLE_MINUTES=10   idle window (bench/idle.mjs), after
 *   BENCH_IDLE_SETTLE=N     start the idle window N s after IDLE (default: once quiet for a minute)
 *   BENCH_SCALE=100,10000,100000   mailbox sizes
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureMailServers } from '../test/harness/system.js';
import { startMailStack, type MailStack } from '../test/harness/mail-stack.js';
import { introduce, makePeer, tempDir, type Peer } from '../test/harness/peers.js';
import { CLI, GiB, HERE, MiB, QUICK, REPO, envInt, fmt, log, now, round, sizeText, startNode, stopChild, summarize, type Summary } from './lib.js';
import { MailFloor, measureConcurrency, measureSetup, settled, startAgent, type RunningAgent } from './setup.js';
import { cliPipe, cliSend, makeSource, rawDataChannel, summarizeTransfers, tcpCopy, type RawVariant, type TransferRun, type TransferSummary } from './bulk.js';
import { fillMaildir, measureScale, type ScaleResult } from './mailbox.js';
import { measureMedia } from './media.js';
import { LEG_PARTS, measureMailLeg, type MailLegResult } from './mail-leg.js';
import { measureOneMail } from './one-mail.js';

const SECTIONS = ['startup', 'setup', 'onemail', 'mailleg', 'concurrency', 'deltachat', 'idle', 'mailbox', 'bulk', 'media'] as const;
type Section = (typeof SECTIONS)[number];
const only = (process.env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean);
for (const s of only) if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`BENCH_ONLY: unknown section ${s} (known: ${SECTIONS.join(', ')})`);
const wanted = (s: Section) => only.length === 0 || only.includes(s);

const settings = {
  quick: QUICK,
  calls: envInt('BENCH_CALLS', QUICK ? 6 : 20),
  oneMailCalls: envInt('BENCH_ONEMAIL_CALLS', QUICK ? 4 : 10),
  cliCalls: envInt('BENCH_CLI_CALLS', QUICK ? 2 : 5),
  concurrent: envInt('BENCH_CONCURRENT', 20),
  concurrentRounds: envInt('BENCH_CONCURRENT_ROUNDS', QUICK ? 1 : 2),
  deltachatCalls: envInt('BENCH_DC_CALLS', QUICK ? 4 : 10),
  idleMinutes: envInt('BENCH_IDLE_MINUTES', QUICK ? 1 : 10),
  // unset: the window starts once the agent was quiet for a minute (bench/idle.mjs)
  idleSettleSeconds: process.env.BENCH_IDLE_SETTLE || QUICK ? envInt('BENCH_IDLE_SETTLE', 30) : undefined,
  scale: (process.env.BENCH_SCALE ?? (QUICK ? '100,10000' : '100,10000,100000')).split(',').map(Number),
  scaleRepeats: envInt('BENCH_SCALE_REPEATS', QUICK ? 7 : 15),
  bulkBytes: envInt('BENCH_BULK_MIB', QUICK ? 64 : 1024) * MiB,
  bulkRuns: envInt('BENCH_BULK_RUNS', QUICK ? 2 : 3),
  tryBytes: envInt('BENCH_TRY_MIB', QUICK ? 32 : 256) * MiB,
  tryRuns: envInt('BENCH_TRY_RUNS', QUICK ? 1 : 3),
  mediaSeconds: envInt('BENCH_MEDIA_SECONDS', QUICK ? 5 : 10),
  startupRuns: envInt('BENCH_STARTUP_RUNS', QUICK ? 7 : 15),
  legRounds: envInt('BENCH_LEG_ROUNDS', QUICK ? 4 : 10),
};

interface Row {
  fig: string;
  figure: string;
  unit: string;
  s?: Summary;
  /** a single value instead of a summary */
  value?: string;
  baseline?: string;
  baselineValue?: number;
  ratio?: number;
  ratioRange?: [number, number];
  note?: string;
}

const rows: Row[] = [];
const results: Record<string, unknown> = {};
const errors: Record<string, string> = {};

function ratioRow(fig: string, figure: string, unit: string, s: Summary, baselineName: string, base: number, note?: string, higherIsBetter = false): void {
  rows.push({ fig, figure, unit, s, baseline: `${baselineName}: ${fmt(base, base < 10 ? 2 : 0)}`, baselineValue: base, ratio: s.p50 / base, ...(note ? { note } : {}) });
  void higherIsBetter;
}

async function machine(): Promise<Record<string, unknown>> {
  const cpus = os.cpus();
  return {
    nproc: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: round(os.totalmem() / GiB, 1),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    loadavgAtStart: os.loadavg().map((x) => round(x, 2)),
  };
}

async function section<T>(name: Section, fn: () => Promise<T>): Promise<T | undefined> {
  if (!wanted(name)) return undefined;
  const t0 = now();
  log(`--- ${name}`);
  try {
    const r = await fn();
    log(`--- ${name} done in ${Math.round((now() - t0) / 1000)} s`);
    return r;
  } catch (err) {
    errors[name] = (err as Error).stack ?? String(err);
    log(`--- ${name} FAILED: ${(err as Error).message}`);
    return undefined;
  }
}

function printTable(): string {
  const head = ['#', 'figure', 'median', 'p95', 'min', 'max', 'n', 'baseline (median)', 'ratio', 'note'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const d = r.unit === 'ms' || r.unit === 'MB/s' ? 0 : 2;
    const cells = [
      r.fig,
      `${r.figure}${r.unit ? ` (${r.unit})` : ''}`,
      r.s ? fmt(r.s.p50, d) : (r.value ?? ''),
      r.s ? fmt(r.s.p95, d) : '',
      r.s ? fmt(r.s.min, d) : '',
      r.s ? fmt(r.s.max, d) : '',
      r.s ? String(r.s.n) : '',
      r.baseline ?? '',
      r.ratio !== undefined ? `${fmt(r.ratio, r.ratio < 0.1 ? 3 : 2)}${r.ratioRange ? ` (${fmt(r.ratioRange[0], 2)}-${fmt(r.ratioRange[1], 2)})` : ''}` : '',
      r.note ?? '',
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const started = new Date();
  const t0 = now();
  log(`peerdial benchmark${QUICK ? ' (BENCH_QUICK=1: reduced sizes and repeats)' : ''}; settings ${JSON.stringify({ ...settings, bulkBytes: sizeText(settings.bulkBytes), tryBytes: sizeText(settings.tryBytes) })}`);
  ensureMailServers();
  const callers = Array.from({ length: settings.concurrent }, (_, i) => `c${String(i + 1).padStart(2, '0')}`);
  const bigNames = settings.scale.map((n) => `big${n}`);
  const users = ['alice', 'hitoshi', 'floora', 'floorb', 'legalice', 'leghitoshi', 'idlebase', 'dcalice', 'dcbob', ...bigNames, ...callers];
  const stack: MailStack = await startMailStack({ users });
  const dir = await tempDir('bench');
  await fs.chmod(dir, 0o755);
  const agents: RunningAgent[] = [];
  try {
    log(`mail stack up (${users.length} users) on 127.0.0.1 imap ${stack.imapPort} smtp ${stack.smtpPort}`);
    const alice = await makePeer(stack, 'alice', dir, { ringSeconds: 30 });
    const hitoshi = await makePeer(stack, 'hitoshi', dir, { answer: 'auto-answer', ringSeconds: 30 });
    // contacts with each other's keys: offers and answers go only encrypted
    await introduce(alice, hitoshi);

    // ------------------------------------------------------------ S. start-up
    // bench/startup.mjs: cold processes, interleaved, with its own throw-away config
    results.startup = await section('startup', async () => {
      const out = execFileSync(process.execPath, [path.join(REPO, 'bench', 'startup.mjs'), '--json'], { env: { ...process.env, BENCH_STARTUP_RUNS: String(settings.startupRuns) }, encoding: 'utf8' });
      const r = JSON.parse(out) as { results: ({ command: string; ratio: number } & Summary)[] };
      const [base, ...cmds] = r.results;
      rows.push({ fig: 'S', figure: `${base!.command} (a cold node process)`, unit: 'ms', s: base! });
      for (const c of cmds) ratioRow('S', `${c.command} from a cold process`, 'ms', c, '`node -e 0`', base!.p50, 'interleaved runs; the process starts, prints and exits');
      return r;
    });

    // ------------------------------------------------------------ 1. call set-up
    let seqSetupP50: number | undefined;
    const setup = await section('setup', async () => {
      const floor = new MailFloor(stack, 'floora', 'floorb');
      await floor.start();
      const h = await startAgent(hitoshi);
      agents.push(h);
      const a = await startAgent(alice);
      agents.push(a);
      try {
        const r = await measureSetup(a, h, 'hitoshi', floor, settings.calls);
        seqSetupP50 = r.setup.p50;
        log(`setup p50 ${fmt(r.setup.p50)} ms, floor p50 ${fmt(r.floor.p50)} ms, connect p50 ${fmt(r.connect.p50)} ms, stalls ${r.stalls}`);
        ratioRow('1', 'call setup, agent.call() -> channel open', 'ms', r.setup, '2 x floor + connect', 2 * r.floor.p50 + r.connect.p50, `ratio per run: ${fmt(r.ratio.min, 2)}-${fmt(r.ratio.max, 2)}, p95 ${fmt(r.ratio.p95, 2)}`);
        rows[rows.length - 1]!.ratio = r.ratio.p50;
        rows.push({ fig: '1', figure: 'mail floor, SMTP submit -> IDLE EXISTS', unit: 'ms', s: r.floor, note: 'fresh SMTP connection (STARTTLS + AUTH) each time, as the outbox does' });
        rows.push({ fig: '1', figure: 'of the floor: SMTP submission (connect, STARTTLS, AUTH, DATA accepted)', unit: 'ms', s: summarize(floor.submitMs) });
        rows.push({ fig: '1', figure: 'connect, answer applied -> channel open', unit: 'ms', s: r.connect });
        rows.push({ fig: '1', figure: 'offer leg, offer queued -> callee has verified offer', unit: 'ms', s: r.offerLeg, baseline: `floor: ${fmt(r.floor.p50)}`, baselineValue: r.floor.p50, ratio: r.offerLeg.p50 / r.floor.p50 });
        rows.push({ fig: '1', figure: 'answer leg, answer queued -> caller applies it', unit: 'ms', s: r.answerLeg, baseline: `floor: ${fmt(r.floor.p50)}`, baselineValue: r.floor.p50, ratio: r.answerLeg.p50 / r.floor.p50 });
        rows.push({ fig: '1', figure: `DTLS stalls (connect > ${r.stallThresholdMs} ms)`, unit: '', value: `${r.stalls} of ${r.runs.length}`, note: `setups > 2 x floor + ${r.stallThresholdMs} ms: ${r.slowSetups}; failed calls: ${r.failures.length}` });

        // the same through the real CLI: process start, IMAP login, call; a
        // chat call with stdin at EOF hangs up by itself once connected
        await a.stop();
        agents.splice(agents.indexOf(a), 1);
        const cli: number[] = [];
        const reported: number[] = [];
        const lifetimes: number[] = [];
        const offerSent: number[] = [];
        const nodeBare: number[] = [];
        for (let i = 0; i < settings.cliCalls; i++) {
          // the baseline of "offer sent": a bare node process, same round
          const n0 = now();
          execFileSync(process.execPath, ['-e', '0']);
          nodeBare.push(now() - n0);
          const s = now();
          const p = startNode(CLI, ['--config', alice.configFile, 'call', 'hitoshi'], { stdio: ['ignore', 'ignore', 'pipe'] });
          try {
            const sent = p.waitStderr(/offer sent by mail/, 60_000);
            sent.catch(() => undefined); // awaited below; the "connected" wait reports a failed call
            const { at, match } = await p.waitStderr(/connected to \S+ via .* in (\d+) ms/, 60_000);
            offerSent.push((await sent).at - s);
            cli.push(at - s);
            reported.push(Number(match[1]));
            const e = await Promise.race([p.exited, new Promise<'hung'>((res) => setTimeout(() => res('hung'), 30_000))]);
            if (e === 'hung') throw new Error(`peerdial call did not exit by itself after hanging up:\n${p.stderr()}`);
            lifetimes.push(e.at - s);
          } finally {
            stopChild(p);
          }
          await settled(h);
        }
        ratioRow('S', '`peerdial call hitoshi` from a cold process -> "offer sent by mail" (SMTP accepted it)', 'ms', summarize(offerSent), '`node -e 0`, same rounds', summarize(nodeBare).p50, 'includes IMAP login (the answer is watched for before the offer goes), gathering, signing + encrypting and SMTP submission');
        const cliS = summarize(cli);
        ratioRow('1', '`peerdial call` process start -> connected', 'ms', cliS, 'agent.call() setup', r.setup.p50, `the CLI's own "in N ms" (placeCall -> connected): median ${fmt(summarize(reported).p50)} ms; start -> exit after hang-up: ${fmt(summarize(lifetimes).p50)} ms`);
        return { ...r, floorSubmit: summarize(floor.submitMs), cli: cliS, cliReported: summarize(reported) };
      } finally {
        await floor.stop();
        for (const ag of agents.splice(0)) await ag.stop();
      }
    });
    results.setup = setup;

    // ------------------------------------------------------------ 1b. one-mail vs two-mail calls
    results.onemail = await section('onemail', async () => {
      // standing answers are for introduced or verified contacts: alice and hitoshi pin each other's keys
      const ha = await hitoshi.open();
      const aa = await alice.open();
      await ha.contacts.pinKey(alice.email, aa.identity.armoredPublicKey, aa.identity.fingerprint, 'manual');
      await aa.contacts.pinKey(hitoshi.email, ha.identity.armoredPublicKey, ha.identity.fingerprint, 'manual');
      const h = await startAgent(hitoshi);
      agents.push(h);
      const a = await startAgent(alice);
      agents.push(a);
      try {
        const r = await measureOneMail(a, h, alice.email, hitoshi.email, 'hitoshi', settings.oneMailCalls);
        log(`one-mail p50 ${fmt(r.oneMail.p50)} ms, two-mail p50 ${fmt(r.twoMail.p50)} ms, fell back ${r.fellBack}`);
        rows.push({ fig: '1b', figure: 'two-mail call set-up, agent.call() -> channel open (interleaved)', unit: 'ms', s: r.twoMail });
        ratioRow('1b', 'one-mail call set-up (standing answer), agent.call() -> channel open', 'ms', r.oneMail, 'two-mail call', r.twoMail.p50, `of it, offer queued -> connected: ${fmt(r.oneMailOfferToConnected.p50)} ms; fell back to two mails: ${r.fellBack}; failed: ${r.failures.length}`);
        return r;
      } finally {
        for (const ag of agents.splice(0)) await ag.stop();
      }
    });

    // ------------------------------------------------------------ 7. one mail leg, split into its parts
    const mailLeg = await section('mailleg', async () => {
      const la = await makePeer(stack, 'legalice', dir);
      const lh = await makePeer(stack, 'leghitoshi', dir);
      await introduce(la, lh);
      const r = await measureMailLeg(stack, la, lh, settings.legRounds);
      const partName: Record<(typeof LEG_PARTS)[number], string> = {
        submit: 'SMTP submission accepted',
        delivery: 'in the mailbox (seen by a second connection polling every 10 ms)',
        notified: "the receiver's connection has the EXISTS",
        fetched: 'the watcher has the bytes (search + fetch)',
        verified: 'decrypted, signature and policy checked',
        filed: 'moved to the peerdial folder: the watcher holds it',
      };
      for (const part of LEG_PARTS) {
        ratioRow('7', `mail leg, IDLE only: submit start -> ${partName[part]}`, 'ms', r.idle[part], 'reply expected', r.expected[part].p50, `reply expected (NOOP checks on top of IDLE): median ${fmt(r.expected[part].p50)} ms, p95 ${fmt(r.expected[part].p95)}`);
      }
      const seen = new Map<string, number>();
      for (const x of r.rounds.filter((y) => y.expecting)) seen.set(x.seenBy ?? 'not reported', (seen.get(x.seenBy ?? 'not reported') ?? 0) + 1);
      rows.push({ fig: '7', figure: 'reply checks spent per expected mail', unit: 'NOOPs', s: r.noopsPerMail, note: `the pass that filed the mail was started by: ${[...seen].map(([k, n]) => `${k} ${n}`).join(', ')}` });
      log(`mail leg: IDLE only filed p50 ${fmt(r.idle.filed.p50)} ms (delivery ${fmt(r.idle.delivery.p50)}, EXISTS ${fmt(r.idle.notified.p50)}); reply expected filed p50 ${fmt(r.expected.filed.p50)} ms`);
      return r;
    });
    results.mailleg = mailLeg;

    // ------------------------------------------------------------ media (issue 5)
    results.media = await section('media', async () => {
      const m = await measureMedia(settings.mediaSeconds);
      rows.push({ fig: 'M', figure: `video frames delivered / sent, camera (ffmpeg testsrc 30 fps) -> viewer, ${m.seconds} s`, unit: '', value: `${m.framesReceived} / ${m.framesSent}`, ratio: m.framesReceived / Math.max(1, m.framesSent), note: `encoded ${m.framesEncoded}; RTP packets ${m.packetsReceived} / ${m.packetsSent}, lost ${m.packetsLost}; audio ${m.audioReceived} / ${m.audioSent}; first key frame after ${Math.round(m.firstKeyframeMs)} ms` });
      ratioRow('M', 'latency added per video RTP packet, camera track -> viewer track', 'µs', m.sessionLatency, 'plain loopback UDP, same packets', m.udpLatency.p50, `UDP p95 ${fmt(m.udpLatency.p95, 0)} µs`);
      return m;
    });

    // ------------------------------------------------------------ 5. concurrency
    results.concurrency = await section('concurrency', async () => {
      const peers: Peer[] = [];
      for (const name of callers) {
        const p = await makePeer(stack, name, dir, { ringSeconds: 60 });
        await introduce(p, hitoshi);
        peers.push(p);
      }
      const h = await startAgent(hitoshi);
      agents.push(h);
      const cs = await Promise.all(peers.map((p) => startAgent(p)));
      agents.push(...cs);
      try {
        const r = await measureConcurrency(cs, h, 'hitoshi', settings.concurrentRounds);
        log(`concurrency: ${r.connected}/${r.calls} connected, setup p50 ${fmt(r.setup.p50)} ms p95 ${fmt(r.setup.p95)} ms`);
        const base = seqSetupP50;
        rows.push({
          fig: '5',
          figure: `${settings.concurrent} simultaneous calls into one agent: setup`,
          unit: 'ms',
          s: r.setup,
          ...(base ? { baseline: `one call at a time: ${fmt(base)}`, baselineValue: base, ratio: r.setup.p50 / base } : {}),
          note: `${r.connected} of ${r.calls} connected (${r.rounds} round${r.rounds > 1 ? 's' : ''})${r.failures.length ? `; failures: ${[...new Set(r.failures)].join('; ')}` : ''}`,
        });
        return r;
      } finally {
        for (const ag of agents.splice(0)) await ag.stop();
      }
    });

    // ------------------------------------------------------------ 6. Delta Chat
    results.deltachat = await section('deltachat', async () => {
      const dcDir = path.join(dir, 'deltachat');
      await fs.mkdir(dcDir, { recursive: true });
      // loaded here: Delta Chat core is installed by `npm run bench` only
      const { measureDeltaChat } = await import('./deltachat.js');
      const r = await measureDeltaChat(stack, ['dcalice', 'dcbob'], dcDir, settings.deltachatCalls);
      const ours = (setup as { offerLeg?: Summary } | undefined)?.offerLeg;
      log(`Delta Chat leg p50 ${fmt(r.leg.p50)} ms${ours ? `, peerdial's ${fmt(ours.p50)} ms` : ''}`);
      rows.push({ fig: '6', figure: `Delta Chat ${r.version}: place call -> callee's IncomingCall`, unit: 'ms', s: r.leg, note: 'encrypted + signed mail, SecureJoin-verified chat' });
      const leg = mailLeg as MailLegResult | undefined;
      if (leg) {
        rows.push({ fig: '6', figure: 'peerdial mail leg, IDLE only (an offer): submit start -> the watcher holds it', unit: 'ms', s: leg.idle.filed, baseline: `Delta Chat: ${fmt(r.leg.p50)}`, baselineValue: r.leg.p50, ratio: leg.idle.filed.p50 / r.leg.p50, note: 'figure 7, same run; < 1 means peerdial is faster' });
        rows.push({ fig: '6', figure: 'peerdial mail leg, reply expected (an answer): submit start -> the watcher holds it', unit: 'ms', s: leg.expected.filed, baseline: `Delta Chat: ${fmt(r.leg.p50)}`, baselineValue: r.leg.p50, ratio: leg.expected.filed.p50 / r.leg.p50, note: 'figure 7, same run; Delta Chat waits for every mail by IDLE' });
      }
      if (ours) rows.push({ fig: '6', figure: "peerdial: offer queued -> callee's agent has the verified offer", unit: 'ms', s: ours, baseline: `Delta Chat: ${fmt(r.leg.p50)}`, baselineValue: r.leg.p50, ratio: ours.p50 / r.leg.p50, note: 'same run, same mail stack (figure 1 calls); < 1 means peerdial is faster' });
      return r;
    });

    // ------------------------------------------------------------ 3. idle (in the background, awaited at the end) + 4. mailbox scale
    const idle = wanted('idle')
      ? (async () => {
          // bench/idle.mjs: a real `peerdial agent` process on a mail stack of its own, measured from /proc over the window;
          // the baseline, a bare imapflow client idling on this stack for as long
          const windowSeconds = settings.idleMinutes * 60;
          log(`--- idle: \`peerdial agent\` (bench/idle.mjs) and a bare imapflow client idling ${settings.idleMinutes} min`);
          const agentP = startNode(path.join(REPO, 'bench', 'idle.mjs'), ['--json', '--minutes', String(settings.idleMinutes), ...(settings.idleSettleSeconds ? ['--settle', String(settings.idleSettleSeconds)] : [])]);
          const bareP = startNode(path.join(HERE, 'idle-worker.js'), ['bare', JSON.stringify(stack.imapConfig('idlebase')), String(windowSeconds)]);
          const timeout = (windowSeconds + 900 + 180) * 1000;
          for (const p of [agentP, bareP]) {
            const e = await Promise.race([p.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), timeout))]);
            if (e === 'hung' || e.code !== 0) {
              stopChild(agentP);
              stopChild(bareP);
              throw new Error(`idle measurement failed: ${p.stderr()}`);
            }
          }
          const last = (p: typeof agentP) => JSON.parse(p.stdout().trim().split('\n').pop()!) as unknown;
          const ag = last(agentP) as { settleSeconds: number; windowMs: number; cpuMs: number; cpuSecondsPerHour: number; runSecondsPerHour: number; settleCpuMs: number; contextSwitchesPerMinute: number; rssMiB: number; children: number; childCpuMs: number; imapLoginsDuring: number; idleSeconds: number };
          const bare = last(bareP) as { windowMs: number; cpuMs: number; rssBytes: number; commandsDuring: number };
          const bareCpuH = (bare.cpuMs * 3_600) / bare.windowMs;
          const window = `measured over ${fmt(ag.windowMs / 60_000, 0)} min from ${ag.settleSeconds} s after it reached IDLE${settings.idleSettleSeconds ? '' : ' (once quiet for a minute)'}`;
          rows.push({ fig: '3', figure: 'idle agent CPU per hour', unit: 's/h', value: fmt(ag.cpuSecondsPerHour, 2), baseline: `bare imapflow IDLE: ${fmt(bareCpuH, 2)}`, baselineValue: bareCpuH, ratio: bareCpuH > 0 ? ag.cpuSecondsPerHour / bareCpuH : undefined, note: `utime + stime of the agent process (/proc); ${window}; schedstat: ${fmt(ag.runSecondsPerHour, 2)} s/h; start-up's tail before the window (V8 shrinking its heaps): ${fmt(ag.settleCpuMs)} ms once; its ${ag.children} child process(es): ${fmt(ag.childCpuMs)} ms` });
          rows.push({ fig: '3', figure: 'idle agent RSS', unit: 'MiB', value: fmt(ag.rssMiB, 1), baseline: `bare imapflow IDLE: ${fmt(bare.rssBytes / MiB, 1)}`, baselineValue: bare.rssBytes / MiB, ratio: ag.rssMiB / (bare.rssBytes / MiB), note: 'RSS of the whole node process at the end of the window' });
          rows.push({ fig: '3', figure: 'idle agent wake-ups', unit: '/min', value: fmt(ag.contextSwitchesPerMinute, 1), note: `context switches of all its threads; IMAP: IDLE re-issued every idle_seconds = ${ag.idleSeconds} s (${fmt(3600 / ag.idleSeconds, 1)}/h), Dovecot's "* OK Still here" every 2 min; new logins in the window: ${ag.imapLoginsDuring}` });
          log(`idle: agent ${fmt(ag.cpuMs)} ms CPU in ${fmt(ag.windowMs / 1000)} s (${fmt(ag.cpuSecondsPerHour, 2)} s/h), RSS ${fmt(ag.rssMiB, 1)} MiB; bare ${fmt(bare.cpuMs)} ms, ${fmt(bare.rssBytes / MiB, 1)} MiB`);
          return { agent: ag, bare, cpuSecondsPerHour: ag.cpuSecondsPerHour, bareCpuSecondsPerHour: bareCpuH, windowMinutes: settings.idleMinutes };
        })().catch((err) => {
          errors.idle = (err as Error).stack ?? String(err);
          log(`--- idle FAILED: ${(err as Error).message}`);
          return undefined;
        })
      : Promise.resolve(undefined);

    results.mailbox = await section('mailbox', async () => {
      const out: ScaleResult[] = [];
      for (const n of settings.scale) {
        const name = `big${n}`;
        const fillMs = await fillMaildir(stack, name, n);
        log(`mailbox: ${n} foreign mails written in ${fmt(fillMs)} ms`);
        const peer = await makePeer(stack, name, dir);
        const r = await measureScale(stack, peer, n, fillMs, settings.scaleRepeats);
        log(`mailbox ${n}: first sync ${fmt(r.firstSyncMs)} ms, check p50 ${fmt(r.check.p50, 1)} ms, full check p50 ${fmt(r.fullCheck.p50)} ms`);
        out.push(r);
      }
      const base = out[0]!;
      for (const r of out) {
        ratioRow('4', `one check, ${r.messages} foreign mails, 1 new`, 'ms', r.check, 'bare FETCH of the new mail\'s header, same mailbox', r.bareFetch.p50, `${r.checkCommands} IMAP commands per check; vs. the check at ${base.messages} mails: ${fmt(r.check.p50 / base.check.p50, 2)}x`);
      }
      for (const r of out) {
        ratioRow('4', `check incl. login + SELECT + logout, ${r.messages} mails`, 'ms', r.fullCheck, `${base.messages} mails`, base.fullCheck.p50);
      }
      for (const r of out) {
        rows.push({ fig: '4', figure: `first sync of a fresh account, ${r.messages} mails`, unit: 'ms', value: fmt(r.firstSyncMs), baseline: `${base.messages} mails: ${fmt(base.firstSyncMs)}`, baselineValue: base.firstSyncMs, ratio: r.firstSyncMs / base.firstSyncMs, note: `single run; the check inside it ${fmt(r.firstSyncCheckMs)} ms (scanned ${r.firstSyncScanned}); Dovecot indexes the Maildir on SELECT` });
      }
      return out;
    });
    // ------------------------------------------------------------ 2. bulk transfer
    results.bulk = await section('bulk', async () => {
      const bytes = settings.bulkBytes;
      const src = path.join(dir, 'bulk-source.bin');
      await makeSource(src, bytes);
      const send: TransferRun[] = [];
      const pipe: TransferRun[] = [];
      const sendDc: TransferRun[] = [];
      const pipeDc: TransferRun[] = [];
      const tcp: TransferRun[] = [];
      const flush = () => execFileSync('sync');
      for (let i = 0; i < settings.bulkRuns; i++) {
        flush();
        tcp.push(await tcpCopy(src, path.join(dir, 'tcp-out.bin'), bytes));
        log(`bulk ${i + 1}/${settings.bulkRuns}: tcp ${fmt(tcp.at(-1)!.mbps)} MB/s`);
        flush();
        send.push(await cliSend(alice, hitoshi, src, bytes, dir, 'tls'));
        log(`bulk ${i + 1}/${settings.bulkRuns}: send via tls ${fmt(send.at(-1)!.mbps)} MB/s`);
        flush();
        sendDc.push(await cliSend(alice, hitoshi, src, bytes, dir, 'datachannel'));
        log(`bulk ${i + 1}/${settings.bulkRuns}: send via datachannel ${fmt(sendDc.at(-1)!.mbps)} MB/s`);
        flush();
        pipe.push(await cliPipe(alice, hitoshi, src, bytes, dir, 'tls'));
        log(`bulk ${i + 1}/${settings.bulkRuns}: pipe via tls ${fmt(pipe.at(-1)!.mbps)} MB/s`);
        flush();
        pipeDc.push(await cliPipe(alice, hitoshi, src, bytes, dir, 'datachannel'));
        log(`bulk ${i + 1}/${settings.bulkRuns}: pipe via datachannel ${fmt(pipeDc.at(-1)!.mbps)} MB/s`);
      }
      await fs.rm(src, { force: true });
      const T = summarizeTransfers(bytes, tcp);
      const S = summarizeTransfers(bytes, send);
      const P = summarizeTransfers(bytes, pipe);
      const SD = summarizeTransfers(bytes, sendDc);
      const PD = summarizeTransfers(bytes, pipeDc);
      const size = sizeText(bytes);
      rows.push({ fig: '2', figure: `plain TCP copy of ${size}, file -> socket -> file`, unit: 'MB/s', s: T.mbps, note: `CPU s/GiB: sender ${fmt(T.senderCpuPerGiB.p50, 2)}, receiver ${fmt(T.receiverCpuPerGiB.p50, 2)}` });
      const cpuNote = (X: TransferSummary) =>
        `CPU s/GiB: sender ${fmt(X.senderCpuPerGiB.p50, 2)} (${fmt(X.senderCpuPerGiB.p50 / T.senderCpuPerGiB.p50, 1)}x TCP), receiver ${fmt(X.receiverCpuPerGiB.p50, 2)} (${fmt(X.receiverCpuPerGiB.p50 / T.receiverCpuPerGiB.p50, 1)}x TCP)`;
      ratioRow('2', `peerdial send of ${size}, via tls`, 'MB/s', S.mbps, 'TCP', T.mbps.p50, cpuNote(S));
      ratioRow('2', `peerdial send of ${size}, via datachannel`, 'MB/s', SD.mbps, 'TCP', T.mbps.p50, cpuNote(SD));
      ratioRow('2', `peerdial call --pipe of ${size}, via tls`, 'MB/s', P.mbps, 'TCP', T.mbps.p50, cpuNote(P));
      ratioRow('2', `peerdial call --pipe of ${size}, via datachannel`, 'MB/s', PD.mbps, 'TCP', T.mbps.p50, cpuNote(PD));

      // the measured try: raw node-datachannel, several channels / connections / message sizes
      const K = 1024;
      const variants: RawVariant[] = [
        { name: '1 connection, 1 channel, 64 KiB messages', pcs: 1, chans: 1, msgSize: 64 * K, maxMessageSize: 256 * K },
        { name: '1 connection, 1 channel, 256 KiB messages (as peerdial)', pcs: 1, chans: 1, msgSize: 256 * K, maxMessageSize: 256 * K },
        { name: '1 connection, 1 channel, 1 MiB messages', pcs: 1, chans: 1, msgSize: 1024 * K, maxMessageSize: 4096 * K },
        { name: '1 connection, 4 channels, 256 KiB messages', pcs: 1, chans: 4, msgSize: 256 * K, maxMessageSize: 256 * K },
        { name: '2 connections, 1 channel each, 256 KiB messages', pcs: 2, chans: 1, msgSize: 256 * K, maxMessageSize: 256 * K },
        { name: '4 connections, 1 channel each, 256 KiB messages', pcs: 4, chans: 1, msgSize: 256 * K, maxMessageSize: 256 * K },
        { name: '1 connection, 1 channel, 256 KiB messages, mtu 1400 (SCTP packets as large as most Internet paths allow)', pcs: 1, chans: 1, msgSize: 256 * K, maxMessageSize: 256 * K, mtu: 1400 },
        { name: '1 connection, 1 channel, 256 KiB messages, mtu 4000 (LAN with jumbo frames / loopback only)', pcs: 1, chans: 1, msgSize: 256 * K, maxMessageSize: 256 * K, mtu: 4000 },
      ];
      const tb = settings.tryBytes;
      const tlsFiles = { cert: path.join(dir, 'bench-tls.crt'), key: path.join(dir, 'bench-tls.key') };
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', tlsFiles.key, '-out', tlsFiles.cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
      const tcpMem: TransferRun[] = [];
      const tlsMem: TransferRun[] = [];
      const raw = new Map<string, TransferRun[]>(variants.map((v) => [v.name, []]));
      for (let i = 0; i < settings.tryRuns; i++) {
        tcpMem.push(await tcpCopy(`mem:${tb}`, '-', tb));
        tlsMem.push(await tcpCopy(`mem:${tb}`, '-', tb, tlsFiles));
        for (const v of variants) {
          try {
            raw.get(v.name)!.push(await rawDataChannel(v, tb));
          } catch (err) {
            log(`try ${v.name} failed: ${(err as Error).message}`);
          }
        }
        log(`try round ${i + 1}/${settings.tryRuns}: tcp ${fmt(tcpMem.at(-1)!.mbps)} MB/s, tls ${fmt(tlsMem.at(-1)!.mbps)} MB/s; ${variants.map((v) => `${fmt(raw.get(v.name)!.at(-1)?.mbps)}`).join(', ')}`);
      }
      const TM = summarizeTransfers(tb, tcpMem);
      rows.push({ fig: '2', figure: `try: plain TCP, memory -> socket -> discard, ${sizeText(tb)}`, unit: 'MB/s', s: TM.mbps, note: `CPU s/GiB: sender ${fmt(TM.senderCpuPerGiB.p50, 2)}, receiver ${fmt(TM.receiverCpuPerGiB.p50, 2)} (whole processes)` });
      const TL = summarizeTransfers(tb, tlsMem);
      ratioRow('2', `try: TLS over TCP (a direct bulk path), memory -> discard, ${sizeText(tb)}`, 'MB/s', TL.mbps, 'TCP mem', TM.mbps.p50, `CPU s/GiB: sender ${fmt(TL.senderCpuPerGiB.p50, 2)}, receiver ${fmt(TL.receiverCpuPerGiB.p50, 2)} (whole processes)`);
      const trySummaries: Record<string, TransferSummary> = {};
      for (const v of variants) {
        const runs = raw.get(v.name)!;
        if (runs.length === 0) continue;
        const X = summarizeTransfers(tb, runs);
        trySummaries[v.name] = X;
        ratioRow('2', `try: raw DataChannel, ${v.name}`, 'MB/s', X.mbps, 'TCP mem', TM.mbps.p50, `CPU s/GiB during transfer: sender ${fmt(X.senderCpuPerGiB.p50, 2)}, receiver ${fmt(X.receiverCpuPerGiB.p50, 2)}`);
      }
      return { tcp: T, send: S, pipe: P, sendDatachannel: SD, pipeDatachannel: PD, tryTcpMem: TM, tryTlsMem: TL, tries: trySummaries };
    });
    // the idle window (10 min) overlaps the sections after it started
    results.idle = await idle;
  } finally {
    for (const ag of agents.splice(0)) await ag.stop().catch(() => undefined);
    await stack.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }

  const table = printTable();
  const out = {
    started: started.toISOString(),
    durationSeconds: round((now() - t0) / 1000),
    machine: await machine(),
    settings: { ...settings, bulkBytes: settings.bulkBytes, tryBytes: settings.tryBytes },
    table: rows,
    tableMarkdown: table,
    results,
    errors,
  };
  await fs.writeFile(path.join(REPO, 'bench', 'results.json'), JSON.stringify(out, null, 2) + '\n');
  const m = out.machine as { nproc: number; memoryGiB: number; node: string; cpuModel: string };
  process.stdout.write(`\npeerdial benchmark, ${started.toISOString()}${QUICK ? ' -- BENCH_QUICK=1: reduced sizes and repeats, not the reference figures' : ''}\n`);
  process.stdout.write(`machine: ${m.nproc} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, node ${m.node}; took ${out.durationSeconds} s\n\n`);
  process.stdout.write(table + '\n');
  for (const [k, v] of Object.entries(errors)) process.stdout.write(`\n${k} FAILED: ${v.split('\n')[0]}\n`);
  process.stdout.write(`\nwritten: bench/results.json\n`);
  if (Object.keys(errors).length > 0) process.exitCode = 1;
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
