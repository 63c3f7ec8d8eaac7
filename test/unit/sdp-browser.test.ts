/**
 * The SDP module (src/session/sdp.ts) on descriptions a real Chromium wrote
 * (fixtures/sdp/chromium-*.sdp, captured from Debian's Chromium 156.0.8078.114 built on Debian GNU/Linux 12 (bookworm) in a
 * network namespace with one address, 198.18.9.1):
 * - chromium-offer.sdp: a tab that views a camera (video and audio
 *   recvonly, a "control" data channel, default bundle policy);
 * - chromium-answer.sdp: a tab with a fake camera answering peerdial's
 *   media offer (fixtures/sdp/offer-media.sdp with its sections sendrecv).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  attributeValues,
  candidates,
  descriptionShapeProblem,
  dtlsSetups,
  editLines,
  forceOffererDtlsClient,
  iceIdentity,
  mediaSections,
  sectionMids,
} from '../../src/session/sdp.js';
import { browserDescriptionProblem, fromBrowser, mediaSummary } from '../../src/session/sdp-browser.js';
import { planAnswer } from '../../src/session/tracks.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const fixture = (name: string): string => readFileSync(path.join(root, 'fixtures/sdp', name), 'latin1');

const chromiumOffer = fixture('chromium-offer.sdp');
const chromiumAnswer = fixture('chromium-answer.sdp');
const peerdialOffer = fixture('offer-media.sdp');

describe("Chromium's offer (a tab viewing a camera)", () => {
  it('is what a browser writes: three sections with their own ports, TCP candidates, no end-of-candidates, actpass', () => {
    expect(sectionMids(chromiumOffer)).toBe('video:0 audio:1 application:2');
    expect(attributeValues(chromiumOffer, 'group')).toEqual(['BUNDLE 0 1 2']);
    const all = candidates(chromiumOffer);
    expect(all.filter((c) => c.transport === 'tcp').length).toBe(3);
    expect(new Set(all.filter((c) => c.transport === 'udp').map((c) => c.port)).size).toBe(3);
    expect(chromiumOffer).not.toContain('a=end-of-candidates');
    expect(dtlsSetups(chromiumOffer)).toEqual(['actpass', 'actpass', 'actpass']);
    expect(attributeValues(chromiumOffer, 'extmap').length).toBeGreaterThan(0);
  });

  it('its H264 is the packetization-mode=1 constrained-baseline payload type, not the first one offered', () => {
    const video = mediaSections(chromiumOffer).find((s) => s.kind === 'video')!;
    const h264 = attributeValues(chromiumOffer, 'rtpmap').filter((v) => v.includes(' H264/'));
    expect(h264.length).toBeGreaterThan(4);
    const first = Number(h264[0]!.split(' ')[0]);
    expect(video.payloadTypes['h264']).not.toBe(first);
    expect(attributeValues(chromiumOffer, 'fmtp')).toContain(`${video.payloadTypes['h264']} level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f`);
    expect(video.direction).toBe('recvonly');
    expect(mediaSections(chromiumOffer).find((s) => s.kind === 'audio')!.payloadTypes['opus']).toBe(111);
    // the camera node answers with that payload type
    const plans = planAnswer(chromiumOffer, { video: { direction: 'sendonly' }, audio: { direction: 'sendonly' } });
    expect(plans.map((p) => `${p.kind} ${p.mid} ${p.direction} ${p.payloadType}`)).toEqual([
      `video 0 sendonly ${video.payloadTypes['h264']}`,
      'audio 1 sendonly 111',
    ]);
  });

  it('made fit for peerdial: only the first bundled section keeps candidates, UDP ones, closed by end-of-candidates', () => {
    const fit = fromBrowser(chromiumOffer);
    const kept = candidates(fit);
    expect(kept.length).toBe(1);
    expect(kept[0]).toMatchObject({ transport: 'udp', address: '198.18.9.1', type: 'host' });
    expect(kept[0]!.port).toBe(candidates(chromiumOffer)[0]!.port);
    expect(fit.split('\r\n').filter((l) => l === 'a=end-of-candidates')).toHaveLength(1);
    expect(fit.split('\n').every((l) => l === '' || l.endsWith('\r'))).toBe(true);
    // nothing else changed
    const strip = (sdp: string) => sdp.split('\r\n').filter((l) => !l.startsWith('a=candidate:') && l !== 'a=end-of-candidates');
    expect(strip(fit)).toEqual(strip(chromiumOffer));
    expect(iceIdentity(fit)).toEqual(iceIdentity(chromiumOffer));
    expect(fromBrowser(fit)).toBe(fit);
    // and it is mailed with the offerer as the DTLS client, like peerdial's own
    expect(dtlsSetups(forceOffererDtlsClient(fit))).toEqual(['active', 'active', 'active']);
    expect(browserDescriptionProblem(chromiumOffer, 'offer')).toBeUndefined();
  });

  it('what it carries: video and audio, receiving only (a viewer)', () => {
    expect(mediaSummary(chromiumOffer)).toEqual({ video: true, audio: true, sends: false });
  });

  it('mDNS names only, no data channel, no candidates at all: each refused with what to do', () => {
    const mdns = editLines(chromiumOffer, (l) => (l.startsWith('a=candidate:') ? l.replace('198.18.9.1', '2b1d9a0e-7f55-4c1c-9a3e-35d1e4b1f0aa.local') : l));
    expect(candidates(mdns).length).toBe(6);
    expect(browserDescriptionProblem(mdns, 'offer')).toMatch(/mDNS .*WebRtcHideLocalIpsWithMdns/);
    let section = '';
    const noData = editLines(chromiumOffer, (l) => {
      if (l.startsWith('m=')) section = l;
      return section.startsWith('m=application') ? undefined : l;
    });
    expect(descriptionShapeProblem(noData, 'offer')).toBe('the offer has no data channel section');
    expect(browserDescriptionProblem(noData, 'offer')).toMatch(/the tab must open a data channel \(label "control"\)/);
    const none = editLines(chromiumOffer, (l) => (l.startsWith('a=candidate:') ? undefined : l));
    expect(browserDescriptionProblem(none, 'offer')).toMatch(/no UDP candidate/);
  });
});

describe("Chromium's answer to peerdial's media offer (a tab sending its camera)", () => {
  it('keeps peerdial\'s mids and payload types, answers passive, and bundles on the first section', () => {
    expect(sectionMids(chromiumAnswer)).toBe(sectionMids(peerdialOffer));
    expect(attributeValues(chromiumAnswer, 'group')).toEqual(['BUNDLE video audio 0']);
    expect(dtlsSetups(chromiumAnswer)).toEqual(['passive', 'passive', 'passive']);
    const media = mediaSections(chromiumAnswer);
    expect(media.map((s) => `${s.kind} ${s.direction} ${s.payloadTypes[s.kind === 'video' ? 'h264' : 'opus']} ${s.ssrcs.length}`)).toEqual(['video sendrecv 96 1', 'audio sendrecv 111 1']);
    expect(mediaSummary(chromiumAnswer)).toEqual({ video: true, audio: true, sends: true });
  });

  it('made fit for peerdial: its UDP candidate, end-of-candidates, and nothing to refuse', () => {
    const fit = fromBrowser(chromiumAnswer);
    expect(candidates(fit).map((c) => `${c.transport} ${c.address}`)).toEqual(['udp 198.18.9.1']);
    expect(fit).toContain('a=end-of-candidates');
    expect(browserDescriptionProblem(chromiumAnswer, 'answer')).toBeUndefined();
    expect(descriptionShapeProblem(fit, 'answer')).toBeUndefined();
  });
});
