/**
 * A relay the user chooses (issue 14, item 1), in the network-namespace
 * harness of nat.test.ts (root only): coturn on the public segment offers
 * STUN and TURN over UDP with one user and password, and both peers of
 * every call are given that relay (IceConfig.turn, as `[ice] turn` gives
 * it).
 *
 * - The pairs that cannot meet directly (port-restricted x symmetric,
 *   symmetric x symmetric; nat.md) connect through the relay and say
 *   "relayed"; every other pair stays direct.
 * - A file crosses symmetric x symmetric through the relay with the right
 *   SHA-256 (of the file on the receiver's disk).
 * - `peerdial doctor`, run in a site behind a symmetric NAT, allocates on
 *   the relay with the right password (from the URL, and from a 0600 file)
 *   and reports a wrong one as refused.
 */
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callPath, describePath } from '../src/session/relay.js';
import type { CheckResult } from '../src/doctor/checks.js';
import { type CallResult, placeCall } from './harness/netns-call.js';
import { type Network, type SiteKind, buildNetwork } from './harness/netns.js';

const KINDS: SiteKind[] = ['public', 'fullcone', 'restricted', 'symmetric'];
const USER = 'alice';
const PASSWORD = 'relay pass/with:odd@chars';
const CONNECT_TIMEOUT_MS = 20_000;

/** nat.md: these meet only through a relay. */
function needsRelay(a: SiteKind, b: SiteKind): boolean {
  const pair = new Set([a, b]);
  return (a === 'symmetric' && b === 'symmetric') || (pair.has('symmetric') && pair.has('restricted'));
}

async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

