import { promises as fs, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Option, type Command } from 'commander';
import { openConfig } from '../api/open.js';
import { defaultConfigPath } from '../store/paths.js';
import { PeerdialError } from '../errors.js';
import { detectPlatform, installService, serviceFilePath, showServiceLogs, showServiceStatus, uninstallService, type ServicePlatform, type ServiceTarget } from '../service/install.js';
import { launchdPlist, systemdUnit, type LogFormat, type ServiceSpec } from '../service/unit.js';
import { launchdLogFile } from '../service/install.js';
import { printJson, status, type GlobalOptions } from './output.js';

/** bin/peerdial.js of this installation, symlinks resolved (npm link, npm -g). */
export function peerdialBin(): string {
  const bin = fileURLToPath(new URL('../../bin/peerdial.js', import.meta.url));
  try {
    return realpathSync(bin);
  } catch {
    return bin;
  }
}

async function specFor(g: GlobalOptions, logFormat: LogFormat): Promise<ServiceSpec> {
  const configFile = defaultConfigPath(g.config);
  const cfg = await openConfig(g); // fails now, with a clear message, rather than in the journal later
  const nodeDir = path.dirname(process.execPath);
  const pathDirs = [nodeDir, ...(process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':').filter((d) => path.isAbsolute(d))];
  return {
    node: process.execPath,
    bin: peerdialBin(),
    configFile,
    ...(g.account ? { account: g.account } : {}),
    logFormat,
    pathEnv: [...new Set(pathDirs)].join(':'),
    writableDirs: [cfg.stateDir, path.resolve(cfg.downloadDir), path.dirname(configFile)],
  };
}

interface TargetOpts {
  system?: boolean;
  user?: string;
  unitDir?: string;
  platform?: ServicePlatform;
}

function targetOf(o: TargetOpts): ServiceTarget {
  const platform = o.platform ?? detectPlatform();
  if (o.system && platform !== 'systemd') throw new PeerdialError('USAGE', '--system is for systemd; launchd agents run as the logged-in user.');
  return {
    platform,
    ...(o.system ? { systemUser: o.user ?? 'peerdial' } : {}),
    ...(o.unitDir ? { dir: path.resolve(o.unitDir) } : {}),
  };
}

const targetOptions = (c: Command): Command =>
  c
    .option('--system', 'a system unit (root) that runs the agent as a dedicated user (systemd only)')
    .option('--user <name>', 'the user a --system unit runs as', 'peerdial')
    .option('--unit-dir <dir>', 'write/remove the unit or plist here instead of the manager\'s directory')
    .addOption(new Option('--platform <manager>', 'service manager (default: from the OS)').choices(['systemd', 'launchd']).hideHelp());

export function register(program: Command, globals: () => GlobalOptions): void {
  const service = program
    .command('service')
    .description('run the agent as a service: systemd user unit (Linux) or launchd agent (macOS)')
    .addHelpText('after', `
Examples:
  peerdial service install               write ~/.config/systemd/user/peerdial.service, enable and start it
  peerdial service install --log-format json
  sudo peerdial --config /etc/peerdial/config.toml service install --system --user peerdial
  peerdial service status                what systemd/launchd says (peerdial status asks the agent itself)
  peerdial service logs -f               the agent's one-line-per-event log from the journal

For --system, create the user first (useradd --system --create-home peerdial) and
use absolute state_dir and download_dir in the config: "~" would be root's home here.`);

  targetOptions(
    service
      .command('install')
      .description('write the unit (or plist) that runs `peerdial agent`, then enable and start it')
      .addOption(new Option('--log-format <format>', 'the agent\'s log lines').choices(['text', 'json']).default('text'))
      .option('--no-enable', 'only write the file; do not reload, enable or start')
      .option('--print', 'print the file to stdout and change nothing'),
  ).action(async (o: TargetOpts & { logFormat: LogFormat; enable: boolean; print?: boolean }) => {
    const g = globals();
    const target = targetOf(o);
    const spec = await specFor(g, o.logFormat);
    if (o.print) {
      process.stdout.write(target.platform === 'launchd'
        ? launchdPlist({ ...spec, logFile: launchdLogFile() })
        : systemdUnit({ ...spec, ...(target.systemUser ? { system: { user: target.systemUser } } : {}) }));
      return;
    }
    const r = await installService({ ...target, spec, enable: o.enable });
    if (g.json) return printJson({ file: r.file, ran: r.ran, enabled: o.enable });
    console.log(`wrote ${r.file}`);
    for (const c of r.ran) status(g, `ran: ${c.join(' ')}`);
    if (!o.enable) {
      console.log(target.platform === 'launchd'
        ? `load it with: launchctl load -w ${r.file}`
        : `enable it with: systemctl ${target.systemUser ? '' : '--user '}daemon-reload && systemctl ${target.systemUser ? '' : '--user '}enable --now peerdial`);
    } else {
      console.log('the agent runs now; check it with: peerdial status');
    }
  });

  targetOptions(
    service
      .command('uninstall')
      .description('stop and disable the service and remove its file')
      .option('--no-disable', 'only remove the file'),
  ).action(async (o: TargetOpts & { disable: boolean }) => {
    const g = globals();
    const r = await uninstallService({ ...targetOf(o), disable: o.disable });
    if (g.json) return printJson(r);
    console.log(r.removed ? `removed ${r.file}` : `nothing installed at ${r.file}`);
  });

  targetOptions(service.command('status').description('what the service manager says about the agent (see also: peerdial status)')).action(async (o: TargetOpts) => {
    const target = targetOf(o);
    const file = serviceFilePath(target);
    if (!(await fs.stat(file).then(() => true, () => false))) {
      console.log(`not installed (no ${file}); install it with: peerdial service install`);
      process.exitCode = 3;
      return;
    }
    process.exitCode = await showServiceStatus(target);
  });

  targetOptions(
    service
      .command('logs')
      .description('the agent\'s log: journalctl (systemd) or its log file (launchd)')
      .option('-n, --lines <n>', 'how many lines', '100')
      .option('-f, --follow', 'keep printing new lines'),
  ).action(async (o: TargetOpts & { lines: string; follow?: boolean }) => {
    const n = Number(o.lines);
    if (!Number.isInteger(n) || n < 1) throw new PeerdialError('USAGE', `--lines must be a positive whole number, not ${o.lines}.`);
    process.exitCode = await showServiceLogs({ ...targetOf(o), lines: n, ...(o.follow ? { follow: true } : {}) });
  });
}
