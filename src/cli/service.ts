import { Option, type Command } from 'commander';
import type { GlobalOptions } from './output.js';
import type { LogFormat } from '../service/unit.js';
import type { TargetOpts } from './run/service.js';

const run = () => import('./run/service.js');

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
  ).action(async (o: TargetOpts & { logFormat: LogFormat; enable: boolean; print?: boolean }) => (await run()).install(globals(), o));

  targetOptions(
    service
      .command('uninstall')
      .description('stop and disable the service and remove its file')
      .option('--no-disable', 'only remove the file'),
  ).action(async (o: TargetOpts & { disable: boolean }) => (await run()).uninstall(globals(), o));

  targetOptions(service.command('status').description('what the service manager says about the agent (see also: peerdial status)')).action(async (o: TargetOpts) => (await run()).serviceStatus(globals(), o));

  targetOptions(
    service
      .command('logs')
      .description('the agent\'s log: journalctl (systemd) or its log file (launchd)')
      .option('-n, --lines <n>', 'how many lines', '100')
      .option('-f, --follow', 'keep printing new lines'),
  ).action(async (o: TargetOpts & { lines: string; follow?: boolean }) => (await run()).logs(globals(), o));
}
