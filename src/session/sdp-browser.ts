/**
 * Descriptions a browser wrote (issue 13): a tab's RTCPeerConnection as one
 * end of a call. Chromium's complete description (after gathering) differs
 * from libdatachannel's in what libdatachannel cannot use:
 * - TCP candidates (`tcptype active`, port 9): libjuice speaks ICE over UDP only;
 * - mDNS host names (`<uuid>.local`), which Chromium writes instead of its
 *   addresses unless it runs with --disable-features=WebRtcHideLocalIpsWithMdns
 *   or the page holds a camera permission: libjuice does not resolve them;
 * - with the default bundle policy (`balanced`) every m-section gathers its
 *   own port, but the answer bundles them all on the first section's
 *   transport: the other sections' candidates lead nowhere;
 * - no `a=end-of-candidates`, though a non-trickle description is complete.
 * Everything else (extmap, msid, rtcp-rsize, ssrc-group, many codecs, mids
 * "0" "1" "2") libdatachannel takes as it is; the answer it writes names one
 * H264 payload type (see h264Preference) and opus, and Chromium takes that
 * and peerdial's offers as they are (fixtures/sdp/chromium-*.sdp).
 *
 * Built on session/sdp.ts (the one SDP grammar); no line grammar here.
 */
import { isIP } from 'node:net';
import { attributeValues, candidates, descriptionShapeProblem, isCandidateLine, isEndOfCandidates, lines, mediaSections, parseCandidate, type Candidate } from './sdp.js';

/** Can libdatachannel (libjuice) use this candidate: UDP, to an IP address? */
function usableByPeerdial(c: Candidate): boolean {
  if (c.transport.toLowerCase() !== 'udp') return false;
  return isIP(c.address) !== 0;
}

/**
 * A browser's complete description made fit for peerdial (and for the mail):
 * only UDP candidates to IP addresses, and with BUNDLE only the first
 * section's, each section that keeps candidates closed with
 * `a=end-of-candidates`. Line ends are kept.
 */
export function fromBrowser(sdp: string): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const all = lines(sdp);
  const trailing = all.at(-1) === '';
  if (trailing) all.pop();
  const bundled = attributeValues(all, 'group').some((v) => v.startsWith('BUNDLE '));
  const out: string[] = [];
  let section = -1;
  let kept = 0;
  const close = () => {
    if (section >= 0 && kept > 0) out.push('a=end-of-candidates');
  };
  for (const line of all) {
    if (line.startsWith('m=')) {
      close();
      section++;
      kept = 0;
    } else if (isCandidateLine(line)) {
      const c = parseCandidate(line);
      if (!c || !usableByPeerdial(c) || (bundled && section > 0)) continue;
      kept++;
    } else if (isEndOfCandidates(line)) continue;
    out.push(line);
  }
  close();
  return out.join(eol) + (trailing ? eol : '');
}

/**
 * What keeps a browser's description from being one end of a peerdial
 * call, or undefined: the shape every description needs (a data channel
 * section for the control channel, ICE credentials, a fingerprint), and at
 * least one candidate peerdial can use once fromBrowser() has kept them.
 */
export function browserDescriptionProblem(sdp: string, type: 'offer' | 'answer'): string | undefined {
  const shape = descriptionShapeProblem(sdp, type);
  if (shape) {
    return shape.endsWith('no data channel section')
      ? `${shape}: the tab must open a data channel (label "control") before it makes its ${type}`
      : shape;
  }
  if (candidates(fromBrowser(sdp)).length === 0) {
    const mdns = candidates(sdp).some((c) => c.address.endsWith('.local'));
    return mdns
      ? `the ${type} names its addresses only by mDNS (.local) names, which peerdial does not resolve: start the browser with --disable-features=WebRtcHideLocalIpsWithMdns`
      : `the ${type} carries no UDP candidate with an IP address (was it taken before gathering completed?)`;
  }
  return undefined;
}

/** Which media a description's audio/video sections carry (sections not `inactive`), and whether this side sends any. */
export function mediaSummary(sdp: string): { video: boolean; audio: boolean; sends: boolean } {
  const live = mediaSections(sdp).filter((s) => s.direction !== 'inactive');
  return {
    video: live.some((s) => s.kind === 'video'),
    audio: live.some((s) => s.kind === 'audio'),
    sends: live.some((s) => s.direction === 'sendonly' || s.direction === 'sendrecv'),
  };
}
