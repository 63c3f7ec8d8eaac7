/**
 * What an IP address means for reachability. Pure: no I/O.
 */
import net from 'node:net';

export type AddressScope =
  | 'public'
  | 'private'
  | 'cgnat'
  | 'loopback'
  | 'link-local'
  | 'ula'
  | 'ipv6-global'
  | 'documentation'
  | 'benchmarking'
  | 'unspecified'
  | 'multicast'
  | 'reserved';

function v4ToInt(ip: string): number {
  return ip.split('.').reduce((n, part) => (n << 8) + Number(part), 0) >>> 0;
}

function inV4(ip: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (v4ToInt(ip) & mask) === (v4ToInt(base!) & mask);
}

/** Expands an IPv6 address to 8 hextets (numbers). */
function v6Hextets(ip: string): number[] {
  let text = ip.split('%')[0]!.toLowerCase();
  const tail: number[] = [];
  const v4 = text.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (v4) {
    const n = v4ToInt(v4[1]!);
    tail.push(n >>> 16, n & 0xffff);
    text = text.slice(0, -v4[1]!.length) + '0:0';
  }
  const [head, rest] = text.split('::');
  const h = head ? head.split(':').filter(Boolean) : [];
  const r = rest !== undefined && rest ? rest.split(':').filter(Boolean) : [];
  const fill = 8 - h.length - r.length;
  const all = [...h, ...Array(rest !== undefined ? fill : 0).fill('0'), ...r].map((x) => parseInt(x, 16));
  if (v4) all.splice(6, 2, tail[0]!, tail[1]!);
  return all;
}

export function classifyAddress(ip: string): AddressScope {
  const family = net.isIP(ip.split('%')[0]!);
  if (family === 4) {
    if (ip === '0.0.0.0') return 'unspecified';
    if (inV4(ip, '127.0.0.0/8')) return 'loopback';
    if (inV4(ip, '10.0.0.0/8') || inV4(ip, '172.16.0.0/12') || inV4(ip, '192.168.0.0/16')) return 'private';
    if (inV4(ip, '100.64.0.0/10')) return 'cgnat';
    if (inV4(ip, '169.254.0.0/16')) return 'link-local';
    if (inV4(ip, '192.0.2.0/24') || inV4(ip, '198.51.100.0/24') || inV4(ip, '203.0.113.0/24')) return 'documentation';
    if (inV4(ip, '198.18.0.0/15')) return 'benchmarking';
    if (inV4(ip, '224.0.0.0/4')) return 'multicast';
    if (inV4(ip, '240.0.0.0/4') || inV4(ip, '0.0.0.0/8')) return 'reserved';
    return 'public';
  }
  if (family === 6) {
    const h = v6Hextets(ip);
    if (h.every((x) => x === 0)) return 'unspecified';
    if (h.slice(0, 7).every((x) => x === 0) && h[7] === 1) return 'loopback';
    if (h.slice(0, 5).every((x) => x === 0) && h[5] === 0xffff) {
      return classifyAddress(`${h[6]! >> 8}.${h[6]! & 255}.${h[7]! >> 8}.${h[7]! & 255}`);
    }
    const first = h[0]!;
    if ((first & 0xffc0) === 0xfe80) return 'link-local';
    if ((first & 0xfe00) === 0xfc00) return 'ula';
    if ((first & 0xff00) === 0xff00) return 'multicast';
    if (first === 0x2001 && h[1] === 0x0db8) return 'documentation';
    if ((first & 0xe000) === 0x2000) return 'ipv6-global';
    return 'reserved';
  }
  return 'reserved';
}

/** One line for the user: what this kind of address means for being reached. */
export function describeScope(scope: AddressScope): string {
  switch (scope) {
    case 'public':
      return 'public IPv4: others can reach it directly unless a firewall filters';
    case 'ipv6-global':
      return 'global IPv6: reachable directly from IPv6 peers unless a firewall filters';
    case 'private':
      return 'private (RFC 1918): only on this network; behind a NAT for everybody else';
    case 'cgnat':
      return 'carrier-grade NAT (100.64/10): behind the provider\'s NAT, not reachable from outside';
    case 'loopback':
      return 'loopback: this machine only';
    case 'link-local':
      return 'link-local: this link only';
    case 'ula':
      return 'unique local IPv6: this site only';
    case 'documentation':
    case 'benchmarking':
      return 'test/documentation range: only in labs and test networks';
    default:
      return 'not usable for calls';
  }
}

/** Addresses worth telling a peer about (not loopback, not link-local, not unspecified). */
export function isAnnounceable(scope: AddressScope): boolean {
  return !['loopback', 'link-local', 'unspecified', 'multicast', 'reserved'].includes(scope);
}
