import type { Command } from 'commander';
import { interfaceAddresses } from '../address/interfaces.js';
import { isAnnounceable } from '../address/classify.js';
import { printJson, table, type GlobalOptions } from './output.js';

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('address')
    .description("show this machine's addresses and what each means for being reached")
    .option('--all', 'also list loopback and link-local addresses')
    .action((o) => {
      const g = globals();
      const list = interfaceAddresses().filter((a) => o.all || isAnnounceable(a.scope));
      if (g.json) return printJson(list);
      if (!list.length) {
        console.log('No usable address: this machine seems offline. Bring the link up and try again.');
        return;
      }
      console.log(table([['ADDRESS', 'INTERFACE', 'KIND', 'MEANING'], ...list.map((a) => [a.ip, a.interface, a.scope, a.meaning])]));
      if (!list.some((a) => a.scope === 'public' || a.scope === 'ipv6-global')) {
        console.log('\nNo public address on an interface: calls need STUN (configured under [ice] servers) to get through the NAT.');
      }
    });
}
