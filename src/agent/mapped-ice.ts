/**
 * Calls through a router port mapping (UPnP / NAT-PMP): before gathering,
 * ICE is pinned to one local UDP port that the router forwards, and the
 * mapped public address is added to the description as a candidate (some
 * routers rewrite the source port, so STUN already reports it; others do
 * not). The mapping lives as long as the call and is removed after it.
 */
import type { IceConfig } from '../session/types.js';
import type { PortMapping } from '../address/portmap.js';
import { freeUdpPort } from '../session/ports.js';
import { candidateLine, candidates, editLines, isCandidateLine, isEndOfCandidates, parseCandidate } from '../session/sdp.js';

/**
 * Adds the router's mapped address as a server-reflexive candidate to every
 * media section that has candidates, before `a=end-of-candidates` (pure).
 * Nothing changes when the description already carries that address.
 */
export function addMappedCandidate(sdp: string, m: { externalHost: string; externalPort: number; internalHost: string; internalPort: number }): string {
  if (candidates(sdp).some((c) => c.address === m.externalHost && c.port === m.externalPort)) return sdp;
  let component = 1;
  return editLines(sdp, (line) => {
    const c = isCandidateLine(line) ? parseCandidate(line) : undefined;
    if (c) component = c.component;
    if (!isEndOfCandidates(line)) return line;
    // priority below host, like a server-reflexive candidate
    const mapped = candidateLine({
      foundation: 'pdmap',
      component,
      transport: 'UDP',
      priority: 1694498815,
      address: m.externalHost,
      port: m.externalPort,
      type: 'srflx',
      rest: `raddr ${m.internalHost} rport ${m.internalPort}`,
    });
    return [mapped, line];
  });
}

/** ICE settings pinned to the mapped port. */
export function pinnedIce(ice: IceConfig, mapping: PortMapping): IceConfig {
  return { ...ice, portRangeBegin: mapping.internalPort, portRangeEnd: mapping.internalPort };
}

/**
 * ICE settings for one attempt of a call: with `port_mapping`, a local UDP
 * port the router forwards, kept in `call.mapping` (an earlier one is
 * removed first). A failure is reported and the call goes on without.
 */
export async function callIce(
  call: { mapping?: PortMapping },
  ice: IceConfig,
  method: 'auto' | 'upnp' | 'natpmp' | 'off' | undefined,
  onError: (err: Error) => void,
): Promise<IceConfig> {
  if (!method || method === 'off') return ice;
  await call.mapping?.unmap().catch(() => undefined);
  delete call.mapping;
  try {
    const { mapUdpPort } = await import('../address/portmap.js');
    // free where ICE will bind it (both families when it binds everywhere, as libjuice does)
    const internalPort = await freeUdpPort(0, ice.bindAddress);
    if (internalPort === undefined) throw new Error('no free local UDP port');
    call.mapping = await mapUdpPort({ internalPort, method, ttlSeconds: 3600, timeoutMs: 3000 });
    return pinnedIce(ice, call.mapping);
  } catch (err) {
    onError(new Error(`no router port mapping for this call (${(err as Error).message}); going on without`));
    return ice;
  }
}
