import { isAnnounceable } from '../../address/classify.js';
import { discoverAddresses } from '../../address/discover.js';
import { describeMapping, mapUdpPort, mappingInfo, MAPPING_MEANING, type PortMapping } from '../../address/portmap.js';
import { openConfig } from '../../api/open.js';
import { PeerdialError } from '../../errors.js';
import { printJson, status, table, type GlobalOptions } from '../output.js';

/** `peerdial address`: what this machine can be reached at (see the descriptor in ../address.ts). */
export async function address(g: GlobalOptions, o: Record<string, any>): Promise<void> {
  // The router mapping first, so that a failure is known before anything is printed.
  let mapping: PortMapping | undefined;
  let mapError: PeerdialError | undefined;
  if (o.mapPort !== undefined) {
    const port = Number(o.mapPort);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new PeerdialError('USAGE', `--map-port: not a UDP port: ${o.mapPort}`);
    if (!['auto', 'natpmp', 'upnp'].includes(o.mapMethod)) throw new PeerdialError('USAGE', `--map-method: auto, natpmp or upnp, not ${o.mapMethod}`);
    status(g, `asking the router to forward UDP port ${port}...`);
    try {
      mapping = await mapUdpPort({ internalPort: port, method: o.mapMethod, ...(o.gateway ? { gateway: o.gateway } : {}) });
    } catch (err) {
      if (!(err instanceof PeerdialError) || err.code !== 'PORTMAP_FAILED') throw err;
      mapError = err;
    }
  }
  try {
    await show(g, o, mapping, mapError);
  } finally {
    if (mapping && !o.keep) await mapping.unmap();
  }
  if (mapError) throw mapError; // after the rest was shown: exit 69 with the hint
}

async function show(g: GlobalOptions, o: Record<string, unknown>, mapping: PortMapping | undefined, mapError: PeerdialError | undefined): Promise<void> {
  let servers: string[] = [];
  if (o.stun === false) servers = [];
  else if (typeof o.stun === 'string') servers = o.stun.split(',').map((s: string) => s.trim()).filter(Boolean);
  else servers = (await openConfig(g).catch(() => undefined))?.ice.servers ?? [];
  if (servers.length) status(g, `asking ${servers.slice(0, 2).join(' and ')}...`);
  const d = await discoverAddresses({ stunServers: servers });
  const list = d.interfaces.filter((a) => o.all || isAnnounceable(a.scope));
  if (g.json) {
    const portMapping = mapping
      ? { ...mappingInfo(mapping), meaning: MAPPING_MEANING, kept: !!o.keep }
      : mapError && { error: mapError.message, code: mapError.code, hint: mapError.hint };
    return printJson({ ...d, interfaces: list, ...(portMapping ? { portMapping } : {}) });
  }
  const rows = list.map((a) => [a.ip, a.interface, a.scope, a.meaning]);
  if (d.reflexive && 'ip' in d.reflexive) rows.unshift([d.reflexive.ip, d.reflexive.interface, d.reflexive.scope, d.reflexive.meaning]);
  if (!rows.length && !mapping) {
    console.log('No usable address: this machine seems offline. Bring the link up and try again.');
    return;
  }
  if (rows.length) console.log(table([['ADDRESS', 'FROM', 'KIND', 'MEANING'], ...rows]));
  if (d.reflexive && 'error' in d.reflexive) console.log(`\nSTUN did not answer (${d.reflexive.error}); check [ice] servers, or run peerdial doctor.`);
  if (d.nat) console.log(`\nNAT: ${d.nat.mapping}: ${d.nat.meaning}`);
  if (mapping) {
    console.log(`\nrouter mapping: ${describeMapping(mapping)} (what it means: ${MAPPING_MEANING})`);
    console.log(o.keep ? `kept on the router ${mapping.gateway} until ${mapping.expiresAt.toISOString()}` : 'removed again before exiting (--keep leaves it)');
  }
  if (!servers.length && !mapping && !list.some((a) => a.scope === 'public' || a.scope === 'ipv6-global')) {
    console.log('\nNo public address on an interface, and no STUN server configured ([ice] servers): calls from outside need one.');
  }
}
