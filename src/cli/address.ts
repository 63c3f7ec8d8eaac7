import type { Command } from 'commander';
import type { GlobalOptions } from './output.js';

const run = () => import('./run/address.js');

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('address')
    .description("show this machine's addresses, what the internet sees (STUN) and the NAT's behaviour, with what each means for being reached")
    .option('--all', 'also list loopback and link-local addresses')
    .option('--stun <urls>', 'STUN servers to ask (comma-separated; default: [ice] servers of the config); two give a NAT guess')
    .option('--no-stun', 'interface addresses only, no network traffic')
    .option('--map-port <port>', 'ask the router to forward this UDP port (NAT-PMP, then UPnP-IGD); removed again before exiting unless --keep')
    .option('--keep', 'with --map-port: leave the mapping on the router (it expires after an hour)')
    .option('--gateway <ip>', 'with --map-port: the router to ask (default: the IPv4 default gateway)')
    .option('--map-method <method>', 'with --map-port: auto, natpmp or upnp', 'auto')
    .action(async (o) => (await run()).address(globals(), o));
}
