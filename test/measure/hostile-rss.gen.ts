/**
 * Measures hitoshi's agent (its own process) for one compression bomb at a
 * time: peak RSS (VmHWM) and the time from delivery to the agent's report.
 * Not part of `npm test` (no thresholds here):
 *   npx vitest run --config test/measure/measure.config.ts
 * MEASURE_SIZES=116000,927000,3700000 (mail bytes), MEASURE_FORGED=1 (the bomb
 * claims to come from alice, a contact with a pinned key, so it passes the
 * header screen and reaches the examiner), MEASURE_BIN=path/to/bin/peerdial.js
 * (another build, e.g. main's).
 */
import { promises as fs } from 'node:fs';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, it } from 'vitest';
import { ensureMailServers } from '../harness/system.js';
import { startMailStack, type MailStack } from '../harness/mail-stack.js';
import { BIN, makePeer, tempDir, waitFor, type Peer } from '../harness/peers.js';
import { bombMail } from '../harness/hostile.js';

const bin = process.env.MEASURE_BIN ?? BIN;
const sizes = (process.env.MEASURE_SIZES ?? '116000,927000,3700000').split(',').map(Number);
const forged = process.env.MEASURE_FORGED === '1';
let stack: MailStack; let dir: string; let alice: Peer; let hitoshi: Peer; let mallory: Peer;
beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice', 'hitoshi', 'mallory'] });
  dir = await tempDir('measure');
  alice = await makePeer(stack, 'alice', dir);
  hitoshi = await makePeer(stack, 'hitoshi', dir);
  mallory = await makePeer(stack, 'mallory', dir);
  const a = await alice.open(); const h = await hitoshi.open();
  await h.contacts.add({ name: 'alice', email: alice.email });
  await h.contacts.pinKey(alice.email, a.identity.armoredPublicKey, a.identity.fingerprint, 'manual');
}, 120_000);
afterAll(async () => { await stack?.stop(); await fs.rm(dir, { recursive: true, force: true }); });
const hwm = async (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(await fs.readFile(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
it('measure', async () => {
  for (const size of sizes) {
    const child = spawn(process.execPath, [bin, '--config', hitoshi.configFile, 'agent'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = ''; child.stdout!.on('data', (d) => (out += d)); child.stderr!.on('data', (d) => (out += d));
    const closed = new Promise((r) => child.on('close', r));
    await waitFor('up', () => out.includes('mailbox connected'), 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    const base = await hwm(child.pid!);
    const { raw } = await bombMail(size, forged ? { from: alice.email, to: hitoshi.email, signer: a_fp() } : { from: mallory.email, to: hitoshi.email });
    const t0 = Date.now(); const mark = out.length;
    await stack.deliverRaw('hitoshi', raw);
    let peak = base;
    try {
      await waitFor('reported', async () => {
        if (child.exitCode === null) peak = Math.max(peak, await hwm(child.pid!).catch(() => peak));
        return /rejected/.test(out.slice(mark)) || child.exitCode !== null;
      }, 300_000, 100);
    } catch {
      console.log('no report', out);
    }
    const ms = Date.now() - t0;
    console.log(`MEASURE bin=${bin} size=${raw.length} forged=${forged} idle_peak_MB=${base.toFixed(0)} peak_MB=${peak.toFixed(0)} deliver_to_report_ms=${ms} line=${(out.slice(mark).match(/.*rejected.*/) ?? ['(none)'])[0]}`);
    child.kill('SIGKILL'); await closed;
  }
}, 900_000);
let fp = '';
function a_fp() { return fp; }
beforeAll(async () => { fp = (await alice.open()).identity.fingerprint; });
