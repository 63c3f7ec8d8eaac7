/**
 * Pure SDP helpers for the session module: no native code, no I/O.
 *
 * Only what non-trickle signalling over mail needs: read the DTLS role, make
 * the offerer the DTLS client, and sort a mailed description into "usable" or
 * "rejected with a reason" before it reaches libdatachannel.
 */

import { describeDropped, filterCandidates, type CandidatePolicy, type DroppedCandidate } from './candidates.js';

export type DtlsSetup = 'actpass' | 'active' | 'passive' | 'holdconn';

const SETUP_LINE = /^a=setup:(actpass|active|passive|holdconn)\r?$/gm;

/** The `a=setup:` values of a description, in order (one per media section or session-level). */
export function dtlsSetups(sdp: string): DtlsSetup[] {
  return [...sdp.matchAll(SETUP_LINE)].map((m) => m[1] as DtlsSetup);
}

/**
 * Make the side that wrote this OFFER the DTLS client: `a=setup:actpass`
 * becomes `a=setup:active`. Other values are left alone. Never apply this to
 * an answer (both sides would then be clients).
 *
 * Why: with actpass the answerer becomes the DTLS client and sends its
 * ClientHello as soon as it has the offer, long before the answer comes back
 * by mail; libdatachannel 0.24.5 can leave that hello unprocessed and the
 * answerer's DTLS gives up after ~31 s. With the offerer as client the
 * handshake only starts once the offerer has the answer.
 */
export function forceOffererDtlsClient(offerSdp: string): string {
  return offerSdp.replace(/^a=setup:actpass(\r?)$/gm, 'a=setup:active$1');
}

/** Number of `a=candidate:` lines. */
export function countCandidates(sdp: string): number {
  return sdp.match(/^a=candidate:/gm)?.length ?? 0;
}

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
  if (typeof sdp !== 'string' || !sdp.startsWith('v=0')) {
    return { ok: false, reason: `the ${type} is not an SDP description (it does not start with v=0)` };
  }
  if (!/^a=fingerprint:\S+ \S+/m.test(sdp)) {
    return { ok: false, reason: `the ${type} carries no DTLS fingerprint` };
  }
  if (!/^a=ice-ufrag:\S+/m.test(sdp) || !/^a=ice-pwd:\S+/m.test(sdp)) {
    return { ok: false, reason: `the ${type} carries no ICE credentials` };
  }
  if (!/^m=application /m.test(sdp)) {
    return { ok: false, reason: `the ${type} has no data channel section` };
  }
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

/** Address families of a description's candidates (4, 6), ignoring mDNS names. */
export function candidateFamilies(sdp: string): Set<4 | 6> {
  const out = new Set<4 | 6>();
  for (const m of sdp.matchAll(/^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ /gm)) {
    const addr = m[1]!;
    if (addr.endsWith('.local')) continue;
    out.add(addr.includes(':') ? 6 : 4);
  }
  return out;
}

/**
 * Why two complete descriptions cannot connect directly, when that is plain
 * from the descriptions alone: no address family in common.
 */
export function noCommonFamily(localSdp: string, remoteSdp: string): string | undefined {
  const local = candidateFamilies(localSdp);
  const remote = candidateFamilies(remoteSdp);
  if (local.size === 0 || remote.size === 0) return undefined;
  if ([...local].some((f) => remote.has(f))) return undefined;
  const name = (s: Set<4 | 6>) => [...s].map((f) => `IPv${f}`).join('+');
  return `this side has only ${name(local)} addresses and the peer only ${name(remote)}: there is no direct path`;
}

/** The `a=ice-ufrag`, `a=ice-pwd` and first `a=fingerprint` of a description. */
export function iceIdentity(sdp: string): { ufrag: string; pwd: string; fingerprint: string } | undefined {
  const ufrag = /^a=ice-ufrag:(\S+)/m.exec(sdp)?.[1];
  const pwd = /^a=ice-pwd:(\S+)/m.exec(sdp)?.[1];
  const fingerprint = /^a=fingerprint:(.+?)\r?$/m.exec(sdp)?.[1];
  return ufrag && pwd && fingerprint ? { ufrag, pwd, fingerprint } : undefined;
}

/** The mids of a description's m-sections in order, with their kinds ("video:0 application:2"). */
export function sectionMids(sdp: string): string {
  const out: string[] = [];
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    const kind = /^(\S+)/.exec(section)?.[1] ?? '?';
    const mid = /^a=mid:(\S+)/m.exec(section)?.[1] ?? '?';
    out.push(`${kind}:${mid}`);
  }
  return out.join(' ');
}

/** Candidate addresses of a description as sorted "address port typ" strings (for comparing two descriptions). */
export function candidateAddresses(sdp: string): string[] {
  return [...sdp.matchAll(/^a=candidate:\S+ \d+ \S+ \d+ (\S+) (\d+) typ (\S+)/gm)].map((m) => `${m[1]} ${m[2]} ${m[3]}`).sort();
}

// ---------------------------------------------------------------------------
// Media sections (issue 5)

export type SdpMediaDirection = 'sendonly' | 'recvonly' | 'sendrecv' | 'inactive';

/** One m=audio or m=video section of a description, as far as peerdial uses it. */
export interface OfferedMedia {
  kind: 'audio' | 'video';
  mid: string;
  direction: SdpMediaDirection;
  /** Payload type per codec name, lower-cased (`h264`, `opus`); the first one of each name. */
  payloadTypes: Record<string, number>;
  ssrcs: number[];
}

/** The audio and video sections of a description, in order. Data channel sections are left out. */
export function mediaSections(sdp: string): OfferedMedia[] {
  const out: OfferedMedia[] = [];
  const sections = sdp.split(/\r?\n(?=m=)/).slice(1);
  for (const section of sections) {
    const m = /^m=(audio|video) /.exec(section);
    if (!m) continue;
    const mid = /^a=mid:(\S+)/m.exec(section)?.[1];
    if (mid === undefined) continue;
    const direction = (/^a=(sendonly|recvonly|sendrecv|inactive)\r?$/m.exec(section)?.[1] ?? 'sendrecv') as SdpMediaDirection;
    const payloadTypes: Record<string, number> = {};
    for (const r of section.matchAll(/^a=rtpmap:(\d+) ([^/\s]+)\//gm)) {
      const name = r[2]!.toLowerCase();
      if (payloadTypes[name] === undefined) payloadTypes[name] = Number(r[1]);
    }
    const ssrcs = [...new Set([...section.matchAll(/^a=ssrc:(\d+) /gm)].map((s) => Number(s[1])))];
    out.push({ kind: m[1] as 'audio' | 'video', mid, direction, payloadTypes, ssrcs });
  }
  return out;
}

/** The direction an answerer may use for a section offered with `offered`. */
export function mirrorDirection(offered: SdpMediaDirection): SdpMediaDirection {
  if (offered === 'sendonly') return 'recvonly';
  if (offered === 'recvonly') return 'sendonly';
  return offered;
}

/** The common part of two directions of the same side (what both allow). */
export function narrowDirection(a: SdpMediaDirection, b: SdpMediaDirection): SdpMediaDirection {
  const sends = (d: SdpMediaDirection) => d === 'sendonly' || d === 'sendrecv';
  const recvs = (d: SdpMediaDirection) => d === 'recvonly' || d === 'sendrecv';
  const s = sends(a) && sends(b);
  const r = recvs(a) && recvs(b);
  return s && r ? 'sendrecv' : s ? 'sendonly' : r ? 'recvonly' : 'inactive';
}
