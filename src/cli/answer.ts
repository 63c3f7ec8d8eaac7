import type { Command } from 'commander';
import type { GlobalOptions } from './output.js';

const run = () => import('./run/answer.js');

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('ringing')
    .description('incoming calls ringing at the running agent')
    .action(async () => (await run()).ringing(globals()));

  program
    .command('answer [callId]')
    .description('answer a ringing call (default: the newest); the agent carries it. An id starting with "-" goes after --: peerdial answer -- -Xyz')
    .action(async (callId?: string) => (await run()).answer(globals(), callId));

  program
    .command('decline [callId]')
    .description('decline a ringing call (default: the newest); the caller is told by mail')
    .option('--text <reason>', 'a short reason the caller sees')
    .action(async (callId: string | undefined, o) => (await run()).decline(globals(), callId, o));
}
