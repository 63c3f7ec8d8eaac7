/** `peerdial web`: the local web page (its code in run/web.ts, loaded when it runs). */
import type { Command } from 'commander';
import type { GlobalOptions } from './output.js';

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('web')
    .description('the local web page: contacts, calls ringing, chat, files, video; prints its address (127.0.0.1 only)')
    .option('--port <port>', 'port on 127.0.0.1 (default: [web] port in the config, or any free port)')
    .addHelpText('after', `
The page is served by the agent. With an agent running, this asks it for the
page and prints the address; without one, this runs the agent here with the
page (stop it with Ctrl-C). The address carries a token: whoever has it can
use the page, so do not share it. Set [web] enable = true in the config to
have every agent serve the page from its start.`)
    .action(async (o) => (await import('./run/web.js')).web(globals(), o));
}
