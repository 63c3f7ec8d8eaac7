import type { Command } from 'commander';
import { DESKTOP_FILE, SCHEME_MIME } from '../uri/desktop.js';
import type { GlobalOptions } from './output.js';

const run = () => import('./run/uri.js');

export function register(program: Command, globals: () => GlobalOptions, main: (argv: string[]) => Promise<number>): void {
  program
    .command('open <uri>')
    .description('place the call a peerdial: link stands for (peerdial:hitoshi@example.jp?video=1)')
    .option('-y, --yes', 'call without asking first')
    .option('-n, --dry-run', 'only show what the link means and the equivalent command')
    .addHelpText('after', `
A link names an address or a contact (name, alias, short number):
  peerdial:hitoshi@example.jp      peerdial:hitoshi      peerdial:12?ring=60
Parameters: ring=SECONDS (how long to ring), video=0|1 (peerdial carries no video
yet: the call is a chat). Unknown parameters are reported and ignored. A link from
a web page never calls by itself: open asks first unless --yes is given.`)
    .action(async (uri: string, o: { yes?: boolean; dryRun?: boolean }) => (await run()).open(globals(), uri, o, main));

  const uri = program.command('uri').description('the peerdial: link handler of this desktop');
  uri
    .command('register')
    .description(`install the handler of peerdial: links (${DESKTOP_FILE}, ${SCHEME_MIME}) and make it the default`)
    .option('--dir <dir>', 'where to write the desktop file (default: ~/.local/share/applications)')
    .option('--no-default', 'do not run xdg-mime default')
    .addHelpText('after', `
On Linux desktops (xdg) this writes ${DESKTOP_FILE}, which runs "peerdial open %u" in a
terminal, and runs: xdg-mime default ${DESKTOP_FILE} ${SCHEME_MIME}
On macOS a handler is an app bundle: see "Click-to-call" in the README.`)
    .action(async (o: { dir?: string; default: boolean }) => (await run()).registerHandler(globals(), o));

  uri
    .command('unregister')
    .description(`remove ${DESKTOP_FILE}`)
    .option('--dir <dir>', 'where the desktop file is (default: ~/.local/share/applications)')
    .action(async (o: { dir?: string }) => (await run()).unregisterHandler(globals(), o));
}
