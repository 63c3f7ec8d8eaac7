/**
 * A mailed description sorted before it reaches libdatachannel: "usable",
 * with only the candidates this side may use (candidates.ts), or "rejected
 * with a reason". Pure.
 */
import { describeDropped, filterCandidates, type CandidatePolicy, type DroppedCandidate } from './candidates.js';
import { descriptionShapeProblem, dtlsSetups } from './sdp.js';

export type DescriptionCheck =
  | { ok: true; /** The description with only the usable candidates: give this one to libdatachannel. */ sdp: string; dropped: DroppedCandidate[] }
  | { ok: false; reason: string };

/**
 * Sort a mailed description before giving it to libdatachannel: it must look
 * like a complete, non-trickle description of the expected type, with at
 * least one candidate this side may use (session/candidates.ts: the others
 * are taken out). Without a policy the strict one applies (no loopback).
 */
export function checkRemoteDescription(sdp: string, type: 'offer' | 'answer', policy: CandidatePolicy = { loopback: false }): DescriptionCheck {
  const problem = descriptionShapeProblem(sdp, type);
  if (problem) return { ok: false, reason: problem };
  const setups = dtlsSetups(sdp);
  if (type === 'answer' && setups.some((s) => s === 'actpass')) {
    return { ok: false, reason: 'the answer offers both DTLS roles (a=setup:actpass), which an answer must not' };
  }
  const filtered = filterCandidates(sdp, policy);
  if (filtered.kept === 0) {
    return {
      ok: false,
      reason: filtered.dropped.length
        ? `the ${type} names no usable candidate: dropped ${describeDropped(filtered.dropped)}`
        : `the ${type} names no candidate at all`,
    };
  }
  return { ok: true, sdp: filtered.sdp, dropped: filtered.dropped };
}
