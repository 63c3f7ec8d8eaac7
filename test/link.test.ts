/**
 * Link hooks, the dial-up of the original invention: `link.up` runs before
 * a call or a mailbox check, `link.down` after hang-up; they run in order,
 * a hanging one is killed at its timeout, a failing `link.up` fails the
 * call with the command's own words. Poll mode brings the link up every
 * few seconds here, checks mail, keeps it up while a call is active and
 * brings it down again. The installed ppp / NetworkManager / dhcpcd
 * scripts are valid shell and call `peerdial address-changed`.
 */
import { existsSync, promises as fs, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Link, runLinkHook } from '../src/link/hooks.js';
import { parseConfig, configToToml } from '../src/config/config.js';
import { exitCodeFor, PeerdialError } from '../src/errors.js';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { BIN, introduce, makePeer, mailboxSnapshot, runCli, tempDir, waitFor, type Peer } from './harness/peers.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir('link');
});
afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const linkCfg = (file: string, extra: { up?: string; down?: string; timeoutSeconds?: number } = {}) => ({
  file: '/test/config.toml',
  link: { up: `echo up >> ${q(file)}`, down: `echo down >> ${q(file)}`, timeoutSeconds: 5, idleDownSeconds: 0, pollMinutes: 0, ...extra },
});
const lines = async (file: string) => (await fs.readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);

/** Processes whose command line contains `marker`. */
function processesWith(marker: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(marker)) out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}

describe('link hooks, without a network', () => {
  it('run in the order asked for: up once while up, down only when nobody holds the link', async () => {
    const f = path.join(dir, 'order.log');
    const link = new Link(linkCfg(f));
    await Promise.all([link.up(), link.up(), link.down(), link.up()]);
    expect(await lines(f)).toEqual(['up', 'down', 'up']);
    const release = await link.hold();
    await link.down(); // held: stays up
    expect(await lines(f)).toEqual(['up', 'down', 'up']);
    release();
    await link.down();
    await link.down(); // already down
    expect(await lines(f)).toEqual(['up', 'down', 'up', 'down']);
    expect(link.isUp).toBe(false);
  });

  it('a failing command is LINK_FAILED (exit 69) with its stderr and a hint', async () => {
    const err = await runLinkHook('up', { file: '/etc/peerdial.toml', link: { up: 'echo no modem >&2; exit 3', timeoutSeconds: 5, idleDownSeconds: 0, pollMinutes: 0 } }).catch((e) => e);
    expect(err).toBeInstanceOf(PeerdialError);
    expect(err.code).toBe('LINK_FAILED');
    expect(err.message).toContain('exit status 3');
    expect(err.message).toContain('no modem');
    expect(err.hint).toContain('link.up in /etc/peerdial.toml');
    expect(exitCodeFor(err)).toBe(69);
  });

  it('a hanging command is killed at its timeout, with everything it started', async () => {
    const f = path.join(dir, 'hang.log');
    // an hour: a hook runner that waited for it instead of killing it meets the test's timeout
    const marker = `3600.${process.pid}`;
    const started = Date.now();
    const err = await runLinkHook('up', linkCfg(f, { up: `echo dialing >&2; sleep ${marker}; echo late >> ${q(f)}`, timeoutSeconds: 1 }), { killGraceMs: 500 }).catch((e) => e);
    const took = Date.now() - started;
    expect(err.code).toBe('LINK_FAILED');
    expect(err.message).toMatch(/did not finish within 1 s and was killed: dialing/);
    console.log(`hanging link hook: LINK_FAILED after ${took} ms (timeout 1 s, kill grace 500 ms)`);
    expect(took).toBeGreaterThanOrEqual(950); // the timeout was waited for
    await new Promise((r) => setTimeout(r, 300));
    expect(processesWith(`sleep\0${marker}`)).toEqual([]);
    expect(await lines(f)).toEqual([]);
  });

  it('nothing configured: nothing runs', async () => {
    expect(await runLinkHook('down', { file: '/x.toml', link: { timeoutSeconds: 1, idleDownSeconds: 0, pollMinutes: 0 } })).toEqual({ ran: false, ms: 0 });
    expect(new Link({ file: '/x.toml' }).configured).toBe(false);
  });

  it('[link] in the config: defaults, round trip, and wrong keys named', () => {
    const cfg = parseConfig('[link]\nup = "pon provider"\ndown = "poff"\n', '/etc/p.toml', {});
    expect(cfg.link).toEqual({ up: 'pon provider', down: 'poff', timeoutSeconds: 60, idleDownSeconds: 300, pollMinutes: 0 });
    expect(parseConfig(configToToml(cfg), '/etc/p.toml', {}).link).toEqual(cfg.link);
    expect(() => parseConfig('[link]\nup = "pon"\ntimeout = 5\n', '/etc/p.toml', {})).toThrow(/line 3: unknown key timeout in \[link\]; did you mean timeout_seconds\?/);
    expect(() => parseConfig('[link]\ntimeout_seconds = 0\n', '/etc/p.toml', {})).toThrow(/link\.timeout_seconds must be a whole number from 1 to 3600/);
    expect(() => parseConfig('[link]\nup = ""\n', '/etc/p.toml', {})).toThrow(/link\.up must be a non-empty string/);
    expect(() => parseConfig('link = 3\n', '/etc/p.toml', {})).toThrow(/link must be a table/);
  });
});

