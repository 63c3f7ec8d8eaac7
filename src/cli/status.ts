import type { Command } from 'commander';
import type { GlobalOptions } from './output.js';

const run = () => import('./run/status.js');

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('status')
    .description('ask the running agent how it is: mailbox connected, IDLE alive, last check, outbox, active calls')
    .addHelpText('after', `
Exit codes: 0 the agent answered, 3 no agent runs for this account.
(peerdial service status asks systemd/launchd instead.)`)
    .action(async () => (await run()).status(globals()));
}