describe('a TURN relay the user chose, in network namespaces (root)', () => {
  let net: Network;
  let dir: string;
  const relay = () => [{ host: net.turn!.host, port: net.turn!.port, username: USER, password: PASSWORD }];

  beforeAll(async () => {
    net = await buildNetwork({
      sites: KINDS.flatMap((kind) => [
        { name: `${kind}-a`, kind },
        { name: `${kind}-b`, kind },
      ]),
      turn: { user: USER, password: PASSWORD },
    });
    dir = join(tmpdir(), `${net.prefix}turn`);
    mkdirSync(dir, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await net?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(
    'with the relay configured every pair connects; the pairs that cannot meet directly say "relayed"',
    async () => {
      const pairs = KINDS.flatMap((from) => KINDS.map((to) => [from, to] as const));
      // Two calls at a time: with four or more at once, peers here were seen to
      // print nothing for 30 s before their offer, relay or not (nat.test.ts's
      // matrix once too); not understood yet.
      const results = await pool(pairs, 2, ([from, to]) =>
        placeCall(net, net.site(`${from}-a`), net.site(`${to}-b`), {
          connectTimeoutMs: CONNECT_TIMEOUT_MS,
          caller: { turn: relay() },
          callee: { turn: relay() },
        }),
      );
      const show = (r: CallResult) =>
        `${r.caller} -> ${r.callee}${r.offers > 1 ? ` (second offer; the first failed: ${r.firstFailure?.message})` : ''}: ${r.connected ? `connected, callee says ${describePath(r.pair)} (${r.pair?.local} <-> ${r.pair?.remote}), caller says ${describePath(r.callerPair)} (${r.callerPair?.local} <-> ${r.callerPair?.remote})` : `FAILED ${JSON.stringify(r.failure)}\n  caller: ${r.callerLog.join(' | ')}\n  callee: ${r.calleeLog.join(' | ')}`}`;
      const report = [
        'Calls with a TURN relay (coturn, UDP) configured on both sides; the path as the callee saw it',
        '(nat.md: the caller\'s selected pair is unreliable in libjuice) and the time from answer to connected:',
        '',
        `| caller \\\\ callee | ${KINDS.join(' | ')} |`,
        `|---|${KINDS.map(() => '---').join('|')}|`,
        ...KINDS.map((from) => `| **${from}** | ${KINDS.map((to) => {
          const r = results[pairs.findIndex(([a, b]) => a === from && b === to)]!;
          return r.connected && r.echo ? `${callPath(r.pair)} (${r.ms} ms${r.offers > 1 ? ', second offer' : ''})` : '**no**';
        }).join(' | ')} |`),
        '',
        'Both views of every call:',
        '',
        ...results.map(show),
        '',
      ].join('\n');
      mkdirSync('.tmp', { recursive: true });
      writeFileSync('.tmp/turn-matrix.md', report);
      console.log(report);

      // Every pair connects and data flows.
      expect(results.filter((r) => !(r.connected && r.echo)).map(show)).toEqual([]);
      // The pairs that cannot meet directly (nat.md) go through the relay: both sides say so.
      const relayedPairs = results.filter((_, i) => needsRelay(...pairs[i]!));
      expect(relayedPairs.map((r) => `${r.caller} -> ${r.callee}: callee ${callPath(r.pair)}, caller ${callPath(r.callerPair)}`)).toEqual([
        'restricted-a -> symmetric-b: callee relayed, caller relayed',
        'symmetric-a -> restricted-b: callee relayed, caller relayed',
        'symmetric-a -> symmetric-b: callee relayed, caller relayed',
      ]);
      for (const r of relayedPairs) {
        expect(describePath(r.pair), show(r)).toMatch(new RegExp(`^relayed through ${net.turn!.host.replace(/\./g, '\\.')}:5\\d{4} \\(TURN\\)$`));
      }
      // Two hosts on the same segment: their host pair answers at once and stays direct.
      expect(callPath(results[0]!.pair), show(results[0]!)).toBe('direct');
    },
    400_000,
  );

  it(
    'a relay on one side only serves the calls it places as well as those it takes: port-restricted x symmetric both ways, the relay on the caller, then on the callee',
    async () => {
      const lines: string[] = [];
      for (const [from, to] of [
        ['symmetric-a', 'restricted-b'],
        ['restricted-a', 'symmetric-b'],
      ] as const) {
        for (const side of ['caller', 'callee'] as const) {
          const r = await placeCall(net, net.site(from), net.site(to), { connectTimeoutMs: CONNECT_TIMEOUT_MS, [side]: { turn: relay() } });
          lines.push(`${from} -> ${to}, relay on the ${side} only: ${r.connected && r.echo ? callPath(r.pair) : `FAILED ${JSON.stringify(r.failure)}\n  caller: ${r.callerLog.join(' | ')}\n  callee: ${r.calleeLog.join(' | ')}`}`);
        }
      }
      console.log(lines.join('\n'));
      // As the callee saw the pair (its view is the reliable one; nat.md).
      expect(lines).toEqual([
        'symmetric-a -> restricted-b, relay on the caller only: relayed',
        'symmetric-a -> restricted-b, relay on the callee only: relayed',
        'restricted-a -> symmetric-b, relay on the caller only: relayed',
        'restricted-a -> symmetric-b, relay on the callee only: relayed',
      ]);
    },
    400_000,
  );

  it(
    'a file crosses symmetric x symmetric through the relay with the right SHA-256',
    async () => {
      const bytes = 16 * 1024 * 1024;
      const r = await placeCall(net, net.site('symmetric-a'), net.site('symmetric-b'), {
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        caller: { turn: relay(), transfer: { bytes, dir: join(dir, 'send') } },
        callee: { turn: relay(), transfer: { bytes, dir: join(dir, 'received') } },
      });
      console.log(
        `symmetric x symmetric: ${describePath(r.pair)}; ${bytes} bytes sent in ${r.transfer?.sent?.ms} ms ` +
          `(${r.transfer?.sent ? ((bytes * 8) / r.transfer.sent.ms / 1000).toFixed(1) : '?'} Mbit/s); sent ${r.transfer?.sent?.sha256}, on disk ${r.transfer?.received?.sha256}`,
      );
      expect(r.connected, JSON.stringify(r.failure)).toBe(true);
      expect(callPath(r.pair)).toBe('relayed');
      expect(r.transfer?.sent).toMatchObject({ status: 'sent', bytes });
      expect(r.transfer?.received).toMatchObject({ status: 'saved', bytes, sha256: r.transfer?.sent?.sha256 });
      expect(r.transfer?.sent?.sha256).toMatch(/^[0-9a-f]{64}$/);
    },
    300_000,
  );

  /** `peerdial doctor --json` in a namespace; its checks, whatever its exit status. */
  async function doctorIn(ns: string, config: string, env: NodeJS.ProcessEnv = {}): Promise<CheckResult[]> {
    const child = net.spawnCmdInNs(ns, 'env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, 'bin/peerdial.js', '--config', config, '--json', 'doctor', '--timeout', '5', '--map-method', 'off']);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
    await new Promise((r) => child.once('exit', r));
    try {
      return (JSON.parse(out) as { checks: CheckResult[] }).checks;
    } catch {
      throw new Error(`doctor printed no JSON: ${out}\n${err}`);
    }
  }

  function config(name: string, ice: string): string {
    const file = join(dir, `${name}.toml`);
    writeFileSync(file, `[defaults]\nstate_dir = ${JSON.stringify(join(dir, `${name}-state`))}\n[ice]\nservers = ["stun:${net.stun.v4[0]}:${net.stun.port}"]\n${ice}\n`);
    return file;
  }

  it(
    'doctor behind a symmetric NAT: an allocation on the relay with the right password (in the URL, or in a 0600 file), a refusal with a wrong one',
    async () => {
      const t = net.turn!;
      const enc = encodeURIComponent;
      const good = config('good', `turn = ["turn:${USER}:${enc(PASSWORD)}@${t.host}:${t.port}"]`);
      const passwordFile = join(dir, 'turn-password');
      writeFileSync(passwordFile, `${PASSWORD}\n`);
      chmodSync(passwordFile, 0o600);
      const fromFile = config('file', `turn = ["turn:${USER}@${t.host}:${t.port}"]\nturn_password_file = ${JSON.stringify(passwordFile)}`);
      const wrong = config('wrong', `turn = ["turn:${USER}:not-the-password@${t.host}:${t.port}"]`);
      const fromEnv = config('env', `turn = ["turn:${USER}@${t.host}:${t.port}"]\nturn_password_env = "RELAY_PW"`);
      const site = net.site('symmetric-a');
      const [g, f, w, e] = await Promise.all([
        doctorIn(site.hostNs, good),
        doctorIn(site.hostNs, fromFile),
        doctorIn(site.hostNs, wrong),
        doctorIn(site.hostNs, fromEnv, { RELAY_PW: 'also-wrong' }),
      ]);
      const turnOf = (checks: CheckResult[]) => checks.filter((c) => c.id === 'turn');
      console.log([g, f, w, e].map((c) => JSON.stringify(turnOf(c))).join('\n'));
      for (const checks of [g, f]) {
        const [c] = turnOf(checks);
        expect(c?.verdict, JSON.stringify(checks)).toBe('ok');
        // the relay's address, and this site as the relay sees it: the symmetric router's public address
        expect(c?.detail).toContain(`turn:${USER}@${t.host}:${t.port}: allocation over UDP succeeded (realm ${t.realm}): relayed address ${t.host}:`);
        expect(c?.detail).toContain(`sees this machine at ${site.publicIp}:`);
        expect(c?.detail).toContain('released again');
        expect(c?.detail).toContain('transports: UDP works; TCP and TLS are not checked');
        expect(c?.detail).not.toContain(PASSWORD);
      }
      for (const checks of [w, e]) {
        const [c] = turnOf(checks);
        expect(c?.verdict, JSON.stringify(checks)).toBe('fail');
        expect(c?.detail).toMatch(/refused the user name or password \(401 .*\) for user alice \[AUTH_FAILED\]/);
        expect(c?.hint).toMatch(/\[ice\] turn/);
        expect(c?.detail).not.toContain('not-the-password');
      }
    },
    120_000,
  );
});

// A config that asks for what libjuice cannot do is refused before any call.
describe('TURN over TCP or TLS is refused with a reason', () => {
  it.each([
    ['turns:alice:pw@relay.example.org:5349', 'TURN over TLS is not supported'],
    ['turn:alice:pw@relay.example.org:3478?transport=tcp', 'transport=tcp is not supported'],
  ])('%s', async (url, why) => {
    const { parseConfig } = await import('../src/config/config.js');
    let err: (Error & { code?: string }) | undefined;
    try {
      parseConfig(`[ice]\nturn = [${JSON.stringify(url)}]\n`, '/home/alice/.config/peerdial/config.toml', {});
    } catch (e) {
      err = e as Error;
    }
    expect(err?.code).toBe('CONFIG_INVALID');
    expect(err?.message).toContain(`line 2: ice.turn[0] "${url.replace(':pw@', ':***@')}": ${why}`);
    expect(err?.message).toContain('relays over UDP only');
    expect(err?.message).not.toContain(':pw@');
  });
});
