// Connect N times, each call between two peer processes on loopback
// (test/harness/netns-peer.mjs, run without a namespace), with mail-like
// delays: the offer and the answer are each held back a random time before
// the other side gets them. Counts the calls that did not connect and echo.
//
//   node bench/connect-race.mjs [--n 200] [--parallel 2] [--max-delay-ms 1500]
//                               [--busy 2] [--root DIR]
//
// --busy K starts K busy-loop processes for the run (stopped at the end).
// --root DIR runs another build (DIR/dist and DIR/test/harness/netns-peer.mjs),
// e.g. a checkout of main, for a before/after figure.
// Plain JS against the compiled library: `npm run build` first.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const N = Number(opt('n', '200'));
const PARALLEL = Number(opt('parallel', '2'));
const MAX_DELAY = Number(opt('max-delay-ms', '1500'));
const BUSY = Number(opt('busy', '0'));
const ROOT = path.resolve(opt('root', path.join(path.dirname(fileURLToPath(import.meta.url)), '..')));
const PEER = path.join(ROOT, 'test/harness/netns-peer.mjs');
if (!existsSync(PEER) || !existsSync(path.join(ROOT, 'dist/session/index.js'))) {
  console.error(`no built peer under ${ROOT}: run npm run build there`);
  process.exit(2);
}

const busy = [];
function startBusy(k) {
  for (let i = 0; i < k; i++) busy.push(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
}
function stopBusy() {
  for (const b of busy.splice(0)) b.kill('SIGKILL');
}
process.on('exit', stopBusy);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

function peer(role) {
  const config = { role, ice: { iceServers: [], bindAddress: '127.0.0.1' }, connectTimeoutMs: 20_000 };
  const child = spawn(process.execPath, [PEER, JSON.stringify(config)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const events = [];
  let waiters = [];
  let exited = false;
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      events.push(JSON.parse(line));
    } catch {
      events.push({ type: 'stdout', line });
    }
    for (const w of waiters.splice(0)) w();
  });
  child.stderr.on('data', () => undefined);
  child.stdin.on('error', () => undefined);
  child.once('exit', () => {
    exited = true;
    for (const w of waiters.splice(0)) w();
  });
  return {
    events,
    send: (obj) => {
      if (!exited) child.stdin.write(`${JSON.stringify(obj)}\n`);
    },
    async waitFor(types, ms) {
      const deadline = Date.now() + ms;
      for (;;) {
        const ev = events.find((e) => types.includes(e.type));
        if (ev) return ev;
        if (exited || Date.now() >= deadline) return undefined;
        await new Promise((r) => {
          const t = setTimeout(r, Math.max(1, deadline - Date.now()));
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
    async close() {
      this.send({ cmd: 'close' });
      child.stdin.end();
      const deadline = Date.now() + 5000;
      while (!exited && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      if (!exited) child.kill('SIGKILL');
    },
  };
}

/** A mail-like delay: a quarter of them none at all, the rest up to MAX_DELAY. */
const mailDelay = () => (Math.random() < 0.25 ? 0 : Math.round(Math.random() * MAX_DELAY));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function oneCall() {
  const caller = peer('offerer');
  const callee = peer('answerer');
  try {
    const offer = await caller.waitFor(['offer', 'failed'], 30_000);
    if (offer?.type !== 'offer') return { ok: false, why: `caller: ${offer?.message ?? 'no offer'}` };
    await sleep(mailDelay());
    callee.send({ cmd: 'offer', sdp: offer.sdp });
    const answer = await callee.waitFor(['answer', 'failed'], 30_000);
    if (answer?.type !== 'answer') return { ok: false, why: `callee: ${answer?.message ?? 'no answer'}` };
    await sleep(mailDelay());
    caller.send({ cmd: 'answer', sdp: answer.sdp });
    const [a, b] = await Promise.all([caller.waitFor(['connected', 'failed'], 25_000), callee.waitFor(['connected', 'failed'], 25_000)]);
    if (a?.type !== 'connected' || b?.type !== 'connected') {
      const bad = a?.type === 'failed' ? `caller ${a.code}: ${a.message}` : b?.type === 'failed' ? `callee ${b.code}: ${b.message}` : 'neither connected nor failed';
      return { ok: false, why: bad };
    }
    const echo = await caller.waitFor(['echo'], 10_000);
    if (echo?.ok !== true) return { ok: false, why: 'no echo' };
    return { ok: true, ms: Number(a.ms) };
  } finally {
    await Promise.all([caller.close(), callee.close()]);
  }
}

startBusy(BUSY);
const t0 = Date.now();
const failures = [];
const ms = [];
let next = 0;
let done = 0;
async function worker() {
  while (next < N) {
    next++;
    const r = await oneCall();
    done++;
    if (r.ok) ms.push(r.ms);
    else failures.push(r.why);
    if (done % 20 === 0) process.stderr.write(`${done}/${N} calls, ${failures.length} failed\n`);
  }
}
try {
  await Promise.all(Array.from({ length: PARALLEL }, worker));
} finally {
  stopBusy();
}
ms.sort((x, y) => x - y);
const q = (p) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))];
console.log(
  `connect-race: root=${ROOT} n=${N} parallel=${PARALLEL} max-delay=${MAX_DELAY}ms busy=${BUSY}: ` +
    `${N - failures.length}/${N} connected, ${failures.length} failed; ` +
    `connect ms p50 ${q(0.5)} p95 ${q(0.95)} max ${ms.at(-1)}; ${((Date.now() - t0) / 1000).toFixed(0)} s`,
);
const counts = new Map();
for (const f of failures) counts.set(f, (counts.get(f) ?? 0) + 1);
for (const [f, c] of counts) console.log(`  ${c} x ${f}`);
process.exit(0);
