/**
 * `peerdial service`: the systemd unit and the launchd plist it writes, for
 * a user whose paths have spaces (and a "%" that systemd would otherwise
 * read as a specifier). Where systemd-analyze exists the unit is verified
 * by systemd itself; the plist is parsed back as XML.
 */
import { promises as fs, existsSync } from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchdPlist, systemdUnit, systemdWord, type ServiceSpec } from '../src/service/unit.js';
import { installService, uninstallService, type Runner } from '../src/service/install.js';
import { BIN, runCli, tempDir } from './harness/peers.js';

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}
const systemdAnalyze = which('systemd-analyze');

let dir: string;
let spec: ServiceSpec;
let configFile: string;

beforeAll(async () => {
  dir = await tempDir('service');
  const home = path.join(dir, 'home of alice');
  configFile = path.join(home, 'cfg dir', 'config.toml');
  await fs.mkdir(path.dirname(configFile), { recursive: true });
  await fs.writeFile(
    configFile,
    `[defaults]
state_dir = "${home}/state 100%"
download_dir = "${home}/Downloads"
[[accounts]]
email = "alice@example.test"
[accounts.imap]
host = "127.0.0.1"
port = 143
[accounts.smtp]
host = "127.0.0.1"
port = 587
`,
  );
  spec = {
    node: process.execPath,
    bin: path.join(home, 'peer dial', 'bin', 'peerdial.js'),
    configFile,
    logFormat: 'text',
    pathEnv: '/usr/local/bin:/usr/bin:/bin',
    writableDirs: [path.join(home, 'state 100%'), path.join(home, 'Downloads')],
  };
});

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** The value of every `Key=` line of a unit, in order. */
function keys(unit: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const eq = line.indexOf('=');
    if (line.startsWith('#') || line.startsWith('[') || eq < 0) continue;
    const k = line.slice(0, eq);
    m.set(k, [...(m.get(k) ?? []), line.slice(eq + 1)]);
  }
  return m;
}

/** Splits a systemd command line into words (double quotes, backslash escapes, %% -> %). */
function systemdWords(s: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m; (m = re.exec(s)); ) out.push((m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!).replace(/%%/g, '%').replace(/\$\$/g, '$'));
  return out;
}

