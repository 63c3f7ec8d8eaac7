/**
 * Installs, removes and asks about the service: writes the file made by
 * src/service/unit.ts and runs systemctl / launchctl. The commands are run
 * without a shell, through a runner that tests replace.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PeerdialError } from '../errors.js';
import { LAUNCHD_LABEL, LAUNCHD_PLIST_FILE, SERVICE_NAME, SYSTEMD_UNIT_FILE, launchdPlist, systemdUnit, type ServiceSpec } from './unit.js';

export type ServicePlatform = 'systemd' | 'launchd';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The command does not exist on this machine. */
  missing?: boolean;
}

/** Runs one command (never through a shell); `inherit` shows its output to the user. */
export type Runner = (cmd: string, args: string[], opts?: { inherit?: boolean }) => Promise<RunResult>;

export const runCommand: Runner = (cmd, args, opts = {}) =>
  new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: opts.inherit ? 'inherit' : ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.stderr?.on('data', (d) => (stderr += d));
    child.on('error', (err: NodeJS.ErrnoException) => resolve({ code: null, stdout, stderr: err.message, missing: err.code === 'ENOENT' }));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });

export function detectPlatform(platform: NodeJS.Platform = process.platform): ServicePlatform {
  if (platform === 'darwin') return 'launchd';
  if (platform === 'linux') return 'systemd';
  throw new PeerdialError('USAGE', `peerdial service knows systemd (Linux) and launchd (macOS), not ${platform}.`, {
    hint: 'Run `peerdial agent` under your own service manager; it logs one line per event to stdout and stops cleanly on SIGTERM.',
  });
}

export interface ServiceTarget {
  platform: ServicePlatform;
  /** systemd: a system unit that runs as this user (needs root to install). */
  systemUser?: string;
  /** Where the unit/plist goes (default: the manager's own directory). */
  dir?: string;
  home?: string;
}

export function serviceFilePath(t: ServiceTarget): string {
  const home = t.home ?? os.homedir();
  if (t.platform === 'launchd') return path.join(t.dir ?? path.join(home, 'Library', 'LaunchAgents'), LAUNCHD_PLIST_FILE);
  const dir = t.dir ?? (t.systemUser ? '/etc/systemd/system' : path.join(process.env.XDG_CONFIG_HOME || path.join(home, '.config'), 'systemd', 'user'));
  return path.join(dir, SYSTEMD_UNIT_FILE);
}

export function launchdLogFile(home = os.homedir()): string {
  return path.join(home, 'Library', 'Logs', 'peerdial', 'agent.log');
}

function systemctlArgs(t: ServiceTarget, ...args: string[]): string[] {
  return t.systemUser ? args : ['--user', ...args];
}

async function must(run: Runner, cmd: string, args: string[]): Promise<RunResult> {
  const r = await run(cmd, args);
  if (r.missing) {
    throw new PeerdialError('MISSING_PACKAGE', `${cmd} is not available on this machine.`, {
      hint: cmd === 'systemctl'
        ? 'This system does not run systemd; install with --no-enable and start the agent yourself, or run `peerdial agent` under your own supervisor.'
        : `Install ${cmd}, or run \`peerdial agent\` yourself.`,
    });
  }
  if (r.code !== 0) {
    const msg = (r.stderr || r.stdout).trim();
    throw new PeerdialError('SERVICE_FAILED', `${cmd} ${args.join(' ')} failed (exit ${r.code})${msg ? `: ${msg}` : ''}`, {
      hint: /bus|XDG_RUNTIME_DIR/i.test(msg)
        ? 'No user service manager is reachable from this shell (e.g. over sudo or in a container). Log in as the user, or run `loginctl enable-linger USER` and retry.'
        : 'Read the message above; `peerdial service status` shows what the service manager knows.',
    });
  }
  return r;
}

export interface InstallOptions extends ServiceTarget {
  spec: ServiceSpec;
  /** Run daemon-reload + enable --now (systemd) or launchctl load (launchd). Default true. */
  enable?: boolean;
  run?: Runner;
}

export interface InstallResult {
  file: string;
  content: string;
  /** The commands that were run, in order. */
  ran: string[][];
}

