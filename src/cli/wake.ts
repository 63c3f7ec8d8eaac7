/** `peerdial wake-relay` (wake sleeping machines when an offer for them arrives) and `peerdial wake MAC`. */
import type { Command } from 'commander';
import type { GlobalOptions } from './output.js';

const run = () => import('./run/wake.js');

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('wake-relay')
    .description('act for sleeping machines ([[wake]] in the config): read their INBOX read-only and send Wake-on-LAN when a contact\'s peerdial mail arrives')
    .addHelpText('after', `
Config of the relay:
  [[wake]]
  email = "camera@example.org"
  mac = "aa:bb:cc:dd:ee:ff"
  address = "255.255.255.255"    # broadcast address of the sleeping machine's network
  port = 9
  config = "/path/to/the camera's peerdial/config.toml"   # its IMAP login and contacts

The relay never sets a flag, moves a mail or touches the sleeping machine's
ledger; it keeps its own mark in its state dir and wakes each machine at most
once per 30 s.`)
    .action(async () => (await run()).wakeRelay(globals()));

  program
    .command('wake <mac>')
    .description('send a Wake-on-LAN magic packet now')
    .option('--address <ip>', 'broadcast address to send to', '255.255.255.255')
    .option('--port <n>', 'UDP port', '9')
    .action(async (mac: string, o: { address: string; port: string }) => (await run()).wake(globals(), mac, o));
}
