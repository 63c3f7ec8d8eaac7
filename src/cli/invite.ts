import { Option, type Command } from 'commander';
import type { GlobalOptions } from './output.js';

const run = () => import('./run/invite.js');

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('invite')
    .description('make a one-time invite (code, peerdial: link, QR code): whoever joins with it becomes an introduced contact')
    .option('--expires <seconds>', 'how long the invite is good', '86400')
    .option('--name <name>', 'the name the joiner gets in your contacts')
    .addOption(new Option('--answer <mode>', 'answer policy for the joiner').choices(['auto-answer', 'ring', 'deny']))
    .option('--no-qr', 'no QR code in the terminal')
    .option('--delta-chat', 'a Delta Chat invite link (SecureJoin) for a Delta Chat user to scan')
    .action(async (o) => (await run()).invite(globals(), o));

  program
    .command('join <code>')
    .description('join an invite (a peerdial code or link, or a Delta Chat https://i.delta.chat/ link): adds the inviter as a contact and mails them your key')
    .option('--name <name>', 'the name the inviter gets in your contacts')
    .addOption(new Option('--answer <mode>', 'answer policy for the inviter').choices(['auto-answer', 'ring', 'deny']))
    .option('--queue-only', 'only queue the introduction; a running agent or `peerdial outbox flush` sends it')
    .action(async (code: string, o) => (await run()).join(globals(), code, o));
}
