import { Option, type Command } from 'commander';
import type { GlobalOptions } from './output.js';

const run = () => import('./run/agent.js');

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('agent')
    .description('run the agent: watch the mailbox, answer calls by policy, send queued mail (as a service, or in a terminal)')
    .option('--once', 'check the mailbox once, list what arrived, and exit')
    .option('--camera <source>', 'be a camera node: allowed `peerdial call ME --view` callers get test | v4l2:/dev/video0 | file:PATH')
    .option('--camera-audio <source>', 'the camera\'s sound: test | alsa[:DEVICE] | pulse[:DEVICE] | none')
    .option('--web', 'serve the local web page too (as [web] enable = true); the log says its address')
    .option('--poll <minutes>', 'poll mode: every N minutes bring the link up, check mail once, bring it down (default: link.poll_minutes)')
    .addOption(new Option('--log-format <format>', 'log lines: text, or json (one object per line, same as --json)').choices(['text', 'json']).default('text'))
    .addHelpText('after', `
The agent logs one line per event to stdout (--json: one JSON object per line).
It stops cleanly on SIGTERM or Ctrl-C: ringing calls are cancelled, calls hung up,
queued mail is sent first.`)
    .action(async (o) => (await run()).agent(globals(), o));
}
