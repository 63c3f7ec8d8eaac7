/**
 * `peerdial doctor` against the real mail stack: every check is reported
 * with a verdict; a working setup passes (the IDLE timing mail ends up in
 * peerdial's folder, other mail is untouched); an unreachable STUN server
 * and a Dovecot without IDLE are reported as what they are, with a hint.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createSocket, type Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { makePeer, mailboxSnapshot, runCli, tempDir, type Peer } from './harness/peers.js';
import { stunServer } from './harness/stun-responder.js';
import { natPmpResponder, type NatPmpResponder } from './harness/natpmp-responder.js';
import { parseStunUrl, type CheckResult } from '../src/doctor/checks.js';

const ALL = ['config', 'imap-login', 'smtp', 'imap-idle', 'sieve', 'mail-kept', 'stun', 'nat', 'turn', 'port-mapping', 'ipv6'];

async function closedUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function withIceServers(peer: Peer, servers: string[]): Promise<string> {
  const text = await fs.readFile(peer.configFile, 'utf8');
  const file = path.join(path.dirname(peer.configFile), `doctor-${Math.random().toString(36).slice(2)}.toml`);
  const replaced = text.replace(/^servers = \[.*\]$/m, `servers = [ ${servers.map((s) => JSON.stringify(s)).join(', ')} ]`);
  expect(replaced).not.toBe(text);
  await fs.writeFile(file, replaced);
  return file;
}

// The port-mapping check asks only the NAT-PMP responder on 127.0.0.1 (never a real router).
const PORTMAP_ARGS = ['--gateway', '127.0.0.1', '--map-method', 'natpmp', '--watch-seconds', '2'];

async function doctor(config: string): Promise<{ code: number | null; checks: CheckResult[]; stderr: string }> {
  const r = await runCli(['--config', config, '--json', 'doctor', '--timeout', '15', ...PORTMAP_ARGS], { timeoutMs: 90_000 });
  const parsed = JSON.parse(r.stdout) as { ok: boolean; checks: CheckResult[] };
  return { code: r.code, checks: parsed.checks, stderr: r.stderr };
}

const byId = (checks: CheckResult[], id: string) => checks.find((c) => c.id === id)!;

let dir: string;
let natpmp: NatPmpResponder;
beforeAll(async () => {
  ensureMailServers();
  dir = await tempDir('doctor');
  natpmp = await natPmpResponder('grant');
});
afterAll(async () => {
  await natpmp?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

it('reads STUN URLs from ice.servers', () => {
  expect(parseStunUrl('stun:127.0.0.2:3478')).toEqual({ host: '127.0.0.2', port: 3478 });
  expect(parseStunUrl('stun:localhost')).toEqual({ host: 'localhost', port: 3478 });
  expect(parseStunUrl('stun:[::1]:19302')).toEqual({ host: '::1', port: 19302 });
  expect(parseStunUrl('turn:127.0.0.3:3478')).toBeUndefined();
});

describe('doctor on a working mail stack', () => {
  let stack: MailStack;
  let alice: Peer;
  const stuns: Socket[] = [];

  beforeAll(async () => {
    stack = await startMailStack({ users: ['alice'] });
    alice = await makePeer(stack, 'alice', dir);
  }, 120_000);
  afterAll(async () => {
    for (const s of stuns) s.close();
    await stack?.stop();
  });

  it('reports every check; mail, STUN and NAT pass; the test mail is filed, other mail untouched', async () => {
    await stack.deliverRaw('alice', 'From: bob@example.test\r\nTo: alice@example.test\r\nSubject: lunch\r\nMessage-ID: <lunch@example.test>\r\n\r\nAt noon?\r\n');
    const before = await mailboxSnapshot(stack, 'alice');
    const a = await stunServer();
    const b = await stunServer();
    stuns.push(a.socket, b.socket);
    const config = await withIceServers(alice, [`stun:127.0.0.1:${a.port}`, `stun:127.0.0.1:${b.port}`]);
    natpmp.requests.length = 0;
    const { code, checks, stderr } = await doctor(config);
    expect(checks.map((c) => c.id).sort()).toEqual([...ALL].sort());
    for (const c of checks) expect(['ok', 'warn', 'fail', 'not-checked']).toContain(c.verdict);
    expect(code, stderr + JSON.stringify(checks, null, 2)).toBe(0);
    expect(byId(checks, 'config').verdict).toBe('ok');
    expect(byId(checks, 'imap-login').verdict).toBe('ok');
    expect(byId(checks, 'smtp').verdict).toBe('ok');
    const idle = byId(checks, 'imap-idle');
    expect(idle.verdict).toBe('ok');
    expect(idle.detail).toMatch(/IDLE supported; .* in \d+ ms/);
    expect(idle.ms).toBeGreaterThan(0);
    expect(byId(checks, 'stun')).toMatchObject({ verdict: 'ok' });
    expect(byId(checks, 'stun').detail).toContain('sees this machine at 127.0.0.1:');
    expect(byId(checks, 'nat').verdict).toBe('ok');
    expect(byId(checks, 'nat').detail).toContain('endpoint-independent');
    // no relay is named by default: the TURN check says there is none and why it matters
    expect(byId(checks, 'turn')).toMatchObject({ verdict: 'not-checked' });
    expect(byId(checks, 'turn').detail).toMatch(/^no TURN relay configured \(\[ice\] turn\)/);
    const pm = byId(checks, 'port-mapping');
    expect(pm.verdict, pm.detail).toBe('ok');
    expect(pm.detail).toMatch(/^the router 127\.0\.0\.1 mapped 203\.0\.113\.7:\d+ -> 127\.0\.0\.1:\d+ via natpmp for 60 s, removed again: peers can reach this port even behind a symmetric NAT$/);
    // an ephemeral port mapped for 60 s, then deleted (lifetime 0)
    const maps = natpmp.requests.filter((r) => r.op === 1);
    expect(maps.map((r) => r.lifetime)).toEqual([60, 0]);
    expect(maps[0]!.internal).toBe(maps[1]!.internal);
    expect(['ok', 'warn']).toContain(byId(checks, 'ipv6').verdict);
    expect(byId(checks, 'mail-kept')).toMatchObject({ verdict: 'ok', detail: expect.stringMatching(/stayed 2 s in INBOX untouched; removed again/) });
    // the user's own mail is exactly as it was; the doctor's mail sits in peerdial's folder
    expect(await mailboxSnapshot(stack, 'alice')).toEqual(before);
    const filed = await mailboxSnapshot(stack, 'alice', 'Peerdial');
    expect(filed).toHaveLength(1);
    expect(filed[0]!.source).toContain('Peerdial-Version: 1');
  });

  it('an unreachable STUN server is a failure with a hint (exit 1); the text output has the hint; a silent router is a warning', async () => {
    const port = await closedUdpPort();
    natpmp.mode = 'silent';
    const config = await withIceServers(alice, [`stun:127.0.0.1:${port}`]);
    const { code, checks } = await doctor(config);
    expect(code).toBe(1);
    const stun = byId(checks, 'stun');
    expect(stun.verdict).toBe('fail');
    expect(stun.detail).toContain(`127.0.0.1:${port}`);
    expect(stun.hint).toContain('ice.servers');
    expect(byId(checks, 'nat')).toMatchObject({ verdict: 'not-checked' });
    expect(byId(checks, 'imap-login').verdict).toBe('ok');
    const pm = byId(checks, 'port-mapping');
    expect(pm.verdict).toBe('warn');
    expect(pm.detail).toMatch(/no router mapped UDP port \d+: NAT-PMP: no NAT-PMP answer from 127\.0\.0\.1:5351 within 5000 ms/);
    expect(pm.hint).toBe('Enable UPnP or NAT-PMP on your router, or forward a UDP port by hand and set [ice] port_range_begin/end.');
    const text = await runCli(['--config', config, 'doctor', '--timeout', '15', ...PORTMAP_ARGS], { timeoutMs: 90_000 });
    natpmp.mode = 'grant';
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/\[FAIL\] STUN reachability: 127\.0\.0\.1:\d+/);
    expect(text.stdout).toContain('what to do: Check ice.servers');
    expect(text.stdout).toContain('[WARN] port mapping (UPnP-IGD, NAT-PMP/PCP): no router mapped UDP port');
    expect(text.stdout).toContain('what to do: Enable UPnP or NAT-PMP on your router');
  });

  it('no STUN server configured: a warning, NAT not checked', async () => {
    const { checks } = await doctor(alice.configFile);
    expect(byId(checks, 'stun').verdict).toBe('warn');
    expect(byId(checks, 'nat').verdict).toBe('not-checked');
  });

  it('a broken config is reported, and the checks that need it are not run', async () => {
    const bad = path.join(dir, 'bad.toml');
    await fs.writeFile(bad, '[defaults]\nring_seconds = "long"\n');
    const { code, checks } = await doctor(bad);
    expect(code).toBe(1);
    expect(byId(checks, 'config')).toMatchObject({ verdict: 'fail' });
    expect(byId(checks, 'config').detail).toContain('defaults.ring_seconds');
    expect(checks.map((c) => c.id).sort()).toEqual([...ALL].sort());
    expect(byId(checks, 'imap-login').verdict).toBe('not-checked');
  });
});

describe('doctor against a Dovecot without IDLE', () => {
  let stack: MailStack;
  let alice: Peer;
  beforeAll(async () => {
    stack = await startMailStack({ users: ['alice'], disableIdle: true });
    alice = await makePeer(stack, 'alice', path.join(dir, 'noidle'));
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('IDLE missing is reported as such, with the polling consequence and a hint', async () => {
    const { checks } = await doctor(alice.configFile);
    expect(byId(checks, 'imap-login').verdict).toBe('ok');
    expect(byId(checks, 'smtp').verdict).toBe('ok');
    const idle = byId(checks, 'imap-idle');
    expect(idle.verdict).toBe('warn');
    expect(idle.detail).toContain('does not offer IDLE');
    expect(idle.detail).toContain('polls every 60 s');
    expect(idle.hint).toContain('poll_seconds');
  });
});
