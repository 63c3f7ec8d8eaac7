/**
 * `peerdial demo` runs to the end on this machine without root and without
 * system packages, and the process exits by itself.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BIN, ROOT, runCli } from './harness/peers.js';

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

  it.each([
    ['hoodiecrow-imap', 'IMAP server'],
    ['smtp-server', 'SMTP server'],
  ])('without its optional %s package: says which package and how to install it, and nothing else needs it', async (name, role) => {
    const pkg = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    expect(pkg.optionalDependencies?.[name]).toBeDefined();
    expect(pkg.dependencies[name]).toBeUndefined();
    const hide = pathToFileURL(path.join(ROOT, 'test', 'harness', 'hide-package.mjs')).href;
    const run = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ['--import', hide, BIN, ...args], { env: { ...process.env, PEERDIAL_HIDE_PACKAGE: name } }, (err, stdout, stderr) => {
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
        });
      });
    const r = await run(['demo']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`peerdial demo needs the ${role} package ${name} (an optional dependency), and it is not installed.`);
    expect(r.stderr).toContain(`npm install ${name}@${pkg.optionalDependencies![name]}`);
    expect(r.stdout).not.toContain('offer sent by mail');
    // the rest of peerdial does not miss it
    const help = await run(['--help']);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^  demo\b/m);
  });
});
