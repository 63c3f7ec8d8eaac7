/**
 * UDP ports for sessions that must keep theirs: a kept answer
 * (kept-answer.ts) and the offerer's fresh connection for the answer
 * (fresh-agent.ts) bind the port the mailed description names, so it is
 * picked up front and pinned.
 */
import { createSocket } from 'node:dgram';
import { PeerdialError } from '../errors.js';
import type { IceConfig } from './types.js';

/**
 * ICE config with a fixed UDP port (a kept answer's candidates must not
 * change): the configured single port, or a free one (in the configured
 * range, if any).
 */
export async function pinPort(ice: IceConfig): Promise<IceConfig> {
  if (ice.portRangeBegin !== undefined && ice.portRangeBegin > 0 && ice.portRangeBegin === ice.portRangeEnd) return ice;
  const begin = ice.portRangeBegin ?? 0;
  const end = ice.portRangeEnd ?? 0;
  const ranged = begin > 0 && end >= begin;
  for (let attempt = 0; attempt < 20; attempt++) {
    const wanted = ranged ? begin + Math.floor(Math.random() * (end - begin + 1)) : 0;
    const port = await freeUdpPort(wanted, ice.bindAddress);
    if (port !== undefined) return { ...ice, portRangeBegin: port, portRangeEnd: port };
  }
  throw new PeerdialError('SESSION_FAILED', 'no free UDP port to keep the answer on', {
    hint: 'widen the ICE port range (portRangeBegin/portRangeEnd) in the configuration',
  });
}

/** A UDP port free on `address` (or on every address, both families); `wanted` 0 lets the system choose. */
export function freeUdpPort(wanted: number, address: string | undefined): Promise<number | undefined> {
  const tryBind = (type: 'udp4' | 'udp6', port: number, addr: string | undefined) =>
    new Promise<number | undefined>((resolve) => {
      const sock = createSocket({ type, ipv6Only: false });
      sock.once('error', () => {
        try {
          sock.close();
        } catch {
          // not bound
        }
        resolve(undefined);
      });
      sock.bind({ port, address: addr, exclusive: true }, () => {
        const p = sock.address().port;
        sock.close(() => resolve(p));
      });
    });
  return (async () => {
    if (address !== undefined) return tryBind(address.includes(':') ? 'udp6' : 'udp4', wanted, address);
    // libjuice binds a dual-stack socket when it can: the port must be free for both.
    const p = await tryBind('udp4', wanted, undefined);
    if (p === undefined) return undefined;
    const v6 = await tryBind('udp6', p, '::');
    return v6 === undefined && (await hasIpv6()) ? undefined : p;
  })();
}

let ipv6Checked: Promise<boolean> | undefined;
function hasIpv6(): Promise<boolean> {
  ipv6Checked ??= new Promise((resolve) => {
    const sock = createSocket('udp6');
    sock.once('error', () => resolve(false));
    sock.bind({ port: 0, address: '::' }, () => sock.close(() => resolve(true)));
  });
  return ipv6Checked;
}
