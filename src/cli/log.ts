/** `peerdial log`: the call log (its code in run/log.ts, loaded when it runs). */
import type { Command } from 'commander';
import type { GlobalOptions } from './output.js';

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('log')
    .description('the call log, newest last (missed calls included)')
    .option('--missed', 'only missed calls')
    .action(async (o) => (await import('./run/log.js')).log(globals(), o));
}
