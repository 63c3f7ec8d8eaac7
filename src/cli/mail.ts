import type { Command } from 'commander';
import type { GlobalOptions } from './output.js';

const run = () => import('./run/mail.js');

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('announce [contacts...]')
    .description("mail this machine's current addresses to contacts (default: all who get announcements)")
    .option('--valid <seconds>', 'how long the address is valid', '86400')
    .option('--queue-only', 'only queue; a running agent or `peerdial outbox flush` sends it')
    .option('--plain', 'to contacts without a key: send the addresses in clear text anyway (readable by both mail providers)')
    .action(async (who: string[], o) => (await run()).announceTo(globals(), who, o));

  program
    .command('inbox')
    .description('fetch, verify and list peerdial mail that arrived (other mail is left untouched)')
    .action(async () => (await run()).inbox(globals()));

  const outbox = program
    .command('outbox')
    .description('mail waiting to be sent')
    .action(async () => (await run()).outbox(globals()));
  outbox
    .command('flush')
    .description('send everything queued now, ignoring backoff')
    .action(async () => (await run()).flush(globals()));
}
