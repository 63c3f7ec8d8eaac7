/**
 * Calls through a router port mapping (UPnP / NAT-PMP): before gathering,
 * ICE is pinned to one local UDP port that the router forwards, and the
 * mapped public address is added to the description as a candidate (some
 * routers rewrite the source port, so STUN already reports it; others do
 * not). The mapping lives as long as the call and is removed after it.
 */
import dgram from 'node:dgram';
import type { IceConfig } from '../session/types.js';
import type { PortMapping } from '../address/portmap.js';

/** A free local UDP port (bound and released at once). */
export function freeUdpPort(host = '0.0.0.0'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, host, () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Adds the router's mapped address as a server-reflexive candidate to every
 * media section that has candidates, before `a=end-of-candidates` (pure).
 * Nothing changes when the description already carries that address.
 */
export function addMappedCandidate(sdp: string, m: { externalHost: string; externalPort: number; internalHost: string; internalPort: number }): string {
  if (sdp.includes(` ${m.externalHost} ${m.externalPort} typ `)) return sdp;
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const lines = sdp.split(eol);
  const out: string[] = [];
  let component = 1;
  for (const line of lines) {
    const c = /^a=candidate:\S+ (\d+) /.exec(line);
    if (c) component = Number(c[1]);
    if (line === 'a=end-of-candidates') {
      // priority below host, like a server-reflexive candidate
      out.push(`a=candidate:pdmap ${component} UDP 1694498815 ${m.externalHost} ${m.externalPort} typ srflx raddr ${m.internalHost} rport ${m.internalPort}`);
    }
    out.push(line);
  }
  return out.join(eol);
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
    const internalPort = await freeUdpPort();
    call.mapping = await mapUdpPort({ internalPort, method, ttlSeconds: 3600, timeoutMs: 3000 });
    return pinnedIce(ice, call.mapping);
  } catch (err) {
    onError(new Error(`no router port mapping for this call (${(err as Error).message}); going on without`));
    return ice;
  }
}
