/**
 * Long-running agents and short CLI runs: many calls in a row must not crash
 * libdatachannel (cleanup() segfaulted after 40+ cycles when channels were
 * closed one by one), and a process that made a call must exit by itself.
 * Loopback only.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Connected, type IceConfig, Session, liveSessionCount, shutdownSessions } from '../../src/session/index.js';

const ice: IceConfig = { iceServers: [], bindAddress: '127.0.0.1' };
const root = resolve(import.meta.dirname, '../..');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/**
 * alice calls bob (the answer applied at once). One attempt: a failure fails
 * the test (both sessions closed first).
 */
async function placeCall(): Promise<{ alice: Session; bob: Session; a: Connected; b: Connected }> {
  const { session: alice, sdp: offer } = await Session.createOffer({ ice });
  const { session: bob, sdp: answer } = await Session.acceptOffer(offer, { ice });
  try {
    alice.acceptAnswer(answer);
    const [a, b] = await Promise.all([alice.connected({ timeoutMs: 20_000 }), bob.connected({ timeoutMs: 20_000 })]);
    return { alice, bob, a, b };
  } catch (err) {
    alice.close();
    bob.close();
    throw err;
  }
}

describe('many calls in one process', () => {
  afterAll(() => shutdownSessions());

  it('20 calls in a row, each connected, used and closed, then shutdown: no crash', async () => {
    const ms: number[] = [];
    for (let i = 0; i < 20; i++) {
      const { alice, bob, a, b } = await placeCall();
      ms.push(a.ms);
      const got = new Promise((r) => b.channel.onMessage(r));
      await a.channel.send(`call ${i}`);
      expect(await got).toBe(`call ${i}`);
      // Alternate who hangs up; only PeerConnections are closed.
      if (i % 2 === 0) {
        alice.close();
        bob.close();
      } else {
        bob.close();
        alice.close();
      }
      expect(liveSessionCount()).toBe(0);
      // Let the deferred cleanup() run between some calls, not others.
      if (i % 3 === 0) await new Promise((r) => setTimeout(r, 20));
    }
    console.log(`20 calls: connect after answer p50 ${median(ms)} ms, max ${Math.max(...ms)} ms`);
    shutdownSessions();
    expect(liveSessionCount()).toBe(0);
  }, 120_000);
});

describe('a process that made a call', () => {
  let dir: string;

  beforeAll(() => {
    // Compile the session module alone into a scratch directory that sees
    // this project's node_modules.
    dir = mkdtempSync(join(tmpdir(), 'peerdial-session-'));
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
    const tsc = spawnSync(
      process.execPath,
      [
        join(root, 'node_modules/typescript/bin/tsc'),
        '--outDir', join(dir, 'dist'),
        '--rootDir', join(root, 'src'),
        '--module', 'NodeNext',
        '--moduleResolution', 'NodeNext',
        '--target', 'ES2022',
        '--strict',
        '--skipLibCheck',
        '--types', 'node',
        join(root, 'src/session/index.ts'),
      ],
      { encoding: 'utf8' },
    );
    if (tsc.status !== 0) throw new Error(`tsc failed: ${tsc.stdout}${tsc.stderr}`);
    writeFileSync(
      join(dir, 'call.mjs'),
      `
import { Session, shutdownSessions } from './dist/session/index.js';
const ice = { iceServers: [], bindAddress: '127.0.0.1' };
const mode = process.argv[2];
// One attempt per call: a failure ends the script with an error.
async function call() {
  const { session: alice, sdp: offer } = await Session.createOffer({ ice });
  const { session: bob, sdp: answer } = await Session.acceptOffer(offer, { ice });
  try {
    alice.acceptAnswer(answer);
    const [a, b] = await Promise.all([alice.connected(), bob.connected()]);
    return { alice, bob, a, b };
  } catch (err) {
    alice.close(); bob.close();
    throw err;
  }
}
for (let i = 0; i < 3; i++) {
  const { alice, bob, a, b } = await call();
  const got = new Promise((r) => b.channel.onMessage(r));
  await a.channel.send('bye');
  if ((await got) !== 'bye') process.exit(3);
  if (mode !== 'shutdown') { alice.close(); bob.close(); }
}
if (mode === 'gc') {
  // Hazard 2: a DataChannel whose JS object is collected gets closed. Nobody
  // but the session module holds bob's session or his incoming channel here.
  const { createHash, randomBytes } = await import('node:crypto');
  const total = 48 * 1024 * 1024;
  const block = randomBytes(64 * 1024);
  const { alice, done } = await (async () => {
    const { alice, bob } = await call();
    const done = new Promise((resolve) => {
      bob.onChannel((ch) => {
        const hash = createHash('sha256');
        let got = 0;
        ch.onMessage((m) => { hash.update(m); got += m.length; if (got >= total) resolve(hash.digest('hex')); });
      });
    });
    return { alice, done };
  })();
  const ch = await alice.openChannel('bulk');
  const expected = createHash('sha256');
  for (let off = 0, n = 0; off < total; off += block.length, n++) {
    await ch.send(block);
    expected.update(block);
    if (n % 64 === 0) globalThis.gc();
  }
  if ((await done) !== expected.digest('hex')) process.exit(4);
  alice.close();
}
if (mode === 'unanswered') {
  const { session } = await Session.createOffer({ ice });
  session.close();
}
if (mode === 'shutdown') shutdownSessions();
console.log('done');
`,
    );
  }, 60_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a transfer survives forced garbage collection while nobody else holds the receiving side', async () => {
    const r = await run('gc');
    expect(r.out).toContain('done');
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
  }, 40_000);

  function run(mode: string): Promise<{ code: number | null; signal: string | null; ms: number; out: string }> {
    return new Promise((resolveRun, reject) => {
      const t0 = performance.now();
      const child = spawn(process.execPath, ['--expose-gc', join(dir, 'call.mjs'), mode], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`child (${mode}) did not exit by itself within 30 s:\n${out}`));
      }, 30_000);
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        resolveRun({ code, signal, ms: Math.round(performance.now() - t0), out });
      });
    });
  }

  it('exits by itself with code 0 once its calls are closed', async () => {
    const r = await run('close');
    expect(r.out).toContain('done');
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
    console.log(`child with closed calls exited in ${r.ms} ms`);
  }, 40_000);

  it('exits by itself after its calls and an unanswered offer are closed', async () => {
    const r = await run('unanswered');
    expect(r.out).toContain('done');
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
  }, 40_000);

  it('exits with code 0 when open calls are ended by shutdownSessions()', async () => {
    const r = await run('shutdown');
    expect(r.out).toContain('done');
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
    console.log(`child with shutdownSessions() exited in ${r.ms} ms`);
  }, 40_000);
});
