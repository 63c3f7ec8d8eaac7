// `npm run soak`: the success rate under load (issue 12). Not part of `npm test`.
//
// Starts two busy loops (`while :; do :; done`) that load both cores, then:
//   calls   N calls through a running agent on the real Postfix + Dovecot
//           (test/call-soak.test.ts with PEERDIAL_SOAK_CALLS=N), failures counted;
//   matrix  the connectivity matrix (test/nat.test.ts) R runs in a row, each
//           compared with the expected matrix by the test itself, no retries;
//   demo    `peerdial demo` D runs in a row.
// It prints the figures, and stops its busy loops at the end, on failure and
// on Ctrl-C.
//
//   npm run soak                              all three: 300 calls, 5 matrices, 50 demos
//   npm run soak -- calls --calls 30          only the calls, 30 of them
//   npm run soak -- matrix demo --matrix 2 --demo 10
//   npm run soak -- --busy 0                  without the busy loops
//
// Needs root (mail servers, namespaces) and a build (`npm run soak` builds).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PARTS = ['calls', 'matrix', 'demo'];
const argv = process.argv.slice(2);
const value = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const n = Number(argv[i + 1]);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} wants a whole number, not ${argv[i + 1]}`);
    process.exit(64);
  }
  return n;
};
const flagValues = new Set(argv.flatMap((a, i) => (a.startsWith('--') ? [i + 1] : [])));
const named = argv.filter((a, i) => !a.startsWith('--') && !flagValues.has(i));
for (const p of named) {
  if (!PARTS.includes(p)) {
    console.error(`unknown part "${p}" (parts: ${PARTS.join(', ')})`);
    process.exit(64);
  }
}
const parts = named.length > 0 ? named : PARTS;
const counts = { calls: value('calls', 300), matrix: value('matrix', 5), demo: value('demo', 50) };
const BUSY = value('busy', 2);

// ---------------------------------------------------------------------------
// Busy loops, stopped whatever happens.

const busy = [];
function startBusy() {
  for (let i = 0; i < BUSY; i++) {
    busy.push(spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
  }
}
function stopBusy() {
  for (const b of busy.splice(0)) {
    try {
      b.kill('SIGKILL');
    } catch {
      // gone already
    }
  }
}
let current;
process.on('exit', stopBusy);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    stopBusy();
    current?.kill('SIGTERM');
    process.exit(130);
  });
}

/** Run a command, echo nothing, resolve with its exit code and output. */
function run(cmd, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    current = child;
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code, signal) => {
      current = undefined;
      resolve({ code: code ?? (signal ? 128 : 1), out });
    });
  });
}

const VITEST = path.join(REPO, 'node_modules/vitest/vitest.mjs');
const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');
const seconds = (t0) => ((Date.now() - t0) / 1000).toFixed(0);
const figures = [];
const say = (line) => {
  console.log(line);
  figures.push(line);
};

// ---------------------------------------------------------------------------

async function soakCalls(n) {
  const t0 = Date.now();
  const r = await run(process.execPath, [VITEST, 'run', 'test/call-soak.test.ts'], { PEERDIAL_SOAK_CALLS: String(n) });
  const out = stripAnsi(r.out);
  const line = out.split('\n').find((l) => / calls in [\d.]+ s /.test(l));
  const failed = /failed calls (\d+)/.exec(line ?? '');
  say(
    `calls: ${n} calls through a running agent, real mail stack: ` +
      (failed ? `${failed[1]} failed` : 'no figure (the run stopped early)') +
      `; test ${r.code === 0 ? 'passed' : 'FAILED'} (${seconds(t0)} s)`,
  );
  if (line) say(`  ${line.trim()}`);
  const reoffers = out.split('\n').find((l) => /fresh offers made by the phone itself/.test(l));
  if (reoffers) say(`  ${reoffers.trim()}`);
  if (r.code !== 0) {
    const why = out.split('\n').filter((l) => /AssertionError|Error:|expected|failed calls/i.test(l)).slice(0, 12);
    for (const l of why) say(`  ${l.trim()}`);
  }
  return r.code === 0;
}

async function soakMatrix(runs) {
  let equal = 0;
  for (let i = 1; i <= runs; i++) {
    const t0 = Date.now();
    const r = await run(process.execPath, [VITEST, 'run', 'test/nat.test.ts', '-t', 'the connectivity matrix']);
    let md = '';
    try {
      md = readFileSync(path.join(REPO, '.tmp/nat-matrix.md'), 'utf8');
    } catch {
      // no matrix written
    }
    const ok = r.code === 0;
    if (ok) equal++;
    say(`matrix run ${i}/${runs}: ${ok ? 'equals the expected matrix' : 'DIFFERS (or failed)'} (${seconds(t0)} s)`);
    if (!ok) {
      const out = stripAnsi(r.out);
      const diff = out.split('\n').filter((l) => /^\s*[-+] +"/.test(l) || /AssertionError|Error:/.test(l)).slice(0, 20);
      for (const l of diff) say(`  ${l.trim()}`);
      const table = md.split('\n').filter((l) => l.startsWith('|'));
      for (const l of table) say(`  ${l}`);
    }
  }
  say(`matrix: ${equal}/${runs} runs equal the expected matrix (one call per pair, no retries)`);
  return equal === runs;
}

async function soakDemo(runs) {
  let ok = 0;
  const failures = [];
  const t0 = Date.now();
  for (let i = 1; i <= runs; i++) {
    const r = await run(process.execPath, [path.join(REPO, 'bin/peerdial.js'), 'demo']);
    if (r.code === 0) ok++;
    else failures.push(`run ${i}: exit ${r.code}: ${r.out.trim().split('\n').slice(-3).join(' / ')}`);
  }
  say(`demo: ${ok}/${runs} runs succeeded (${seconds(t0)} s)`);
  for (const f of failures) say(`  ${f}`);
  return ok === runs;
}

const t0 = Date.now();
say(`soak: parts ${parts.join(', ')}; ${BUSY} busy loop(s); counts ${parts.map((p) => `${p}=${counts[p]}`).join(' ')}; started ${new Date().toISOString()}`);
startBusy();
let allOk = true;
try {
  for (const p of parts) {
    if (counts[p] === 0) continue;
    if (p === 'calls') allOk = (await soakCalls(counts.calls)) && allOk;
    if (p === 'matrix') allOk = (await soakMatrix(counts.matrix)) && allOk;
    if (p === 'demo') allOk = (await soakDemo(counts.demo)) && allOk;
  }
} finally {
  stopBusy();
}
console.log(`\nsoak ${allOk ? 'passed' : 'FAILED'} in ${seconds(t0)} s:\n${figures.map((f) => `  ${f}`).join('\n')}`);
process.exit(allOk ? 0 : 1);
