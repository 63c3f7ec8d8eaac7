/**
 * Candidate policy: which of a peer's ICE candidates this side may send
 * packets to. Pure: no native code, no I/O, no DNS.
 *
 * A mailed description steers our packets: every candidate in it is a place
 * libjuice sends STUN checks to, and a name in it would be resolved. So
 * before a description reaches libdatachannel, each `a=candidate:` line is
 * kept only when it is a UDP candidate of a known type, on a port >= 1024,
 * at an address the peer may make us talk to (wire/peer-ip.ts: no names, no
 * loopback unless this side is loopback-only, no link-local, multicast,
 * unspecified, broadcast or reserved addresses), and only the first
 * MAX_REMOTE_CANDIDATES such lines are kept.
 */
import { peerIpProblem, type PeerIpPolicy } from '../wire/peer-ip.js';
import { editLines, isCandidateLine, parseCandidate } from './sdp.js';

/** At most this many candidates of one description are used (a dual-stack host with a few interfaces, STUN and TURN needs ~20). */
export const MAX_REMOTE_CANDIDATES = 32;

export type CandidatePolicy = PeerIpPolicy;

const TYPES = new Set(['host', 'srflx', 'prflx', 'relay']);

export interface DroppedCandidate {
  /** The candidate's address as written (a name, an IP); at most 64 characters. */
  address: string;
  reason: string;
}

export interface FilteredDescription {
  sdp: string;
  kept: number;
  dropped: DroppedCandidate[];
}

/** Why this one candidate line must not be used, or undefined when it may. */
export function candidateProblem(line: string, policy: CandidatePolicy): DroppedCandidate | undefined {
  const c = parseCandidate(line);
  if (!c) return { address: '?', reason: 'not a candidate line peerdial understands' };
  const address = c.address;
  const printable = address.replace(/[^\x21-\x7e]/g, '?');
  const shown = printable.length > 64 ? `${printable.slice(0, 61)}...` : printable;
  if (c.transport.toUpperCase() !== 'UDP') return { address: shown, reason: `transport ${c.transport.slice(0, 16)} (only UDP is used)` };
  if (!TYPES.has(c.type)) return { address: shown, reason: 'an unknown candidate type' };
  const port = c.port;
  if (port < 1024 || port > 65535) return { address: shown, reason: `port ${port} (candidates use ports 1024-65535)` };
  const problem = peerIpProblem(address, policy);
  return problem ? { address: shown, reason: problem } : undefined;
}

/**
 * The description with only the candidates this side may use, how many are
 * kept and what was dropped and why.
 */
export function filterCandidates(sdp: string, policy: CandidatePolicy): FilteredDescription {
  const dropped: DroppedCandidate[] = [];
  let kept = 0;
  const filtered = editLines(sdp, (line) => {
    if (!isCandidateLine(line)) return line;
    const problem = candidateProblem(line, policy);
    if (problem) {
      dropped.push(problem);
      return undefined;
    }
    if (kept >= MAX_REMOTE_CANDIDATES) {
      dropped.push({ address: parseCandidate(line)!.address.replace(/[^\x21-\x7e]/g, '?').slice(0, 64), reason: `more than ${MAX_REMOTE_CANDIDATES} candidates` });
      return undefined;
    }
    kept++;
    return line;
  });
  return { sdp: filtered, kept, dropped };
}

/** "localhost (a hostname ...), 127.0.0.1 (loopback)": what was dropped, for an error message. */
export function describeDropped(dropped: readonly DroppedCandidate[], max = 6): string {
  const shown = dropped.slice(0, max).map((d) => `${d.address} (${d.reason})`);
  if (dropped.length > max) shown.push(`${dropped.length - max} more`);
  return shown.join(', ');
}