describe('peerdial hooks install', () => {
  it('writes executable ppp, NetworkManager and dhcpcd scripts that call peerdial address-changed', async () => {
    const home = path.join(dir, 'hooks');
    await fs.mkdir(home, { recursive: true });
    const config = path.join(home, 'config.toml');
    await fs.writeFile(config, `[defaults]\nstate_dir = "${path.join(home, 'state')}"\n\n[[accounts]]\nemail = "cam@example.test"\n[accounts.imap]\nhost = "127.0.0.1"\nport = 143\n[accounts.smtp]\nhost = "127.0.0.1"\nport = 587\n`);
    const d = (n: string) => path.join(home, n);
    // the config belongs to root here (tests run as root): the hooks would run peerdial as root, so they are refused
    const asRoot = await runCli(['--config', config, 'hooks', 'install', '--ppp', d('ip-up.d')], { env: { SUDO_UID: '', SUDO_GID: '' } });
    expect(asRoot.code).toBe(64);
    expect(asRoot.stderr).toContain('never as root');
    expect(existsSync(d('ip-up.d/peerdial'))).toBe(false);
    const r = await runCli(['--config', config, 'hooks', 'install', '--user', 'nobody', '--ppp', d('ip-up.d'), '--networkmanager', d('dispatcher.d'), '--dhcpcd', d('dhcpcd-hooks')]);
    expect(r.code, r.stderr).toBe(0);
    const files = [d('ip-up.d/peerdial'), d('dispatcher.d/90-peerdial'), d('dhcpcd-hooks/90-peerdial')];
    for (const f of files) {
      expect(r.stdout).toContain(f);
      const st = await fs.stat(f);
      expect(st.mode & 0o111, f).toBe(0o111);
      const text = await fs.readFile(f, 'utf8');
      expect(text.startsWith('#!/bin/sh\n')).toBe(true);
      expect(text).toContain(`'--config' '${config}'`);
      expect(text).toContain("'address-changed'");
      expect(text).toContain("'/usr/bin/setpriv' '--reuid=65534' '--regid=65534'");
      execFileSync('sh', ['-n', f]); // valid shell
    }
    // no agent runs: the scripts still succeed and return at once (the command runs in the background)
    const ppp = spawn(files[0]!, ['ppp0', '/dev/ttyUSB0', '115200', '10.0.0.2', '10.0.0.1', ''], { stdio: 'ignore' });
    expect(await new Promise((res) => ppp.on('close', res))).toBe(0);
    const nm = spawn(files[1]!, ['wlan0', 'up'], { stdio: 'ignore' });
    expect(await new Promise((res) => nm.on('close', res))).toBe(0);
    const dh = spawn('sh', ['-c', `reason=BOUND; . ${q(files[2]!)}; echo sourced`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    dh.stdout!.on('data', (x) => (out += x));
    expect(await new Promise((res) => dh.on('close', res))).toBe(0);
    expect(out).toBe('sourced\n'); // sourced by dhcpcd-run-hooks: must not exit
  });

  it('peerdial address-changed without an agent says so', async () => {
    const config = path.join(dir, 'hooks', 'config.toml');
    const r = await runCli(['--config', config, 'address-changed']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('No agent of cam@example.test is running');
  });
});

describe('link hooks around calls on the real mail stack', () => {
  let stack: MailStack;
  let alice: Peer;
  let hitoshi: Peer;
  const running: ChildProcess[] = [];

  beforeAll(async () => {
    ensureMailServers();
    stack = await startMailStack({ users: ['alice', 'hitoshi'] });
    alice = await makePeer(stack, 'alice', dir, { ringSeconds: 30 });
    hitoshi = await makePeer(stack, 'hitoshi', dir, { answer: 'auto-answer', ringSeconds: 30 });
    await introduce(alice, hitoshi);
  }, 120_000);

  afterAll(async () => {
    for (const c of running) if (c.exitCode === null) c.kill('SIGKILL');
    await stack?.stop();
  });

  async function withLinkConfig(peer: Peer, link: string): Promise<string> {
    const file = path.join(path.dirname(peer.configFile), `config-link-${Math.random().toString(36).slice(2)}.toml`);
    await fs.writeFile(file, (await fs.readFile(peer.configFile, 'utf8')) + `\n[link]\n${link}\n`);
    return file;
  }

  function agentProcess(config: string, args: string[] = []): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
    const child = spawn(process.execPath, [BIN, '--config', config, 'agent', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    running.push(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    return { child, out: () => out, exited: new Promise((r) => child.on('close', (c) => r(c))) };
  }

  it('a failing link.up fails the call with its stderr; no offer is mailed', async () => {
    const config = await withLinkConfig(alice, 'up = "echo no modem >&2; exit 3"\ndown = "true"\ntimeout_seconds = 5');
    const r = await runCli(['--config', config, 'call', 'hitoshi'], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(69);
    expect(r.stderr).toContain('no modem');
    expect(r.stderr).toContain('[LINK_FAILED]');
    expect(r.stderr).toContain('what to do:');
    expect(await mailboxSnapshot(stack, 'hitoshi')).toEqual([]);
    expect((await (await alice.open()).outbox.list()).length).toBe(0);
  });

  it('link up before the call, down after hang-up; address-changed reaches the running agent', async () => {
    const f = path.join(dir, 'call-link.log');
    const config = await withLinkConfig(alice, `up = "echo up >> ${f}"\ndown = "echo down >> ${f}"`);
    const ha = agentProcess(hitoshi.configFile);
    try {
      await waitFor('agent up', () => ha.out().includes('mailbox connected'), 30_000);
      const told = await runCli(['--config', hitoshi.configFile, 'address-changed']);
      expect(told.code, told.stderr).toBe(0);
      expect(told.stderr).toContain('told the agent of hitoshi@example.test');
      const r = await runCli(['--config', config, 'call', 'hitoshi', '--pipe'], { input: 'over the link\n', timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('link up (echo up');
      expect(r.stderr).toContain('connected to hitoshi@example.test');
      expect(await lines(f)).toEqual(['up', 'down']);
    } finally {
      ha.child.kill('SIGTERM');
      expect(await ha.exited).toBe(0);
    }
  });

  it('poll mode: up, check, down every round; the link stays up while a call is active', async () => {
    const f = path.join(dir, 'poll-link.log');
    const config = await withLinkConfig(hitoshi, `up = "echo up >> ${f}"\ndown = "echo down >> ${f}"\nidle_down_seconds = 0`);
    const ha = agentProcess(config, ['--poll', '0.03']); // every 1.8 s
    try {
      await waitFor('two rounds', async () => (await lines(f)).length >= 4, 30_000);
      expect((await lines(f)).slice(0, 4)).toEqual(['up', 'down', 'up', 'down']);
      const r = await runCli(['--config', alice.configFile, 'call', 'hitoshi', '--pipe'], { input: 'hello camera\n', timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      await waitFor('call ended at hitoshi', () => /call \S+ from alice@example\.test: ended/.test(ha.out()), 20_000);
      await waitFor('link down after the call', () => {
        const log = ha.out();
        return log.lastIndexOf('link down') > log.search(/call \S+ from alice@example\.test: ended/);
      }, 20_000);
      // between the answer and the end of the call, the link never went down
      const log = ha.out();
      const connected = log.search(/call \S+ from alice@example\.test: connected via/);
      // the call is over when its machine closes; the "ended" line may follow the link going down
      const ended = log.search(/call \S+ from alice@example\.test: (closed|ended)/);
      expect(connected).toBeGreaterThan(0);
      const lastUpBefore = log.lastIndexOf('link up', connected);
      const during = log.slice(lastUpBefore, ended);
      expect(during, log).not.toContain('link down');
      // the up/down lines strictly alternate
      const ud = await lines(f);
      ud.forEach((l, i) => expect(l).toBe(i % 2 === 0 ? 'up' : 'down'));
    } finally {
      ha.child.kill('SIGTERM');
      expect(await ha.exited).toBe(0);
    }
    const ud = await lines(f);
    expect(ud.at(-1)).toBe('down');
  }, 90_000);
});
