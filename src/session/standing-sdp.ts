/**
 * Pure SDP for one-mail calls (wire/standing.ts): read what a standing
 * answer promises from the callee's own gathered description, and make
 * the answer description a caller applies from a standing answer. No
 * native code, no I/O.
 *
 * Only a data-channel call goes with one mail: an offer with audio or
 * video sections needs the callee's tracks and directions in its answer,
 * which a standing answer cannot know, so it goes with two mails.
 */
import { candidateLine, candidates as candidatesOf, fingerprintLines, forceOffererDtlsClient, iceIdentity, onlyDataSection, parseCandidate } from './sdp.js';

/** What a standing answer promises: the callee's ICE credentials, certificate fingerprint and candidates. */
export interface StandingIdentity {
  iceUfrag: string;
  icePwd: string;
  /** SHA-256, upper-case hex pairs with colons (no algorithm name). */
  fingerprint: string;
  /** `candidate:...` attribute values, without `a=`. */
  candidates: string[];
}

/** Read a standing answer's identity from a gathered description (SHA-256 fingerprints only). */
export function standingFromDescription(sdp: string): StandingIdentity | undefined {
  const id = iceIdentity(sdp);
  const fp = fingerprintLines(sdp).find((f) => f.algorithm.toLowerCase() === 'sha-256' && /^(?:[0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/.test(f.value))?.value;
  if (!id || !fp) return undefined;
  const candidates = candidatesOf(sdp).map((c) => candidateLine(c).slice('a='.length));
  if (candidates.length === 0) return undefined;
  return { iceUfrag: id.ufrag, icePwd: id.pwd, fingerprint: fp.toUpperCase(), candidates };
}

/** Is this offer one a standing answer can answer: exactly one section, a data channel's? */
export function answerableByStanding(offerSdp: string): boolean {
  return onlyDataSection(offerSdp) !== undefined;
}

/** First candidate's address and port, for the `c=` and `m=` lines (ICE ignores them; they must be well-formed). */
function defaultAddress(candidates: string[]): { ip: string; port: number } {
  const c = parseCandidate(candidates[0] ?? '');
  return c ? { ip: c.address, port: c.port } : { ip: '0.0.0.0', port: 9 };
}

/**
 * The answer description for `offerSdp` from a standing answer: the same
 * shape libdatachannel writes for a data-channel answer, with the callee as
 * DTLS server (the offer goes out as `a=setup:active`). Undefined when the
 * offer is not answerable by a standing answer (media sections).
 */
export function answerFromStanding(offerSdp: string, s: StandingIdentity): string | undefined {
  if (!answerableByStanding(offerSdp)) return undefined;
  const { mid, sctpPort } = onlyDataSection(forceOffererDtlsClient(offerSdp))!;
  const { ip, port } = defaultAddress(s.candidates);
  const family = ip.includes(':') ? 'IP6' : 'IP4';
  const lines = [
    'v=0',
    `o=rtc ${standingSessionId(s)} 0 IN ${family} ${ip}`,
    's=-',
    't=0 0',
    `a=group:BUNDLE ${mid}`,
    'a=msid-semantic:WMS *',
    'a=ice-options:ice2',
    `a=fingerprint:sha-256 ${s.fingerprint}`,
    `m=application ${port} UDP/DTLS/SCTP webrtc-datachannel`,
    `c=IN ${family} ${ip}`,
    `a=mid:${mid}`,
    'a=sendrecv',
    `a=sctp-port:${sctpPort}`,
    'a=max-message-size:262144',
    'a=setup:passive',
    `a=ice-ufrag:${s.iceUfrag}`,
    `a=ice-pwd:${s.icePwd}`,
    ...s.candidates.map((c) => `a=${c}`),
    'a=end-of-candidates',
    '',
  ];
  return lines.join('\r\n');
}

/** A stable number for the `o=` line, from the credentials (SDP wants digits; no randomness in a pure module). */
function standingSessionId(s: StandingIdentity): string {
  let h = 0;
  for (const ch of s.iceUfrag + s.icePwd) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return String(h || 1);
}
