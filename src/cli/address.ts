import type { Command } from 'commander';
import { isAnnounceable } from '../address/classify.js';
import { discoverAddresses } from '../address/discover.js';
import { openConfig } from '../api/open.js';
import { printJson, status, table, type GlobalOptions } from './output.js';

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('address')
    .description("show this machine's addresses, what the internet sees (STUN) and the NAT's behaviour, with what each means for being reached")
    .option('--all', 'also list loopback and link-local addresses')
    .option('--stun <urls>', 'STUN servers to ask (comma-separated; default: [ice] servers of the config); two give a NAT guess')
    .option('--no-stun', 'interface addresses only, no network traffic')
    .action(async (o) => {
      const g = globals();
      let servers: string[] = [];
      if (o.stun === false) servers = [];
      else if (typeof o.stun === 'string') servers = o.stun.split(',').map((s: string) => s.trim()).filter(Boolean);
      else servers = (await openConfig(g).catch(() => undefined))?.ice.servers ?? [];
      if (servers.length) status(g, `asking ${servers.slice(0, 2).join(' and ')}...`);
      const d = await discoverAddresses({ stunServers: servers });
      const list = d.interfaces.filter((a) => o.all || isAnnounceable(a.scope));
      if (g.json) return printJson({ ...d, interfaces: list });
      const rows = list.map((a) => [a.ip, a.interface, a.scope, a.meaning]);
      if (d.reflexive && 'ip' in d.reflexive) rows.unshift([d.reflexive.ip, d.reflexive.interface, d.reflexive.scope, d.reflexive.meaning]);
      if (!rows.length) {
        console.log('No usable address: this machine seems offline. Bring the link up and try again.');
        return;
      }
      console.log(table([['ADDRESS', 'FROM', 'KIND', 'MEANING'], ...rows]));
      if (d.reflexive && 'error' in d.reflexive) console.log(`\nSTUN did not answer (${d.reflexive.error}); check [ice] servers, or run peerdial doctor.`);
      if (d.nat) console.log(`\nNAT: ${d.nat.mapping}: ${d.nat.meaning}`);
      if (!servers.length && !list.some((a) => a.scope === 'public' || a.scope === 'ipv6-global')) {
        console.log('\nNo public address on an interface, and no STUN server configured ([ice] servers): calls from outside need one.');
      }
    });
}
