/**
 * Which IP addresses a peer may make this machine send packets to: the one
 * rule for ICE candidates in offers and answers (session/candidates.ts) and
 * for the addresses of announces and presence (wire/validate.ts). Pure: no
 * I/O, and never a DNS lookup: a name is refused, not resolved.
 *
 * Refused: names of any kind (mDNS `.local` included), IPv6 zone indexes,
 * unspecified, multicast, broadcast and reserved ranges (0/8, 240/4,
 * IPv6 outside 2000::/3, fc00::/7 and fe80::/10), link-local (169.254/16,
 * fe80::/10), IPv4-mapped and IPv4-compatible IPv6 forms, 6to4 addresses
 * that wrap one of those, and loopback unless this side itself only uses
 * loopback (tests bind to 127.0.0.1). Private ranges (10/8, 172.16/12,
 * 192.168/16, fc00::/7), CGNAT and the documentation and benchmarking
 * ranges stay allowed: they are what LANs and labs (and the namespace
 * tests) use, and packets to them never leave for somebody else's host on
 * the internet.
 */
import { isIP } from 'node:net';
import { classifyAddress } from '../address/classify.js';

export interface PeerIpPolicy {
  /** This side uses loopback only (its bind address is 127.0.0.0/8 or ::1): loopback peers are fine. */
  loopback: boolean;
}

/** True when a configured bind address means "this side talks over loopback only". */
export function isLoopbackOnly(bindAddress: string | undefined): boolean {
  return bindAddress !== undefined && isIP(bindAddress) !== 0 && classifyAddress(bindAddress) === 'loopback';
}

function v6Words(ip: string): number[] {
  // classifyAddress accepted it as IPv6; expand "::" and a dotted tail into 8 words.
  let text = ip.toLowerCase();
  const tail: number[] = [];
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    tail.push((a << 8) | b, (c << 8) | d);
    text = text.slice(0, -dotted[0].length) + '0:0';
  }
  const [head = '', rest] = text.split('::');
  const h = head ? head.split(':') : [];
  const r = rest ? rest.split(':') : [];
  const words = [...h, ...Array(rest !== undefined ? 8 - h.length - r.length : 0).fill('0'), ...r].map((x) => parseInt(x, 16));
  if (tail.length) words.splice(6, 2, tail[0]!, tail[1]!);
  return words;
}

/**
 * Why this machine must not send packets to `ip` on a peer's word, or
 * undefined when it may. The reason is a short phrase ("a hostname",
 * "link-local", ...).
 */
export function peerIpProblem(ip: string, policy: PeerIpPolicy): string | undefined {
  if (ip.includes('%')) return 'an IPv6 address with a zone index';
  const family = isIP(ip);
  if (family === 0) return 'a hostname (peerdial makes no DNS lookups for a peer)';
  if (family === 6) {
    const w = v6Words(ip);
    if (w.length !== 8) return 'not a plain IPv6 address';
    const zeros = (n: number) => w.slice(0, n).every((x) => x === 0);
    if (zeros(5) && w[5] === 0xffff) return 'an IPv4-mapped IPv6 address';
    if (zeros(6) && !(w[6] === 0 && (w[7] === 0 || w[7] === 1))) return 'an IPv4-compatible IPv6 address';
    if (w[0] === 0x2002) {
      const inner = `${w[1]! >> 8}.${w[1]! & 255}.${w[2]! >> 8}.${w[2]! & 255}`;
      const wrapped = peerIpProblem(inner, { loopback: false });
      if (wrapped) return `a 6to4 address that wraps ${wrapped}`;
    }
  }
  if (ip === '255.255.255.255') return 'broadcast';
  const scope = classifyAddress(ip);
  switch (scope) {
    case 'loopback':
      return policy.loopback ? undefined : 'loopback';
    case 'link-local':
    case 'multicast':
    case 'unspecified':
      return scope;
    case 'reserved':
      return 'a reserved address';
    default:
      return undefined;
  }
}
