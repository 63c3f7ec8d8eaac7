/** `peerdial hooks install` (ppp, NetworkManager, dhcpcd) and `peerdial address-changed`, which those hooks run. */
import type { Command } from 'commander';
import type { GlobalOptions } from './output.js';
import { DEFAULT_HOOK_DIRS } from '../link/install.js';

const run = () => import('./run/hooks.js');

export function register(program: Command, globals: () => GlobalOptions): void {
  const hooks = program.command('hooks').description('scripts that tell a running agent when the address changes (ppp, NetworkManager, dhcpcd)');
  hooks
    .command('install')
    .description('write an ip-up.d script, a NetworkManager dispatcher script and a dhcpcd hook that run `peerdial address-changed`')
    .option('--ppp <dir>', `ppp's ip-up.d directory (default ${DEFAULT_HOOK_DIRS.ppp})`)
    .option('--networkmanager <dir>', `NetworkManager's dispatcher directory (default ${DEFAULT_HOOK_DIRS.networkmanager})`)
    .option('--dhcpcd <dir>', `dhcpcd's hook directory (default ${DEFAULT_HOOK_DIRS.dhcpcd})`)
    .option('--user <name|uid>', 'the user the hooks run peerdial as (default: the one who ran sudo, else the owner of the config file)')
    .addHelpText('after', `
Without options, installs into each default directory that exists on this machine.
The scripts run as root, in the background, and never make bringing up the network
fail. Root runs only setpriv, which becomes the user first: this peerdial, with this
config file, then runs as that user (never as root) and tells the agent.`)
    .action(async (o: { ppp?: string; networkmanager?: string; dhcpcd?: string; user?: string }) => (await run()).install(globals(), o));

  program
    .command('address-changed')
    .description('tell the running agent that this machine\'s address changed (the installed hooks run this)')
    .action(async () => (await run()).addressChanged(globals()));
}