function verifyUnit(file: string): { status: number | null; output: string } {
  const r = spawnSync(systemdAnalyze!, ['verify', file], { encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('the systemd unit', () => {
  it('a user unit runs `node BIN --config FILE agent` with absolute, quoted paths, restarts on failure and is hardened', () => {
    const unit = systemdUnit(spec);
    const k = keys(unit);
    for (const key of ['Description', 'ExecStart', 'Restart', 'RestartSec', 'Environment', 'NoNewPrivileges', 'PrivateTmp', 'ProtectSystem', 'ReadWritePaths', 'WantedBy']) {
      expect(k.has(key), key).toBe(true);
    }
    expect(k.get('Restart')).toEqual(['on-failure']);
    expect(k.get('RestartSec')).toEqual(['10']);
    expect(k.get('NoNewPrivileges')).toEqual(['yes']);
    expect(k.get('PrivateTmp')).toEqual(['yes']);
    expect(k.get('ProtectSystem')).toEqual(['strict']);
    expect(k.get('WantedBy')).toEqual(['default.target']);
    expect(k.has('User')).toBe(false);
    expect(k.get('Environment')).toContain('PATH=/usr/local/bin:/usr/bin:/bin');
    const words = systemdWords(k.get('ExecStart')![0]!);
    expect(words).toEqual([process.execPath, spec.bin, '--config', configFile, 'agent']);
    for (const w of [words[0]!, words[1]!, words[3]!]) expect(path.isAbsolute(w)).toBe(true);
    expect(k.get('ExecStart')![0]).toContain(`"${spec.bin}"`);
    // "-": a directory that does not exist yet does not stop the start; "%" doubled
    expect(systemdWords(k.get('ReadWritePaths')![0]!)).toEqual(spec.writableDirs.map((d) => `-${d}`));
    expect(k.get('ReadWritePaths')![0]).toContain('state 100%%');
  });

  it('--system: a system unit that runs as the dedicated user, after the network is up', () => {
    const unit = systemdUnit({ ...spec, logFormat: 'json', system: { user: 'peerdial' } });
    const k = keys(unit);
    expect(k.get('User')).toEqual(['peerdial']);
    expect(k.get('WantedBy')).toEqual(['multi-user.target']);
    expect(k.get('After')).toEqual(['network-online.target']);
    expect(k.get('ProtectHome')).toEqual(['read-only']);
    expect(systemdWords(k.get('ExecStart')![0]!).slice(-3)).toEqual(['agent', '--log-format', 'json']);
  });

  it('escapes what systemd would expand or split: %, $, quotes, backslashes', () => {
    expect(systemdWord('/plain/path')).toBe('/plain/path');
    expect(systemdWord('/a b')).toBe('"/a b"');
    expect(systemdWord('/100%')).toBe('/100%%');
    expect(systemdWord('/$HOME', { dollar: true })).toBe('/$$HOME');
    expect(systemdWord('/say "hi"\\')).toBe('"/say \\"hi\\"\\\\"');
    expect(() => systemdUnit({ ...spec, configFile: 'relative/config.toml' })).toThrow(/absolute/);
    expect(() => systemdUnit({ ...spec, bin: '/a\nExecStartPre=/bin/rm' })).toThrow(/control character/);
  });

  it('systemd-analyze verify accepts the user unit and the system unit', async () => {
    if (!systemdAnalyze) throw new Error('systemd-analyze is missing: install it with apt-get install systemd (CI does)');
    for (const [name, unit] of [
      ['user', systemdUnit({ ...spec, bin: BIN })],
      ['system', systemdUnit({ ...spec, bin: BIN, system: { user: 'peerdial' } })],
    ] as const) {
      const d = path.join(dir, `verify ${name}`);
      await fs.mkdir(d, { recursive: true });
      const file = path.join(d, 'peerdial.service');
      await fs.writeFile(file, unit);
      const r = verifyUnit(file);
      expect(r.status, r.output).toBe(0);
      expect(r.output).not.toMatch(/peerdial\.service:\d+/); // no complaint about any line of ours
    }
  });

  it('systemd-analyze verify would catch a broken line (the check is real)', async () => {
    if (!systemdAnalyze) throw new Error('systemd-analyze is missing: install it with apt-get install systemd (CI does)');
    const file = path.join(dir, 'broken.service');
    await fs.writeFile(file, systemdUnit({ ...spec, bin: BIN }).replace(/^ExecStart=.*$/m, 'ExecStart=node "unbalanced'));
    expect(verifyUnit(file).status).not.toBe(0);
  });
});

// ------------------------------------------------------------------ plist

type PlistValue = string | number | boolean | PlistValue[] | { [k: string]: PlistValue };

/** A tiny plist reader: refuses anything that is not well-formed. */
function parsePlist(xml: string): PlistValue {
  const body = xml
    .replace(/^<\?xml[^>]*\?>\s*/, '')
    .replace(/<!DOCTYPE[^>]*>\s*/, '')
    .replace(/<!--[\s\S]*?-->\s*/g, '');
  const tokens = body.match(/<[^>]+>|[^<]+/g)!.filter((t) => t.trim() !== '');
  let i = 0;
  const unescape = (s: string) => {
    if (/&(?!(amp|lt|gt|quot|apos);)/.test(s) || /[<>]/.test(s)) throw new Error(`bad text ${s}`);
    return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
  };
  const expect_ = (t: string) => {
    if (tokens[i++] !== t) throw new Error(`expected ${t}, got ${tokens[i - 1]}`);
  };
  const text = (tag: string) => {
    expect_(`<${tag}>`);
    if (tokens[i] === `</${tag}>`) return (i++, '');
    const v = unescape(tokens[i++]!);
    expect_(`</${tag}>`);
    return v;
  };
  const value = (): PlistValue => {
    const t = tokens[i]!;
    if (t === '<true/>' || t === '<false/>') return (i++, t === '<true/>');
    if (t === '<string>') return text('string');
    if (t === '<integer>') return Number(text('integer'));
    if (t === '<array>') {
      i++;
      const a: PlistValue[] = [];
      while (tokens[i] !== '</array>') a.push(value());
      i++;
      return a;
    }
    if (t === '<dict>') {
      i++;
      const d: Record<string, PlistValue> = {};
      while (tokens[i] !== '</dict>') d[text('key')] = value();
      i++;
      return d;
    }
    throw new Error(`unexpected ${t}`);
  };
  expect_('<plist version="1.0">');
  const v = value();
  expect_('</plist>');
  if (i !== tokens.length) throw new Error('trailing content');
  return v;
}

describe('the launchd plist', () => {
  const logFile = '/Users/alice smith/Library/Logs/peerdial/agent.log';

  it('parses back: label, the agent argv (absolute paths, spaces kept as they are), restart on failure, log file', () => {
    const odd = { ...spec, configFile: '/Users/alice smith/cfg <&> "q"/config.toml', logFormat: 'json' as const };
    const p = parsePlist(launchdPlist({ ...odd, logFile })) as Record<string, PlistValue>;
    expect(p.Label).toBe('org.peerdial.agent');
    expect(p.ProgramArguments).toEqual([process.execPath, spec.bin, '--config', odd.configFile, 'agent', '--log-format', 'json']);
    expect(p.RunAtLoad).toBe(true);
    expect(p.KeepAlive).toEqual({ SuccessfulExit: false });
    expect(p.EnvironmentVariables).toEqual({ PATH: spec.pathEnv });
    expect(p.StandardOutPath).toBe(logFile);
    expect(p.StandardErrorPath).toBe(logFile);
    expect(typeof p.ThrottleInterval).toBe('number');
    for (const a of (p.ProgramArguments as string[]).slice(0, 2)) expect(path.isAbsolute(a)).toBe(true);
  });

  // plutil -lint (macOS only) is the other check of a plist; the reader above
  // refuses anything that is not well-formed, on every platform.
});

// ------------------------------------------------------------------ installing

describe('installing and removing', () => {
  it('install writes the unit and runs daemon-reload, then enable --now, in that order; uninstall undoes it', async () => {
    const unitDir = path.join(dir, 'units a');
    const ran: string[][] = [];
    const run: Runner = async (cmd, args) => (ran.push([cmd, ...args]), { code: 0, stdout: '', stderr: '' });
    const r = await installService({ platform: 'systemd', dir: unitDir, spec, run });
    expect(r.file).toBe(path.join(unitDir, 'peerdial.service'));
    expect(await fs.readFile(r.file, 'utf8')).toBe(systemdUnit(spec));
    expect(ran).toEqual([
      ['systemctl', '--user', 'daemon-reload'],
      ['systemctl', '--user', 'enable', '--now', 'peerdial'],
    ]);
    ran.length = 0;
    const u = await uninstallService({ platform: 'systemd', dir: unitDir, run });
    expect(u.removed).toBe(true);
    expect(existsSync(r.file)).toBe(false);
    expect(ran).toEqual([
      ['systemctl', '--user', 'disable', '--now', 'peerdial'],
      ['systemctl', '--user', 'daemon-reload'],
    ]);
  });

  it('a system without systemctl: a clear MISSING_PACKAGE error; a refusing systemctl: SERVICE_FAILED with its message', async () => {
    const unitDir = path.join(dir, 'units b');
    const missing: Runner = async () => ({ code: null, stdout: '', stderr: 'spawn systemctl ENOENT', missing: true });
    await expect(installService({ platform: 'systemd', dir: unitDir, spec, run: missing })).rejects.toMatchObject({ code: 'MISSING_PACKAGE' });
    const noBus: Runner = async () => ({ code: 1, stdout: '', stderr: 'Failed to connect to bus: No medium found' });
    const err = await installService({ platform: 'systemd', dir: unitDir, spec, run: noBus, systemUser: 'peerdial' }).catch((e) => e);
    expect(err).toMatchObject({ code: 'SERVICE_FAILED' });
    expect(err.message).toContain('Failed to connect to bus');
    expect(err.hint).toContain('enable-linger');
  });

  it('launchd: writes ~/Library/LaunchAgents/org.peerdial.agent.plist and loads it', async () => {
    const home = path.join(dir, 'mac home');
    const ran: string[][] = [];
    const run: Runner = async (cmd, args) => (ran.push([cmd, ...args]), { code: 0, stdout: '', stderr: '' });
    const r = await installService({ platform: 'launchd', home, spec, run });
    expect(r.file).toBe(path.join(home, 'Library', 'LaunchAgents', 'org.peerdial.agent.plist'));
    expect(parsePlist(await fs.readFile(r.file, 'utf8'))).toMatchObject({ Label: 'org.peerdial.agent' });
    expect(ran.at(-1)).toEqual(['launchctl', 'load', '-w', r.file]);
  });

  it('peerdial service install --unit-dir DIR --no-enable writes the unit for this installation; uninstall removes it', async () => {
    const unitDir = path.join(dir, 'cli units');
    const r = await runCli(['--config', configFile, 'service', 'install', '--platform', 'systemd', '--unit-dir', unitDir, '--no-enable', '--log-format', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const file = path.join(unitDir, 'peerdial.service');
    expect(r.stdout).toContain(`wrote ${file}`);
    expect(r.stdout).toContain('systemctl --user daemon-reload && systemctl --user enable --now peerdial');
    const k = keys(await fs.readFile(file, 'utf8'));
    const words = systemdWords(k.get('ExecStart')![0]!);
    expect(words[0]).toBe(process.execPath);
    expect(words[1]).toBe(await fs.realpath(BIN));
    expect(words.slice(2)).toEqual(['--config', configFile, 'agent', '--log-format', 'json']);
    const u = await runCli(['--config', configFile, 'service', 'uninstall', '--platform', 'systemd', '--unit-dir', unitDir, '--no-disable']);
    expect(u.code, u.stderr).toBe(0);
    expect(existsSync(file)).toBe(false);
    const s = await runCli(['--config', configFile, 'service', 'status', '--platform', 'systemd', '--unit-dir', unitDir]);
    expect(s.code).toBe(3);
    expect(s.stdout).toContain('not installed');
  });

  it('a config that does not load is refused before anything is written', async () => {
    const unitDir = path.join(dir, 'never');
    const r = await runCli(['--config', path.join(dir, 'missing.toml'), 'service', 'install', '--platform', 'systemd', '--unit-dir', unitDir, '--no-enable']);
    expect(r.code).toBe(78);
    expect(existsSync(unitDir)).toBe(false);
  });
});
