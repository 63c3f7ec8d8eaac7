/**
 * The one SDP module: every place in peerdial that reads or edits a session
 * description, or parses an ICE candidate line, calls this one. Pure: no
 * native code, no I/O.
 *
 * libdatachannel writes the descriptions; peerdial only reads what
 * non-trickle signalling over mail needs (DTLS roles, ICE credentials and
 * fingerprints, candidates, sections and their media), and edits a few lines
 * (the offerer's DTLS role, candidates taken out or added). In layers:
 *
 * - lines and attributes: `a=name:value` lines, read and edited line by
 *   line; line ends (CRLF or LF) are kept as they were;
 * - the candidate grammar: one `a=candidate:` line parsed and written;
 * - m-sections;
 * - what the session asks of a description.
 */

// ---------------------------------------------------------------------------
// Lines and attributes

/** A description's lines, without their line ends. */
export function lines(sdp: string): string[] {
  return sdp.split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
}

/**
 * Edit a description line by line: `edit` gets each line (without its line
 * end) and returns it, lines to put in its place, or undefined to drop it.
 * Each line keeps its line end; lines put in take the line end of the line
 * they replace.
 */
export function editLines(sdp: string, edit: (line: string) => string | readonly string[] | undefined): string {
  const out: string[] = [];
  for (const raw of sdp.split('\n')) {
    const cr = raw.endsWith('\r') ? '\r' : '';
    const edited = edit(cr ? raw.slice(0, -1) : raw);
    if (edited === undefined) continue;
    for (const line of typeof edited === 'string' ? [edited] : edited) out.push(line + cr);
  }
  return out.join('\n');
}

/** The values of every `a=name:value` line, in order: the whole rest of each line. */
export function attributeValues(sdp: string | readonly string[], name: string): string[] {
  const prefix = `a=${name}:`;
  return (typeof sdp === 'string' ? lines(sdp) : sdp).filter((line) => line.startsWith(prefix)).map((line) => line.slice(prefix.length));
}

