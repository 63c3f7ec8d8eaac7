import type { Command } from 'commander';
import type { GlobalOptions } from './output.js';

const run = () => import('./run/messages.js');

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('message <who> [text...]')
    .description('leave a text or voice message by mail (signed, encrypted once keys are known)')
    .option('--audio <file>', 'a recorded voice message (.opus .ogg .m4a .mp3 .wav .webm)')
    .action(async (who: string, words: string[], o) => (await run()).message(globals(), who, words, o));

  program
    .command('messages')
    .description('messages and voicemail that came by mail, oldest first')
    .option('--save <dir>', 'copy voice messages into this folder')
    .option('--no-check', 'do not check the mailbox first (when no agent runs)')
    .action(async (o) => (await run()).messages(globals(), o));
}
