/**
 * No DNS lookup on a peer's behalf: alice's offer names hostname candidates
 * (`decoy.peerdial.test`, `alice-decoy.local`) that point at a decoy
 * socket. Both peers run in a network namespace of their own whose only DNS
 * server is a stub that records every query (test/harness/dns-stub-peer.mjs).
 * A probe lookup reaches the stub, so a lookup would be seen; the hostname
 * candidates cause none, and nothing reaches the decoy. Needs root (unshare).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../harness/peers.js';

const run = promisify(execFile);
let dir: string;
let resolv: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'peerdial-nodns-'));
  resolv = path.join(dir, 'resolv.conf');
  await writeFile(resolv, 'nameserver 127.0.0.1\noptions attempts:1 timeout:2\n');
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('alice offers hostname candidates to hitoshi', () => {
  it('no DNS query is made for them and nothing reaches the decoy; the call fails without other candidates and connects with one', async () => {
    const script = path.join(ROOT, 'test', 'harness', 'dns-stub-peer.mjs');
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const { stdout, stderr } = await run(
      'unshare',
      ['--net', '--mount', 'sh', '-c', `ip link set lo up && mount --bind ${q(resolv)} /etc/resolv.conf && exec ${q(process.execPath)} ${q(script)}`],
      { timeout: 60_000 },
    );
    const r = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { probe: string; queries: string[]; decoy: number; refused: string; connected: boolean };
    expect(r.probe, stderr).toBe('127.0.0.1');
    expect(r.queries).toEqual(['probe.peerdial.test']);
    expect(r.decoy).toBe(0);
    expect(r.refused).toMatch(/the offer names no usable candidate: dropped decoy\.peerdial\.test \(a hostname \(peerdial makes no DNS lookups for a peer\)\), alice-decoy\.local \(a hostname/);
    expect(r.connected).toBe(true);
  }, 90_000);
});