export async function installService(o: InstallOptions): Promise<InstallResult> {
  const run = o.run ?? runCommand;
  const file = serviceFilePath(o);
  const ran: string[][] = [];
  const step = async (cmd: string, args: string[]) => {
    ran.push([cmd, ...args]);
    try {
      await must(run, cmd, args);
    } catch (err) {
      const e = err as PeerdialError;
      throw new PeerdialError(e.code, `${e.message} (the file is written: ${file})`, { ...(e.hint ? { hint: e.hint } : {}), cause: err });
    }
  };
  let content: string;
  if (o.platform === 'launchd') {
    const logFile = launchdLogFile(o.home);
    content = launchdPlist({ ...o.spec, logFile });
    await fs.mkdir(path.dirname(logFile), { recursive: true });
  } else {
    content = systemdUnit({ ...o.spec, ...(o.systemUser ? { system: { user: o.systemUser } } : {}) });
  }
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, content, { mode: 0o644 });
  if (o.enable === false) return { file, content, ran };
  if (o.platform === 'launchd') {
    ran.push(['launchctl', 'unload', file]);
    await run('launchctl', ['unload', file]); // an older copy may be loaded; failing here is fine
    await step('launchctl', ['load', '-w', file]);
  } else {
    await step('systemctl', systemctlArgs(o, 'daemon-reload'));
    await step('systemctl', systemctlArgs(o, 'enable', '--now', SERVICE_NAME));
  }
  return { file, content, ran };
}

export async function uninstallService(o: ServiceTarget & { run?: Runner; disable?: boolean }): Promise<{ file: string; removed: boolean; ran: string[][] }> {
  const run = o.run ?? runCommand;
  const file = serviceFilePath(o);
  const ran: string[][] = [];
  const exists = await fs.stat(file).then(() => true, () => false);
  if (o.disable !== false && exists) {
    if (o.platform === 'launchd') {
      ran.push(['launchctl', 'unload', '-w', file]);
      await run('launchctl', ['unload', '-w', file]);
    } else {
      ran.push(['systemctl', ...systemctlArgs(o, 'disable', '--now', SERVICE_NAME)]);
      await must(run, 'systemctl', systemctlArgs(o, 'disable', '--now', SERVICE_NAME));
    }
  }
  await fs.rm(file, { force: true });
  if (o.disable !== false && exists && o.platform === 'systemd') {
    ran.push(['systemctl', ...systemctlArgs(o, 'daemon-reload')]);
    await must(run, 'systemctl', systemctlArgs(o, 'daemon-reload'));
  }
  return { file, removed: exists, ran };
}

/** What the service manager says (output goes straight to the terminal). */
export async function showServiceStatus(o: ServiceTarget & { run?: Runner }): Promise<number> {
  const run = o.run ?? runCommand;
  const r = o.platform === 'launchd'
    ? await run('launchctl', ['list', LAUNCHD_LABEL], { inherit: true })
    : await run('systemctl', systemctlArgs(o, 'status', '--no-pager', SERVICE_NAME), { inherit: true });
  if (r.missing) {
    throw new PeerdialError('MISSING_PACKAGE', `${o.platform === 'launchd' ? 'launchctl' : 'systemctl'} is not available on this machine.`, {
      hint: 'Ask the agent itself: peerdial status',
    });
  }
  return r.code ?? 1;
}

/** The agent's log lines: journalctl on systemd, the log file launchd writes on macOS. */
export async function showServiceLogs(o: ServiceTarget & { run?: Runner; lines?: number; follow?: boolean }): Promise<number> {
  const run = o.run ?? runCommand;
  const n = String(o.lines ?? 100);
  if (o.platform === 'launchd') {
    const file = launchdLogFile(o.home);
    const r = await run('tail', ['-n', n, ...(o.follow ? ['-f'] : []), file], { inherit: true });
    if (r.code !== 0) {
      throw new PeerdialError('SERVICE_FAILED', `no agent log at ${file} yet.`, {
        hint: 'Install the service first (peerdial service install); launchd\'s own messages: log show --last 1h --predicate \'subsystem == "com.apple.xpc.launchd"\'',
      });
    }
    return 0;
  }
  const args = [...(o.systemUser ? [] : ['--user']), '-u', SERVICE_NAME, '-n', n, '--no-pager', '-o', 'short-iso', ...(o.follow ? ['-f'] : [])];
  const r = await run('journalctl', args, { inherit: true });
  if (r.missing) {
    throw new PeerdialError('MISSING_PACKAGE', 'journalctl is not available on this machine.', {
      hint: 'Without systemd, run `peerdial agent` yourself; it writes one line per event to stdout.',
    });
  }
  return r.code ?? 1;
}
