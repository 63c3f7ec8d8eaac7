#!/usr/bin/env node
/**
 * What an idle agent costs: a real `peerdial agent` process (the CLI, as a
 * service runs it) of a fresh account on the loopback Postfix + Dovecot of
 * the test harness, no calls, measured from outside through /proc/PID:
 * CPU time (utime + stime of /proc/PID/stat, all threads, in clock ticks;
 * and to the nanosecond from each thread's schedstat), context switches
 * (each one a wake-up: a timer, a packet, a GC thread), RSS, and the CPU of
 * the processes it started (`ip monitor`), over a window of --minutes
 * (default 10). Only the per-hour figure is extrapolated.
 *
 * The window starts once the agent is idle: after it said "mailbox
 * connected (IDLE)", when a whole minute passed with under 10 ms of CPU.
 * What it spent before (start-up's tail: V8 shrinking its heaps after the
 * start, ~0.2-0.3 s once, and again after any burst of activity such as a
 * call) is reported apart, as settleCpuMs. --settle N starts the window N s
 * after IDLE instead.
 *
 *   node bench/idle.mjs                 10 minutes, one line
 *   node bench/idle.mjs --minutes 2     a shorter window
 *   node bench/idle.mjs --json          one JSON object (bench/run.ts reads it)
 *   BENCH_IDLE_NODE_FLAGS=--no-memory-reducer node bench/idle.mjs
 *                                       the agent's node started with these flags
 *
 * Needs root (it starts Dovecot and Postfix), a build (`npm run build`) and
 * the compiled harness (`tsc -p bench/tsconfig.json`, which it runs itself
 * when bench/.build is missing). Linux only (/proc).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(REPO, 'bin', 'peerdial.js');
const BUILD = path.join(REPO, 'bench', '.build');
const argv = process.argv.slice(2);
const json = argv.includes('--json');
function num(name, dflt) {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const n = Number(argv[i + 1]);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`--${name} wants a positive number, not ${argv[i + 1]}`);
    process.exit(64);
  }
  return n;
}
const minutes = num('minutes', 10);
// --settle N: start the window N s after IDLE; default: once the agent was quiet for QUIET_S s
const settleSeconds = argv.includes('--settle') ? num('settle', 0) : undefined;
const QUIET_S = 60;
const QUIET_MS = 10;
const MAX_SETTLE_S = 900;
const nodeFlags = (process.env.BENCH_IDLE_NODE_FLAGS ?? '').split(' ').filter(Boolean);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const note = (s) => process.stderr.write(`[idle] ${s}\n`);

// /proc/PID/stat: fields after the ")" of comm; utime and stime are fields 14 and 15 (1-based), in clock ticks.
const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
function statCpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / TICKS;
}
/** Processes the agent started (the address monitor `ip monitor`, a session process...), children before grandchildren. */
function descendants(pid) {
  const out = [];
  for (const t of readdirSafe(`/proc/${pid}/task`)) {
    let kids = '';
    try {
      kids = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const k of kids.split(' ').filter(Boolean).map(Number)) out.push(k, ...descendants(k));
  }
  return out;
}
/**
 * One look at the agent: CPU time from /proc/PID/stat (utime + stime, all
 * threads, in clock ticks), the same to the nanosecond from each thread's
 * schedstat (time on a CPU), context switches of all threads (each one a
 * wake-up or a preemption), RSS, and the CPU of the processes it started.
 */
function sample(pid) {
  let switches = 0;
  let threads = 0;
  let runNs = 0;
  for (const t of readdirSafe(`/proc/${pid}/task`)) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
      for (const key of ['voluntary_ctxt_switches', 'nonvoluntary_ctxt_switches']) {
        const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(st);
        if (m) switches += Number(m[1]);
      }
      runNs += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      threads++;
    } catch {
      // a thread that just ended
    }
  }
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  const kids = descendants(pid);
  let childCpuMs = 0;
  for (const k of kids) {
    try {
      childCpuMs += statCpuMs(k);
    } catch {
      // gone
    }
  }
  return { at: performance.now(), cpuMs: statCpuMs(pid), runMs: runNs / 1e6, switches, threads, rssKb: rss ? Number(rss[1]) : NaN, children: kids.length, childCpuMs };
}
function readdirSafe(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return []; // the process is gone
  }
}

if (!existsSync(path.join(REPO, 'dist', 'cli', 'main.js'))) {
  console.error('no build: run `npm run build` first');
  process.exit(1);
}
if (!existsSync(path.join(BUILD, 'test', 'harness', 'peers.js'))) {
  note('compiling the harness (tsc -p bench/tsconfig.json)');
  // bench/deltachat.ts needs a package `npm run bench` installs; its type errors do not stop the emit
  spawnSync(process.execPath, [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(REPO, 'bench', 'tsconfig.json')], { stdio: 'ignore' });
}
const { startMailStack } = await import(pathToFileURL(path.join(BUILD, 'test', 'harness', 'mail-stack.js')).href);
const { makePeer, tempDir } = await import(pathToFileURL(path.join(BUILD, 'test', 'harness', 'peers.js')).href);

const stack = await startMailStack({ users: ['idler'] });
let agent;
const stopAll = async () => {
  if (agent && agent.exitCode === null) {
    agent.kill('SIGTERM');
    await new Promise((r) => (agent.exitCode !== null ? r() : agent.once('exit', r)));
  }
  await stack.stop();
};
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => void stopAll().finally(() => process.exit(130)));

