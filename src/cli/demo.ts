import type { Command } from 'commander';
import type { GlobalOptions } from './output.js';

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('demo')
    .description('a whole call on this machine: throw-away mail server, two users, offer and answer by mail, a direct session (no account, no root)')
    .action(async () => (await import('./run/demo.js')).demo(globals()));
}
