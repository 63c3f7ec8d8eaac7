// Cost of the cross-process lock on the ledger: time per Ledger.record()
// with the lock (as shipped) against the same atomic rewrite without it
// (the old path: cached copy, no lock, no re-read), alone and with a second
// process recording into the same ledger at the same time.
//
//   npm run build && node bench/ledger-lock.mjs [records=200] [entries=500]
//   LEDGER_BENCH_DIR=DIR ...   (DIR on a tmpfs: the lock without the cost of fsync)
//
// Prints one line per variant: median and p95 ms per record.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ledger, lockFile, writeJsonAtomic } from '../dist/store/index.js';

const records = Number(process.argv[2] ?? 200);
const entries = Number(process.argv[3] ?? 500);
const now = new Date();
const expires = new Date(now.getTime() + 3600_000).toISOString();

function stats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { median: q(0.5).toFixed(2), p95: q(0.95).toFixed(2), n: s.length };
}

async function seed(dir) {
  const l = new Ledger(dir);
  await l.ready();
  for (let i = 0; i < entries; i++) await l.record({ messageId: `<seed-${i}@b>`, nonce: `seed-${i}`, result: 'accepted', expires, now });
}

/** The pre-lock ledger: one cached copy, rewritten whole. */
async function unlocked(dir, name) {
  const file = path.join(dir, 'ledger.json');
  const data = JSON.parse(await (await import('node:fs/promises')).readFile(file, 'utf8'));
  const ms = [];
  for (let i = 0; i < records; i++) {
    const t = performance.now();
    data.messages[`<${name}-${i}@b>`] = { at: now.toISOString(), result: 'accepted', keepUntil: expires };
    data.nonces[`${name}-${i}`] = expires;
    await writeJsonAtomic(file, data);
    ms.push(performance.now() - t);
  }
  return ms;
}

async function locked(dir, name) {
  const l = new Ledger(dir);
  await l.ready();
  const ms = [];
  for (let i = 0; i < records; i++) {
    const t = performance.now();
    await l.record({ messageId: `<${name}-${i}@b>`, nonce: `${name}-${i}`, result: 'accepted', expires, now });
    ms.push(performance.now() - t);
  }
  return ms;
}

/** The lock alone: take and release it, nothing written. */
async function lockOnly(dir) {
  const file = path.join(dir, 'ledger.json');
  const ms = [];
  for (let i = 0; i < records; i++) {
    const t = performance.now();
    const release = await lockFile(file);
    await release();
    ms.push(performance.now() - t);
  }
  return ms;
}

if (process.argv[4] === 'child') {
  // the second process of the contended runs
  const [dir, variant, name] = process.argv.slice(5);
  const ms = variant === 'locked' ? await locked(dir, name) : await unlocked(dir, name);
  process.send(ms);
  process.exit(0);
}

const self = fileURLToPath(import.meta.url);
async function contended(variant) {
  const dir = mkdtempSync(path.join(process.env.LEDGER_BENCH_DIR ?? os.tmpdir(), 'peerdial-bench-ledger-'));
  try {
    await seed(dir);
    const child = fork(self, [String(records), String(entries), 'child', dir, variant, 'b']);
    const theirs = new Promise((r) => child.once('message', r));
    const mine = variant === 'locked' ? await locked(dir, 'a') : await unlocked(dir, 'a');
    return [...mine, ...(await theirs)];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function alone(variant) {
  const dir = mkdtempSync(path.join(process.env.LEDGER_BENCH_DIR ?? os.tmpdir(), 'peerdial-bench-ledger-'));
  try {
    await seed(dir);
    return variant === 'locked' ? await locked(dir, 'a') : variant === 'lock-only' ? await lockOnly(dir) : await unlocked(dir, 'a');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ROUNDS = 3;
console.log(`ledger with ${entries} entries, ${records} records per process, ${ROUNDS} interleaved rounds`);
const variants = [
  ['lock alone (take + release)', () => alone('lock-only')],
  ['no lock, one process', () => alone('unlocked')],
  ['lock,    one process', () => alone('locked')],
  ['no lock, two processes (loses records)', () => contended('unlocked')],
  ['lock,    two processes', () => contended('locked')],
];
const samples = variants.map(() => []);
// rounds interleave the variants, so that a busy moment of the machine hits all of them
for (let r = 0; r < ROUNDS; r++) for (const [i, [, run]] of variants.entries()) samples[i].push(...(await run()));
for (const [i, [label]] of variants.entries()) {
  const s = stats(samples[i]);
  console.log(`${label}: median ${s.median} ms, p95 ${s.p95} ms per record (n=${s.n})`);
}
