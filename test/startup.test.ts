/**
 * Start-up: `peerdial --help` and `peerdial contacts list` load only the
 * command descriptors and what listing contacts needs. The mail clients,
 * OpenPGP, node-datachannel and the rest are imported by the commands that
 * use them. Each run records the modules it loaded (test/harness/record-modules.mjs);
 * the time it takes is a benchmark figure (bench/startup.mjs), not a test.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT, runCli, tempDir } from './harness/peers.js';

const RECORDER = pathToFileURL(path.join(ROOT, 'test', 'harness', 'record-modules.mjs')).href;
const HEAVY = ['node-datachannel', 'openpgp', 'imapflow', 'mailparser', 'nodemailer', 'smtp-server', 'qrcode'];

let dir: string;
let config: string;
let runs = 0;

/** Runs the CLI with the recorder; its output and the packages (node_modules/NAME) it loaded. */
async function recorded(args: string[]): Promise<{ code: number; stdout: string; stderr: string; packages: Set<string> }> {
  const file = path.join(dir, `modules-${++runs}.txt`);
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', RECORDER, BIN, ...args], { env: { ...process.env, PEERDIAL_RECORD_MODULES: file } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
  const urls = (await fs.readFile(file, 'utf8')).split('\n').filter(Boolean);
  const packages = new Set(urls.map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1]).filter((p): p is string => !!p));
  return { ...r, packages };
}

beforeAll(async () => {
  dir = await tempDir('startup');
  config = path.join(dir, 'config.toml');
  // nothing listens on port 1: --skip-check saves the account anyway
  const init = await runCli(
    ['--config', config, '--quiet', 'init', '--email', 'alice@example.test', '--password-env', 'PEERDIAL_TEST_PW', '--imap-host', '127.0.0.1', '--imap-port', '1', '--imap-tls', 'none',
      '--smtp-host', '127.0.0.1', '--smtp-port', '1', '--smtp-tls', 'none', '--state-dir', path.join(dir, 'state'), '--stun', 'none', '--skip-check'],
    { env: { PEERDIAL_TEST_PW: 'unused' } },
  );
  expect(init.code, init.stderr).toBe(0);
  const add = await runCli(['--config', config, 'contacts', 'add', 'hitoshi', 'hitoshi@example.jp', '--alias', '12', '--key', '0123 4567 89AB CDEF 0123 4567 89AB CDEF 0123 4567']);
  expect(add.code, add.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('start-up loads only what the command needs', () => {
  it('peerdial --help: the descriptors of every command, none of their implementations', async () => {
    const r = await recorded(['--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Usage: peerdial');
    for (const c of ['init', 'contacts', 'call', 'agent', 'demo', 'invite', 'doctor']) expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    expect(r.packages).toContain('commander');
    for (const p of HEAVY) expect(r.packages, `--help loaded ${p}`).not.toContain(p);
  });

  it('peerdial contacts list: reads contacts.json, neither the private key nor OpenPGP nor a mail client', async () => {
    const r = await recorded(['--config', config, 'contacts', 'list']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/hitoshi\s+hitoshi@example\.jp\s+12\s+introduced \(key awaited\)\s+no address yet/);
    for (const p of HEAVY) expect(r.packages, `contacts list loaded ${p}`).not.toContain(p);
  });

  it('a command that needs the identity key still loads OpenPGP (the recorder sees packages)', async () => {
    const r = await recorded(['--config', config, 'contacts', 'show', 'hitoshi']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('0123 4567 89AB CDEF 0123 4567 89AB CDEF 0123 4567');
    expect(r.packages).toContain('openpgp');
  });

  it('contacts list without an identity key says how to make one, as before', async () => {
    await fs.rename(path.join(dir, 'state', 'accounts', 'alice@example.test', 'identity.asc'), path.join(dir, 'identity.asc'));
    try {
      const r = await runCli(['--config', config, 'contacts', 'list']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('No identity key for alice@example.test');
      expect(r.stderr).toContain('[KEY_MISSING]');
      expect(r.stderr).toContain('peerdial init --email alice@example.test');
    } finally {
      await fs.rename(path.join(dir, 'identity.asc'), path.join(dir, 'state', 'accounts', 'alice@example.test', 'identity.asc'));
    }
  });
});
