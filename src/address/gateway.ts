/** The IPv4 default gateway (the router port mapping asks) and this machine's address toward a host. */
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';

/** The IPv4 default gateway in the text of /proc/net/route (lowest metric), or undefined. */
export function parseProcNetRoute(text: string): { gateway: string; iface: string } | undefined {
  let best: { gateway: string; iface: string; metric: number } | undefined;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dest, gw, flags, , , metric, mask] = f as [string, string, string, string, string, string, string, string];
    const fl = Number.parseInt(flags, 16);
    // RTF_UP (1) and RTF_GATEWAY (2), destination and mask 0.0.0.0
    if (dest !== '00000000' || mask !== '00000000' || (fl & 3) !== 3) continue;
    const n = Number.parseInt(gw, 16);
    if (!Number.isFinite(n) || n === 0) continue;
    // little-endian on every Linux machine peerdial runs on
    const gateway = [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.');
    const m = Number(metric);
    if (!best || m < best.metric) best = { gateway, iface, metric: m };
  }
  return best && { gateway: best.gateway, iface: best.iface };
}

export function defaultGateway(routeFile = '/proc/net/route'): string | undefined {
  try {
    return parseProcNetRoute(readFileSync(routeFile, 'utf8'))?.gateway;
  } catch {
    return undefined;
  }
}

/** The local address the kernel would use to reach `host` (a connected UDP socket sends nothing). */
export function localAddressToward(host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', (err) => {
      s.close();
      reject(err);
    });
    s.connect(5351, host, () => {
      const a = s.address().address;
      s.close();
      resolve(a);
    });
  });
}
