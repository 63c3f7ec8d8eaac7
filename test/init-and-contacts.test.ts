/**
 * Setting up: `peerdial init` against the real servers, with every way a
 * login can fail reported by layer; the address book; `peerdial address`.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { runCli, tempDir } from './harness/peers.js';
import { stunServer } from './harness/stun-responder.js';

let stack: MailStack;
let dir: string;
let pwFile: string;
let caFile: string;

function initArgs(config: string, over: Record<string, string> = {}): string[] {
  const u = stack.users.alice!;
  const o: Record<string, string> = {
    '--email': u.email,
    '--user': u.user,
    '--password-command': `cat '${pwFile}'`,
    '--imap-host': stack.host,
    '--imap-port': String(stack.imapPort),
    '--imap-tls': 'starttls',
    '--smtp-host': stack.host,
    '--smtp-port': String(stack.smtpPort),
    '--smtp-tls': 'starttls',
    '--ca-file': caFile,
    '--state-dir': path.join(path.dirname(config), 'state'),
    '--stun': 'none',
    ...over,
  };
  return ['--config', config, 'init', ...Object.entries(o).flat()];
}

beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice'] });
  dir = await tempDir('init');
  pwFile = path.join(dir, 'pw');
  await fs.writeFile(pwFile, stack.users.alice!.password, { mode: 0o600 });
  caFile = path.join(dir, 'ca.pem');
  await fs.writeFile(caFile, stack.ca);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('peerdial init', () => {
  it('tests both logins, writes a private config and an identity key', async () => {
    const config = path.join(dir, 'ok', 'config.toml');
    const r = await runCli(initArgs(config));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('IMAP: ok: login ok, IDLE supported');
    expect(r.stderr).toContain('SMTP: ok: login ok');
    expect(r.stdout).toMatch(/Your identity key for alice@example\.test: ([0-9A-F]{4} ){9}[0-9A-F]{4}/);
    expect((await fs.stat(config)).mode & 0o777).toBe(0o600);
    const text = await fs.readFile(config, 'utf8');
    expect(text).not.toContain(stack.users.alice!.password);
    expect(text).toContain('password_command');
    const key = path.join(dir, 'ok', 'state', 'accounts', 'alice@example.test', 'identity.asc');
    expect((await fs.stat(key)).mode & 0o777).toBe(0o600);
    const again = await runCli(initArgs(config));
    expect(again.code).toBe(64);
    expect(again.stderr).toContain('--force');
  });

  it('a wrong password: nothing saved, AUTH_FAILED, exit 77', async () => {
    const bad = path.join(dir, 'badpw');
    await fs.writeFile(bad, 'wrong', { mode: 0o600 });
    const config = path.join(dir, 'auth', 'config.toml');
    const r = await runCli(initArgs(config, { '--password-command': `cat '${bad}'` }));
    expect(r.code).toBe(77);
    expect(r.stderr).toContain('AUTH_FAILED');
    expect(r.stderr).toContain('refused the login');
    await expect(fs.stat(config)).rejects.toThrow();
  });

  it('a port where nothing listens: TCP_FAILED, exit 69', async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise((r) => s.close(r));
    const r = await runCli(initArgs(path.join(dir, 'tcp', 'config.toml'), { '--imap-port': String(port) }));
    expect(r.code).toBe(69);
    expect(r.stderr).toContain('TCP_FAILED');
    expect(r.stderr).toContain('what to do:');
  });

  it('implicit TLS against a plain port: TLS_FAILED names TLS', async () => {
    const r = await runCli(initArgs(path.join(dir, 'tls', 'config.toml'), { '--imap-tls': 'tls' }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('TLS_FAILED');
    expect(r.stderr).toContain('Check the port and the tls setting');
    // the whole failure is named after the layer that failed: TLS, not TCP
    expect(r.stderr).toMatch(/\[TLS_FAILED\]/);
    expect(r.stderr).not.toContain('[TCP_FAILED]');
  });

  it('a password command that fails says so', async () => {
    const r = await runCli(initArgs(path.join(dir, 'cmd', 'config.toml'), { '--password-command': 'exit 3' }));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('password command');
  });

  it('no configuration yet: the error says how to make one', async () => {
    const r = await runCli(['--config', path.join(dir, 'none.toml'), 'contacts']);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('peerdial init --email');
  });
});

describe('peerdial contacts', () => {
  it('add, list, show, verify, block and remove, with aliases and short numbers', async () => {
    const config = path.join(dir, 'ok', 'config.toml');
    const c = (...args: string[]) => runCli(['--config', config, ...args]);
    expect((await c('contacts', 'add', 'hitoshi', 'Hitoshi@Example.JP', '--alias', '12', 'hit')).code).toBe(0);
    const dup = await c('contacts', 'add', 'other', 'hitoshi@example.jp');
    expect(dup.code).not.toBe(0);
    expect(dup.stderr).toContain('already exists');
    const bad = await c('contacts', 'add', 'x', 'not-an-address');
    expect(bad.code).toBe(64);
    const list = JSON.parse((await c('--json', 'contacts', 'list')).stdout);
    expect(list).toEqual([expect.objectContaining({ name: 'hitoshi', email: 'hitoshi@example.jp', aliases: ['12', 'hit'], blocked: false, verified: false })]);
    const show = await c('contacts', 'show', '12');
    expect(show.stdout).toContain('hitoshi@example.jp');
    expect(show.stdout).toContain('none yet');
    const verify = await c('contacts', 'verify', 'hit', '--confirm');
    expect(verify.code).toBe(1);
    expect(verify.stderr).toContain('No key for hitoshi yet');
    expect((await c('contacts', 'block', 'hitoshi')).stdout).toContain('is blocked');
    expect(JSON.parse((await c('--json', 'contacts', 'show', 'hitoshi')).stdout).blocked).toBe(true);
    expect((await c('contacts', 'unblock', 'hitoshi')).code).toBe(0);
    expect((await c('contacts', 'remove', 'hitoshi')).code).toBe(0);
    expect((await c('contacts')).stdout).toContain('No contacts yet');
    const missing = await c('contacts', 'show', 'nobody');
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('peerdial contacts add');
  });
});

describe('peerdial address', () => {
  it('lists loopback with --all and classifies it; --json is machine-readable', async () => {
    const r = await runCli(['--json', 'address', '--all', '--no-stun']);
    expect(r.code).toBe(0);
    const list = (JSON.parse(r.stdout) as { interfaces: { ip: string; scope: string; meaning: string }[] }).interfaces;
    const lo = list.find((a) => a.ip === '127.0.0.1');
    expect(lo).toMatchObject({ scope: 'loopback' });
    expect(lo!.meaning).toContain('this machine only');
    const plain = await runCli(['address', '--no-stun']);
    expect(plain.code).toBe(0);
    expect(plain.stdout).not.toContain('127.0.0.1');
  });

  it('asks STUN what the internet sees and guesses the NAT from two servers', async () => {
    const a = await stunServer();
    const b = await stunServer();
    try {
      const r = await runCli(['--json', 'address', '--stun', `stun:127.0.0.1:${a.port},stun:127.0.0.1:${b.port}`]);
      expect(r.code, r.stderr).toBe(0);
      const d = JSON.parse(r.stdout) as { reflexive: { ip: string; source: string }; nat: { mapping: string } };
      expect(d.reflexive).toMatchObject({ ip: '127.0.0.1', source: 'stun' });
      expect(d.nat.mapping).toBe('endpoint-independent');
      const text = await runCli(['address', '--stun', `stun:127.0.0.1:${a.port},stun:127.0.0.1:${b.port}`]);
      expect(text.stdout).toContain('what the internet sees');
      expect(text.stdout).toContain('NAT: endpoint-independent');
    } finally {
      a.socket.close();
      b.socket.close();
    }
    const dead = await runCli(['address', '--stun', 'stun:127.0.0.1:9']);
    expect(dead.code).toBe(0);
    expect(dead.stdout).toContain('STUN did not answer');
  });
});
