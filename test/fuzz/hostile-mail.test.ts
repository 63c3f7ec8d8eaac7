/**
 * Fuzzing in the suite: hitoshi's peerdial reads more than 10,000 hostile
 * mails per run (broken and deeply nested MIME, thousands of parts, header
 * floods, encoded words in odd charsets, invalid UTF-8, our version header
 * missing/duplicated/odd, real signed and encrypted OpenPGP payloads that
 * are truncated, bit-flipped, re-tagged, compression bombs of modest size,
 * nested compression), each through `parseMail` and through the watcher's
 * classify step of a real account (state dir on disk, alice pinned, carol
 * known without a key, dave blocked). For every one: no throw, no
 * unhandled rejection, a valid message or a typed rejection whose detail
 * and sender are safe to print, and bounded heap growth per case. The
 * seed is fixed (FUZZ_SEED overrides it) and printed; FUZZ_SCALE scales
 * the number of cases.
 */
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { init } from '../../src/api/init.js';
import { openAccount } from '../../src/api/open.js';
import { Account } from '../../src/agent/account.js';
import { REJECT_REASONS } from '../../src/wire/message.js';
import { parseMail, type ParseContext, type ParseResult } from '../../src/wire/parse.js';
import { isSafeText } from '../../src/wire/sanitize.js';
import { validateMessage } from '../../src/wire/validate.js';
import { tempDir } from '../harness/peers.js';
import { ALICE, FIXTURES, HITOSHI, T0, contextFor, loadCast, type Cast } from '../wire/scenario.js';
import { headerFlood, headerMutants, mimeMail, pgpCorpus, pgpMail, type HostileMail, type PgpCorpus } from './arbitraries.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_201);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const runs = (n: number): number => Math.max(1, Math.round(n * SCALE));
/** A case may grow heap + external memory by at most this much (the bombs of issue 10 took hundreds of MB to GB). */
const MEMORY_BOUND = 48 * 1024 * 1024;

let cast: Cast;
let corpus: PgpCorpus;
let dir: string;
let account: Account;
let ctx: ParseContext;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

interface Stats {
  cases: number;
  maxMs: number;
  maxMsCase: string;
  maxGrowth: number;
  maxGrowthCase: string;
  outcomes: Map<string, number>;
  /** Total milliseconds per step (parseMail, classify, forced GC). */
  total: Map<string, number>;
}
const stats: Stats = { cases: 0, maxMs: 0, maxMsCase: '', maxGrowth: 0, maxGrowthCase: '', outcomes: new Map(), total: new Map() };
const addTime = (step: string, ms: number): void => void stats.total.set(step, (stats.total.get(step) ?? 0) + ms);

const memory = (): number => {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};

function checkTyped(r: { ok: boolean; reason?: string; detail?: string; from?: string }, what: string): void {
  expect(typeof r.ok, what).toBe('boolean');
  if (r.ok) return;
  expect(REJECT_REASONS as readonly string[], `${what}: reason`).toContain(r.reason);
  expect(typeof r.detail, `${what}: detail`).toBe('string');
  expect(isSafeText(r.detail!), `${what}: detail is safe to print: ${JSON.stringify(r.detail)}`).toBe(true);
  if (r.from !== undefined) expect(isSafeText(r.from), `${what}: from is safe to print: ${JSON.stringify(r.from)}`).toBe(true);
}

/**
 * Runs one step of a case, measured: time, and growth of heap + external
 * memory (the buffers openpgp fills) from before to after the step. No GC
 * is forced (it costs more than the cases): the growth counts what the step
 * allocated and still held or had not yet been collected, an upper bound
 * of what it kept unless a collection ran during the step.
 */
async function measured<T>(label: string, step: () => Promise<T>): Promise<T> {
  const before = memory();
  const t0 = performance.now();
  const result = await step();
  const ms = performance.now() - t0;
  addTime(label.split(' ')[0]!, ms);
  const growth = memory() - before;
  if (ms > stats.maxMs) [stats.maxMs, stats.maxMsCase] = [ms, label];
  if (growth > stats.maxGrowth) [stats.maxGrowth, stats.maxGrowthCase] = [growth, label];
  expect(growth, `${label}: memory growth ${(growth / 1048576).toFixed(1)} MB`).toBeLessThan(MEMORY_BOUND);
  return result;
}

/** One case: through parseMail and through Account.classify. */
async function readBoth(mail: HostileMail): Promise<void> {
  const parsed: ParseResult = await measured(`parseMail ${mail.label}`, () => parseMail(mail.raw, ctx));
  const classified = await measured(`classify ${mail.label}`, () => account.classify(mail.raw));
  stats.cases += 1;
  const key = parsed.ok ? `accepted ${parsed.message.kind}` : parsed.reason;
  stats.outcomes.set(key, (stats.outcomes.get(key) ?? 0) + 1);

  checkTyped(parsed, 'parseMail');
  if (parsed.ok) expect(validateMessage(parsed.message).ok).toBe(true);
  checkTyped({ ...classified, ...(classified.ok ? {} : { from: classified.parsed && !classified.parsed.ok ? classified.parsed.from : undefined }) }, 'classify');
  if (classified.ok) expect(classified.parsed?.ok).toBe(true);
}

