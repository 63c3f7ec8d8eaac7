#!/usr/bin/env node
/**
 * Start-up of the CLI from a cold process, next to `node -e 0` in the same
 * run: `peerdial --help` and `peerdial contacts list` (a throw-away config
 * and state dir with one account and two contacts, made by the script).
 * Runs are interleaved (one of each command per round) so that a noisy
 * neighbour hits all of them alike. Plain JS against dist/: `npm run build`
 * first.
 *
 *   node bench/startup.mjs            median of 15 runs each, a markdown table
 *   BENCH_STARTUP_RUNS=31 node bench/startup.mjs
 *   node bench/startup.mjs --json     the summaries as JSON (bench/run.ts reads it)
 *   BENCH_STARTUP_COMPARE=OTHER/bin/peerdial.js node bench/startup.mjs
 *                                     also times another build (e.g. before a change) in the same rounds
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(REPO, 'bin', 'peerdial.js');
const RUNS = Number(process.env.BENCH_STARTUP_RUNS || 15);
const json = process.argv.includes('--json');

function run(args, env = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { env: { ...process.env, ...env }, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return { ms, stdout: r.stdout };
}

function summarize(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length / 2;
  const p50 = s.length % 2 ? s[Math.floor(mid)] : (s[mid - 1] + s[mid]) / 2;
  const p95 = s[Math.min(s.length - 1, Math.max(0, Math.ceil(0.95 * s.length) - 1))];
  return { n: s.length, p50, p95, min: s[0], max: s[s.length - 1] };
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'peerdial-startup-'));
try {
  const config = path.join(dir, 'config.toml');
  const env = { PEERDIAL_BENCH_PW: 'unused' };
  // nothing listens on port 1: --skip-check saves the account anyway
  run([CLI, '--config', config, '--quiet', 'init', '--email', 'alice@example.test', '--password-env', 'PEERDIAL_BENCH_PW',
    '--imap-host', '127.0.0.1', '--imap-port', '1', '--imap-tls', 'none', '--smtp-host', '127.0.0.1', '--smtp-port', '1', '--smtp-tls', 'none',
    '--state-dir', path.join(dir, 'state'), '--stun', 'none', '--skip-check'], env);
  run([CLI, '--config', config, 'contacts', 'add', 'hitoshi', 'hitoshi@example.jp', '--alias', '12', '--key', '0123456789ABCDEF0123456789ABCDEF01234567']);
  run([CLI, '--config', config, 'contacts', 'add', 'bob', 'bob@example.org']);
  const listed = run([CLI, '--config', config, 'contacts', 'list']).stdout;
  if (!listed.includes('hitoshi@example.jp') || !listed.includes('bob@example.org')) throw new Error(`contacts list did not list both contacts:\n${listed}`);

  const cases = [
    { name: '`node -e 0`', args: ['-e', '0'] },
    { name: '`peerdial --help`', args: [CLI, '--help'] },
    { name: '`peerdial contacts list`', args: [CLI, '--config', config, 'contacts', 'list'] },
  ];
  const other = process.env.BENCH_STARTUP_COMPARE;
  if (other) {
    cases.push({ name: `\`peerdial --help\` (${other})`, args: [other, '--help'] });
    cases.push({ name: `\`peerdial contacts list\` (${other})`, args: [other, '--config', config, 'contacts', 'list'] });
  }
  for (const c of cases) run(c.args); // warm the file cache
  const times = cases.map(() => []);
  for (let i = 0; i < RUNS; i++) cases.forEach((c, j) => times[j].push(run(c.args).ms));
  const sums = times.map(summarize);
  const base = sums[0].p50;
  const out = cases.map((c, j) => ({ command: c.name, ...sums[j], ratio: sums[j].p50 / base }));
  if (json) {
    process.stdout.write(JSON.stringify({ runs: RUNS, node: process.version, nproc: os.cpus().length, loadavg: os.loadavg(), results: out }) + '\n');
  } else {
    const f = (x) => x.toFixed(0);
    console.log(`start-up from a cold process, ${RUNS} interleaved runs each (node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')})\n`);
    console.log('| command | median (ms) | p95 | min | max | n | vs `node -e 0` |');
    console.log('|---|---|---|---|---|---|---|');
    for (const r of out) console.log(`| ${r.command} | ${f(r.p50)} | ${f(r.p95)} | ${f(r.min)} | ${f(r.max)} | ${r.n} | ${r.ratio.toFixed(2)} |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
