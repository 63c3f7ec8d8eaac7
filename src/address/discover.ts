/**
 * Everything peerdial can learn about how this machine is reached: its
 * interface addresses, the address a STUN server sees (server-reflexive),
 * and a guess of the NAT's mapping behaviour from two STUN servers.
 */
import { interfaceAddresses, type DetectedAddress } from './interfaces.js';
import { classifyAddress, describeScope } from './classify.js';
import { natMapping, stunBinding, type NatMapping, type StunServer } from './stun.js';

export interface Discovery {
  interfaces: DetectedAddress[];
  /** What the first STUN server saw, or why there is nothing. */
  reflexive: DetectedAddress | { error: string } | undefined;
  nat: { mapping: NatMapping; meaning: string } | undefined;
}

/** `stun:host:port` / `stun:[v6]:port` / `{ host, port }` forms; TURN entries are not STUN probes. */
export function parseStunUrl(url: string): StunServer | undefined {
  const m = url.trim().match(/^stuns?:(\[[0-9a-fA-F:.]+\]|[^:?[\]]+)(?::(\d+))?(?:\?.*)?$/);
  if (!m) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : 3478 };
}

export function natMeaning(m: NatMapping): string {
  switch (m) {
    case 'endpoint-independent':
      return 'one public port for every peer (no NAT or a cone NAT): peers can reach the port STUN reports';
    case 'endpoint-dependent':
      return 'a new public port for every peer (symmetric NAT): direct calls need a peer that accepts unsolicited packets, a port mapping, or TURN';
    default:
      return 'unknown: a STUN server did not answer';
  }
}

export async function discoverAddresses(opts: { stunServers: string[]; timeoutMs?: number; signal?: AbortSignal }): Promise<Discovery> {
  const interfaces = interfaceAddresses();
  const servers = opts.stunServers.map(parseStunUrl).filter((s): s is StunServer => s !== undefined);
  const timeoutMs = opts.timeoutMs ?? 3000;
  let reflexive: Discovery['reflexive'];
  let nat: Discovery['nat'];
  if (servers[0]) {
    try {
      const r = await stunBinding(servers[0], { timeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) });
      const scope = classifyAddress(r.address);
      reflexive = { ip: r.address, family: r.address.includes(':') ? 6 : 4, interface: `stun ${servers[0].host}:${servers[0].port} (port ${r.port})`, scope, meaning: `what the internet sees: ${describeScope(scope)}`, source: 'stun' };
    } catch (err) {
      reflexive = { error: `${servers[0].host}:${servers[0].port}: ${(err as Error).message}` };
    }
  }
  if (servers[0] && servers[1]) {
    const r = await natMapping([servers[0], servers[1]], { timeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) });
    nat = { mapping: r.mapping, meaning: natMeaning(r.mapping) };
  }
  return { interfaces, reflexive, nat };
}