/** The first word (up to a space) right after `a=name:`, from the first such line that has one. */
function firstWord(sdp: string | readonly string[], name: string): string | undefined {
  for (const value of attributeValues(sdp, name)) {
    const word = /^\S+/.exec(value)?.[0];
    if (word) return word;
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Candidates

/** One ICE candidate line (RFC 8839 5.1), as far as peerdial reads it. */
export interface Candidate {
  foundation: string;
  component: number;
  /** As written (`UDP`, `udp`, `TCP`...). */
  transport: string;
  priority: number;
  /** As written: an IP address or a name. */
  address: string;
  port: number;
  /** `host`, `srflx`, `prflx`, `relay`, or whatever the line says. */
  type: string;
  /** What follows the type (`raddr ... rport ...`, extensions), without the space before it; '' when nothing. */
  rest: string;
}

/** foundation component transport priority address port "typ" type [rest], each field of a bounded length. */
const CANDIDATE = /^(?:a=)?candidate:(\S{1,32}) (\d{1,3}) (\S{1,16}) (\d{1,10}) (\S{1,255}) (\d{1,5}) typ (\S{1,16})(?: (.*))?$/;

/**
 * Parse one candidate, `a=candidate:...` (a description's line) or
 * `candidate:...` (trickled); undefined when the line does not follow the
 * grammar.
 */
export function parseCandidate(line: string): Candidate | undefined {
  const m = CANDIDATE.exec(line.replace(/\r$/, ''));
  if (!m) return undefined;
  return {
    foundation: m[1]!,
    component: Number(m[2]),
    transport: m[3]!,
    priority: Number(m[4]),
    address: m[5]!,
    port: Number(m[6]),
    type: m[7]!,
    rest: m[8] ?? '',
  };
}

/** The `a=candidate:` line of a candidate. */
export function candidateLine(c: Candidate): string {
  return `a=candidate:${c.foundation} ${c.component} ${c.transport} ${c.priority} ${c.address} ${c.port} typ ${c.type}${c.rest ? ` ${c.rest}` : ''}`;
}

/** Is this line of a description a candidate line (well-formed or not)? */
export function isCandidateLine(line: string): boolean {
  return line.startsWith('a=candidate:');
}

/** Is this line the `a=end-of-candidates` of a section? */
export function isEndOfCandidates(line: string): boolean {
  return line === 'a=end-of-candidates';
}

/** The well-formed candidates of a description, in order. */
export function candidates(sdp: string): Candidate[] {
  const out: Candidate[] = [];
  for (const line of lines(sdp)) {
    const c = isCandidateLine(line) ? parseCandidate(line) : undefined;
    if (c) out.push(c);
  }
  return out;
}

/** Number of `a=candidate:` lines. */
export function countCandidates(sdp: string): number {
  return lines(sdp).filter(isCandidateLine).length;
}

/** Address families of a description's candidates (4, 6), ignoring mDNS names. */
export function candidateFamilies(sdp: string): Set<4 | 6> {
  const out = new Set<4 | 6>();
  for (const { address } of candidates(sdp)) {
    if (address.endsWith('.local')) continue;
    out.add(address.includes(':') ? 6 : 4);
  }
  return out;
}

/**
 * Is this side behind NAT, as its own description shows: a server-reflexive
 * candidate at an address none of its host candidates has. (A host with a
 * public address gets no separate server-reflexive candidate.)
 */
export function behindNat(sdp: string): boolean {
  const all = candidates(sdp);
  const hosts = new Set(all.filter((c) => c.type === 'host').map((c) => c.address));
  return all.some((c) => c.type === 'srflx' && !hosts.has(c.address));
}

/** Does the description offer a TURN relay of its side (a `relay` candidate)? */
export function hasRelayCandidate(sdp: string): boolean {
  return candidates(sdp).some((c) => c.type === 'relay');
}

/** Candidate addresses of a description as sorted "address port typ" strings (for comparing two descriptions). */
export function candidateAddresses(sdp: string): string[] {
  return candidates(sdp)
    .map((c) => `${c.address} ${c.port} ${c.type}`)
    .sort();
}

// ---------------------------------------------------------------------------
// Sections

/** One m-section: its m= line and the lines up to the next one. */
interface Section {
  /** The first word of the m= line: `audio`, `video`, `application`; '' when there is none. */
  media: string;
  mLine: string;
  lines: string[];
}

/** The m-sections of a description, in order (the session-level lines before the first are left out). */
function sections(sdp: string): Section[] {
  const out: Section[] = [];
  for (const line of lines(sdp)) {
    if (line.startsWith('m=')) out.push({ media: /^\S*/.exec(line.slice(2))![0], mLine: line, lines: [] });
    else out.at(-1)?.lines.push(line);
  }
  return out;
}

/** The mids of a description's m-sections in order, with their kinds ("video:0 application:2"). */
export function sectionMids(sdp: string): string {
  return sections(sdp)
    .map((s) => `${s.media || '?'}:${firstWord(s.lines, 'mid') ?? '?'}`)
    .join(' ');
}

/**
 * The one section of a data-channel-only description (`m=application ...
 * UDP/DTLS/SCTP webrtc-datachannel` with a mid): its mid and SCTP port.
 * Undefined when the description has any other section, or more than one.
 */
export function onlyDataSection(sdp: string): { mid: string; sctpPort: string } | undefined {
  const all = sections(sdp);
  if (all.length !== 1) return undefined;
  const [s] = all as [Section];
  const mid = firstWord(s.lines, 'mid');
  if (!/^m=application \d{1,5} UDP\/DTLS\/SCTP webrtc-datachannel$/.test(s.mLine) || mid === undefined) return undefined;
  return { mid, sctpPort: firstWord(s.lines, 'sctp-port') ?? '5000' };
}

// ---------------------------------------------------------------------------
// DTLS roles, ICE identity, fingerprints

export type DtlsSetup = 'actpass' | 'active' | 'passive' | 'holdconn';

const SETUPS = new Set<string>(['actpass', 'active', 'passive', 'holdconn']);

/** The `a=setup:` values of a description, in order (one per media section or session-level). */
export function dtlsSetups(sdp: string): DtlsSetup[] {
  return attributeValues(sdp, 'setup').filter((v): v is DtlsSetup => SETUPS.has(v));
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
  return editLines(offerSdp, (line) => (line === 'a=setup:actpass' ? 'a=setup:active' : line));
}

/** The `a=ice-ufrag`, `a=ice-pwd` and first `a=fingerprint` of a description. */
export function iceIdentity(sdp: string): { ufrag: string; pwd: string; fingerprint: string } | undefined {
  const ufrag = firstWord(sdp, 'ice-ufrag');
  const pwd = firstWord(sdp, 'ice-pwd');
  const fingerprint = attributeValues(sdp, 'fingerprint').find((v) => v !== '');
  return ufrag && pwd && fingerprint ? { ufrag, pwd, fingerprint } : undefined;
}

/** Every well-formed `a=fingerprint:<algorithm> <value>` of a description (session and media level), as written. */
export function fingerprintLines(sdp: string): Array<{ algorithm: string; value: string }> {
  const out: Array<{ algorithm: string; value: string }> = [];
  for (const v of attributeValues(sdp, 'fingerprint')) {
    const m = /^(\S+)[ \t]+(\S+)[ \t]*$/.exec(v);
    if (m) out.push({ algorithm: m[1]!, value: m[2]! });
  }
  return out;
}

/**
 * What a complete non-trickle description must carry before it goes near
 * libdatachannel, or the reason it does not (checked in this order).
 */
export function descriptionShapeProblem(sdp: string, type: 'offer' | 'answer'): string | undefined {
  if (typeof sdp !== 'string' || !sdp.startsWith('v=0')) return `the ${type} is not an SDP description (it does not start with v=0)`;
  if (!attributeValues(sdp, 'fingerprint').some((v) => /^\S+ \S+/.test(v))) return `the ${type} carries no DTLS fingerprint`;
  if (!firstWord(sdp, 'ice-ufrag') || !firstWord(sdp, 'ice-pwd')) return `the ${type} carries no ICE credentials`;
  if (!lines(sdp).some((line) => line.startsWith('m=application '))) return `the ${type} has no data channel section`;
  return undefined;
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

// ---------------------------------------------------------------------------
// Media sections (issue 5)

export type SdpMediaDirection = 'sendonly' | 'recvonly' | 'sendrecv' | 'inactive';

const DIRECTIONS = new Set<string>(['sendonly', 'recvonly', 'sendrecv', 'inactive']);

/** One m=audio or m=video section of a description, as far as peerdial uses it. */
export interface OfferedMedia {
  kind: 'audio' | 'video';
  mid: string;
  direction: SdpMediaDirection;
  /**
   * Payload type per codec name, lower-cased (`h264`, `opus`): the first one
   * of each name, except H264, where the best fit for peerdial's stream is
   * taken (packetization-mode=1, constrained baseline first; a browser
   * offers H264 in several profiles and both packetization modes).
   */
  payloadTypes: Record<string, number>;
  ssrcs: number[];
}

/** The audio and video sections of a description, in order. Data channel sections are left out. */
export function mediaSections(sdp: string): OfferedMedia[] {
  const out: OfferedMedia[] = [];
  for (const section of sections(sdp)) {
    const kind = section.media;
    if ((kind !== 'audio' && kind !== 'video') || !section.mLine.startsWith(`m=${kind} `)) continue;
    const mid = firstWord(section.lines, 'mid');
    if (mid === undefined) continue;
    const flag = section.lines.find((line) => line.startsWith('a=') && DIRECTIONS.has(line.slice(2)));
    const direction = (flag?.slice(2) ?? 'sendrecv') as SdpMediaDirection;
    const payloadTypes: Record<string, number> = {};
    const fmtp = formatParameters(section.lines);
    const h264Rank = new Map<number, number>();
    for (const v of attributeValues(section.lines, 'rtpmap')) {
      const r = /^(\d+) ([^/\s]+)\//.exec(v);
      if (!r) continue;
      const name = r[2]!.toLowerCase();
      const pt = Number(r[1]);
      if (name === 'h264') h264Rank.set(pt, h264Preference(fmtp.get(pt)));
      if (payloadTypes[name] === undefined) payloadTypes[name] = pt;
    }
    // a browser offers H264 several times: take the one a camera's stream plays in
    let best: number | undefined;
    for (const [pt, rank] of h264Rank) if (best === undefined || rank < h264Rank.get(best)!) best = pt;
    if (best !== undefined) payloadTypes['h264'] = best;
    const ssrcs = [...new Set(attributeValues(section.lines, 'ssrc').flatMap((v) => /^(\d+) /.exec(v)?.slice(1, 2) ?? []).map(Number))];
    out.push({ kind, mid, direction, payloadTypes, ssrcs });
  }
  return out;
}

/** `a=fmtp:<pt> k=v;k=v` of a section's lines: the parameters per payload type, names lower-cased. */
function formatParameters(sectionLines: readonly string[]): Map<number, Map<string, string>> {
  const out = new Map<number, Map<string, string>>();
  for (const v of attributeValues(sectionLines, 'fmtp')) {
    const m = /^(\d+) (.*)$/.exec(v);
    if (!m) continue;
    const params = new Map<string, string>();
    for (const part of m[2]!.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0) params.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
    }
    out.set(Number(m[1]), params);
  }
  return out;
}

/**
 * How well an H264 payload type fits what peerdial sends and receives
 * (lower is better): packetization-mode=1 (FU-A, what libdatachannel and
 * ffmpeg's RTP muxer use) with constrained baseline (profile-level-id
 * 42e0..), then baseline (4200..), then any packetization-mode=1, then the
 * rest (packetization-mode=0 cannot carry a frame larger than one packet).
 */
function h264Preference(params: Map<string, string> | undefined): number {
  const mode1 = params?.get('packetization-mode') === '1';
  const profile = (params?.get('profile-level-id') ?? '42e01f').toLowerCase();
  if (!mode1) return 3;
  if (profile.startsWith('42e0')) return 0;
  if (profile.startsWith('4200')) return 1;
  return 2;
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
