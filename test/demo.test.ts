/**
 * `peerdial demo` runs to the end on this machine without root and without
 * system packages, and the process exits by itself.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './harness/peers.js';

describe('peerdial demo', () => {
  it('runs a whole call (offer, answer, connect, chat lines, a file) and exits by itself', async () => {
    const r = await runCli(['demo'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('offer sent by mail; ringing...');
    expect(r.stdout).toMatch(/connected directly: .*127\.0\.0\.1.* <-> .*127\.0\.0\.1/);
    expect(r.stdout).toContain('hitoshi said: "Hello Alice!');
    expect(r.stdout).toContain('SHA-256 at hitoshi\'s matches');
    expect(r.stdout).toMatch(/Done in [\d.]+ s\./);
  });

  it('--json gives the figures to scripts', async () => {
    const r = await runCli(['--json', 'demo'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { ok: boolean; setupMs: number; fileBytes: number; chat: string[] };
    expect(j.ok).toBe(true);
    expect(j.fileBytes).toBe(4 * 1024 * 1024);
    expect(j.setupMs).toBeGreaterThan(0);
    expect(j.chat).toHaveLength(2);
  });
});
