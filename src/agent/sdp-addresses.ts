/** The human-readable address list of a mail, taken from the SDP's candidates. Pure. */
import { classifyAddress } from '../address/classify.js';
import type { AddressEntry } from '../wire/message.js';
import { peerIpProblem } from '../wire/peer-ip.js';
import { candidates } from '../session/sdp.js';

const SOURCES: Record<string, AddressEntry['source']> = { host: 'interface', srflx: 'stun', prflx: 'stun', relay: 'relay' };

export function addressesFromSdp(sdp: string): AddressEntry[] {
  const out: AddressEntry[] = [];
  const seen = new Set<string>();
  for (const c of candidates(sdp)) {
    if (c.transport.toUpperCase() !== 'UDP') continue;
    const ip = c.address;
    const port = c.port;
    const key = `${ip}|${port}`;
    // what the receiver would refuse is not sent (wire/validate.ts: the same rule)
    if (seen.has(key) || peerIpProblem(ip, { loopback: true })) continue;
    seen.add(key);
    out.push({ ip, port, source: SOURCES[c.type] ?? 'interface', scope: classifyAddress(ip) });
    if (out.length >= 32) break;
  }
  return out;
}
