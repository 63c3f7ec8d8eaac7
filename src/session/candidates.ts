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

/** At most this many candidates of one description are used (a dual-stack host with a few interfaces, STUN and TURN needs ~20). */
export const MAX_REMOTE_CANDIDATES = 32;

export type CandidatePolicy = PeerIpPolicy;

const TYPES = new Set(['host', 'srflx', 'prflx', 'relay']);
/** foundation component transport priority address port "typ" type ... */
const CANDIDATE = /^(?:a=)?candidate:(\S{1,32}) (\d{1,3}) (\S{1,16}) (\d{1,10}) (\S{1,255}) (\d{1,5}) typ (\S{1,16})(?: .*)?$/;

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
  const m = CANDIDATE.exec(line.replace(/\r$/, ''));
  if (!m) return { address: '?', reason: 'not a candidate line peerdial understands' };
  const address = m[5]!;
  const printable = address.replace(/[^\x21-\x7e]/g, '?');
  const shown = printable.length > 64 ? `${printable.slice(0, 61)}...` : printable;
  if (m[3]!.toUpperCase() !== 'UDP') return { address: shown, reason: `transport ${m[3]!.slice(0, 16)} (only UDP is used)` };
  if (!TYPES.has(m[7]!)) return { address: shown, reason: 'an unknown candidate type' };
  const port = Number(m[6]);
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
  const lines = sdp.split('\n').filter((line) => {
    if (!line.startsWith('a=candidate:')) return true;
    const problem = candidateProblem(line, policy);
    if (problem) {
      dropped.push(problem);
      return false;
    }
    if (kept >= MAX_REMOTE_CANDIDATES) {
      dropped.push({ address: CANDIDATE.exec(line.replace(/\r$/, ''))![5]!.replace(/[^\x21-\x7e]/g, '?').slice(0, 64), reason: `more than ${MAX_REMOTE_CANDIDATES} candidates` });
      return false;
    }
    kept++;
    return true;
  });
  return { sdp: lines.join('\n'), kept, dropped };
}

/** "localhost (a hostname ...), 127.0.0.1 (loopback)": what was dropped, for an error message. */
export function describeDropped(dropped: readonly DroppedCandidate[], max = 6): string {
  const shown = dropped.slice(0, max).map((d) => `${d.address} (${d.reason})`);
  if (dropped.length > max) shown.push(`${dropped.length - max} more`);
  return shown.join(', ');
}