function params(numRuns: number): fc.Parameters<[HostileMail]> {
  return {
    seed: SEED,
    numRuns,
    // a failing case is reported as it is: shrinking megabyte mails through openpgp takes long
    endOnFailure: process.env.FUZZ_SHRINK !== '1',
    reporter: (details) => {
      if (details.failed) {
        throw new Error(
          `fuzz case failed (seed ${SEED}, path ${details.counterexamplePath ?? '?'}; rerun with FUZZ_SEED=${SEED}):\n` +
            `${details.counterexample ? fc.stringify(details.counterexample) : ''}\n${details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)}`,
        );
      }
    },
  };
}

const cpuAtStart = process.cpuUsage();
const wallAtStart = performance.now();

beforeAll(async () => {
  console.log(`fuzz seed ${SEED} (FUZZ_SEED=... to change it), scale ${SCALE}`);
  process.on('unhandledRejection', onUnhandled);
  cast = await loadCast();
  corpus = await pgpCorpus(cast);
  dir = await tempDir('fuzz');
  // A real account for hitoshi: config and state on disk, no mail server needed for classify.
  const configFile = path.join(dir, 'config.toml');
  const stateDir = path.join(dir, 'state');
  await init({
    config: configFile,
    email: HITOSHI,
    secret: { password: 'unused' },
    imap: { host: '127.0.0.1', port: 9, tls: 'tls' },
    smtp: { host: '127.0.0.1', port: 9, tls: 'tls' },
    stateDir,
    iceServers: [],
    skipCheck: true,
  });
  const first = await openAccount({ config: configFile });
  await fs.writeFile(Account.identityFile(first.stateDir), readFileSync(path.join(FIXTURES, 'keys', 'hitoshi.private.asc')));
  const now = new Date(T0.getTime() + 60_000);
  account = await openAccount({ config: configFile, clock: () => now });
  expect(account.identity.fingerprint).toBe(cast.hitoshi.fingerprint);
  await account.contacts.add({ name: 'alice', email: ALICE });
  await account.contacts.pinKey(ALICE, cast.alice.armoredPublicKey, cast.alice.fingerprint, 'manual');
  await account.contacts.add({ name: 'carol', email: 'carol@example.test' });
  await account.contacts.add({ name: 'dave', email: 'dave@example.test' });
  await account.contacts.update('dave@example.test', (c) => (c.blocked = true));
  ctx = contextFor(cast.hitoshi, {
    now,
    contacts: { [ALICE]: { publicKey: cast.alice.publicKey }, 'carol@example.test': {}, 'dave@example.test': { blocked: true } },
    policy: 'contacts',
  });
}, 120_000);

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  const outcomes = [...stats.outcomes.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
  console.log(
    `fuzz: ${stats.cases} cases (each through parseMail and classify), seed ${SEED}\n` +
      `  slowest case ${stats.maxMs.toFixed(1)} ms (${stats.maxMsCase})\n` +
      `  largest heap+external growth in a case ${(stats.maxGrowth / 1048576).toFixed(1)} MB (${stats.maxGrowthCase})\n` +
      `  outcomes: ${outcomes}\n` +
      `  time spent: ${[...stats.total.entries()].map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`).join(', ')}; ` +
      `this process used ${((process.cpuUsage(cpuAtStart).user + process.cpuUsage(cpuAtStart).system) / 1e6).toFixed(1)} s of CPU in ${((performance.now() - wallAtStart) / 1000).toFixed(1)} s`,
  );
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('hitoshi reads hostile mail for a long time and stays up', () => {
  it('the real payloads the mutants start from are accepted untouched (the fuzz reaches deep)', async () => {
    for (const v of corpus.valid) {
      const r = await parseMail(Buffer.from(v.raw, 'latin1'), ctx);
      expect(r.ok, `${v.label}: ${r.ok ? '' : r.detail}`).toBe(true);
    }
  });

  it('broken and nested MIME, many parts, odd charsets, encoded words, invalid UTF-8, odd version headers', async () => {
    await fc.assert(fc.asyncProperty(mimeMail, (m) => readBoth(m)), params(runs(8300)));
  }, 600_000);

  it('header floods: thousands of headers, huge folded lines', async () => {
    await fc.assert(fc.asyncProperty(headerFlood, (m) => readBoth(m)), params(runs(300)));
  }, 600_000);

  it('real signed/encrypted payloads, truncated, bit-flipped, re-tagged, bombs and nested compression', async () => {
    await fc.assert(fc.asyncProperty(pgpMail(corpus), (m) => readBoth(m)), params(runs(600)));
  }, 600_000);

  it('valid mails with hostile display names, subjects, Message-IDs, version and Autocrypt headers', async () => {
    await fc.assert(fc.asyncProperty(headerMutants(corpus), (m) => readBoth(m)), params(runs(800)));
  }, 600_000);

  it('over 10,000 cases in all, none threw, no promise was left rejected', () => {
    if (SCALE >= 1) expect(stats.cases).toBeGreaterThanOrEqual(10_000);
    expect(unhandled).toEqual([]);
  });
});