try {
  const dir = await tempDir('idle-bench');
  const peer = await makePeer(stack, 'idler', dir);
  const idleSeconds = (await peer.open()).config.idleSeconds;
  agent = spawn(process.execPath, [...nodeFlags, CLI, '--config', peer.configFile, 'agent'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  agent.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  agent.stderr.setEncoding('utf8').on('data', (d) => (out += d));
  const deadline = Date.now() + 60_000;
  while (!/mailbox connected \(IDLE\)/.test(out)) {
    if (agent.exitCode !== null) throw new Error(`the agent exited ${agent.exitCode}:\n${out}`);
    if (Date.now() > deadline) throw new Error(`the agent did not reach IDLE in 60 s:\n${out}`);
    await sleep(100);
  }
  const connected = sample(agent.pid);
  if (settleSeconds !== undefined) {
    note(`agent ${agent.pid} idling; settling ${settleSeconds} s, then measuring ${minutes} min`);
    await sleep(settleSeconds * 1000);
  } else {
    // start-up's tail: V8 shrinks the heaps (its memory reducer: a few full GCs, ~0.2-0.3 s of CPU
    // once, seconds to minutes after the last activity). Idle starts when a whole quiet span passed.
    note(`agent ${agent.pid} idling; waiting for ${QUIET_S} s with under ${QUIET_MS} ms of CPU (at most ${MAX_SETTLE_S} s), then measuring ${minutes} min`);
    let last = sample(agent.pid);
    for (;;) {
      await sleep(QUIET_S * 1000);
      if (agent.exitCode !== null) throw new Error(`the agent exited ${agent.exitCode} while settling:\n${out}`);
      const s = sample(agent.pid);
      if (s.runMs - last.runMs < QUIET_MS) break;
      if ((s.at - connected.at) / 1000 > MAX_SETTLE_S) throw new Error(`the agent did not settle within ${MAX_SETTLE_S} s: ${(s.runMs - last.runMs).toFixed(1)} ms of CPU in the last ${QUIET_S} s`);
      last = s;
    }
  }
  const logBefore = (await stack.log()).length;
  const linesBefore = out.split('\n').filter(Boolean).length;
  const s0 = sample(agent.pid);
  const windowMs = minutes * 60_000;
  const step = Math.min(60_000, windowMs);
  const perMinute = [];
  let prev = s0;
  for (let t = step; t <= windowMs; t += step) {
    await sleep(step);
    if (agent.exitCode !== null) throw new Error(`the agent exited ${agent.exitCode} while idling:\n${out}`);
    const s = sample(agent.pid);
    perMinute.push({ cpuMs: s.cpuMs - prev.cpuMs, runMs: Math.round((s.runMs - prev.runMs) * 10) / 10, switches: s.switches - prev.switches });
    prev = s;
    note(`${(t / 60_000).toFixed(1)} min: ${(s.cpuMs - s0.cpuMs).toFixed(0)} ms CPU (schedstat ${(s.runMs - s0.runMs).toFixed(1)} ms), ${s.switches - s0.switches} context switches`);
  }
  const s1 = sample(agent.pid);
  const logDuring = (await stack.log()).slice(logBefore);
  const cpuMs = s1.cpuMs - s0.cpuMs;
  const elapsed = s1.at - s0.at;
  const perHour = (ms) => (ms / 1000) * (3_600_000 / elapsed);
  const result = {
    minutes,
    settleSeconds: Math.round((s0.at - connected.at) / 1000),
    nodeFlags,
    windowMs: Math.round(elapsed),
    cpuMs,
    cpuSecondsPerHour: perHour(cpuMs),
    runMs: s1.runMs - s0.runMs,
    runSecondsPerHour: perHour(s1.runMs - s0.runMs),
    settleCpuMs: s0.cpuMs - connected.cpuMs,
    contextSwitches: s1.switches - s0.switches,
    contextSwitchesPerMinute: ((s1.switches - s0.switches) * 60_000) / elapsed,
    perMinute,
    threads: s1.threads,
    rssMiB: s1.rssKb / 1024,
    children: s1.children,
    childCpuMs: s1.childCpuMs - s0.childCpuMs,
    imapLoginsDuring: (logDuring.match(/imap-login: (?:Info: )?Login: user=<idler/g) ?? []).length,
    agentLinesDuring: out.split('\n').filter(Boolean).length - linesBefore,
    idleSeconds,
    clockTicksPerSecond: TICKS,
  };
  if (json) process.stdout.write(JSON.stringify(result) + '\n');
  else {
    process.stdout.write(
      `idle agent over ${minutes} min (from ${result.settleSeconds} s after it reached IDLE${nodeFlags.length ? `; node ${nodeFlags.join(' ')}` : ''}): ${cpuMs.toFixed(0)} ms CPU = ${result.cpuSecondsPerHour.toFixed(2)} CPU-s/h ` +
        `(schedstat ${result.runMs.toFixed(1)} ms = ${result.runSecondsPerHour.toFixed(2)} s/h); ` +
        `${result.contextSwitches} context switches (${result.contextSwitchesPerMinute.toFixed(1)}/min); ${result.threads} threads; RSS ${result.rssMiB.toFixed(1)} MiB; ` +
        `${result.children} child process(es) using ${result.childCpuMs.toFixed(0)} ms; IMAP logins in the window ${result.imapLoginsDuring}; agent log lines ${result.agentLinesDuring}; ` +
        `idle_seconds ${idleSeconds}; before the window (start-up's after-effects) ${result.settleCpuMs.toFixed(0)} ms\n`,
    );
  }
} finally {
  await stopAll();
}
