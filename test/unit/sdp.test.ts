/**
 * The one SDP module (src/session/sdp.ts) on descriptions node-datachannel
 * wrote: a data-only call and a camera call on loopback, offer and answer,
 * as mailed (fixtures/sdp/, CRLF line ends as libdatachannel writes them).
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { addMappedCandidate } from '../../src/agent/mapped-ice.js';
import { addressesFromSdp } from '../../src/agent/sdp-addresses.js';
import { candidateProblem, filterCandidates } from '../../src/session/candidates.js';
import { checkRemoteDescription } from '../../src/session/description-check.js';
import { descriptionFingerprints } from '../../src/session/fingerprint.js';
import {
  attributeValues,
  candidateAddresses,
  candidateFamilies,
  candidateLine,
  candidates,
  countCandidates,
  descriptionShapeProblem,
  dtlsSetups,
  editLines,
  fingerprintLines,
  forceOffererDtlsClient,
  iceIdentity,
  mediaSections,
  noCommonFamily,
  parseCandidate,
  sectionMids,
} from '../../src/session/sdp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = path.join(root, 'fixtures/sdp');
const fixture = (name: string): string => readFileSync(path.join(dir, name), 'latin1');

const offerData = fixture('offer-data.sdp');
const answerData = fixture('answer-data.sdp');
const offerMedia = fixture('offer-media.sdp');
const answerMedia = fixture('answer-media.sdp');

/** The one line of a fixture that starts so, without its line end. */
const lineOf = (sdp: string, start: string): string => {
  const found = sdp.split('\r\n').filter((l) => l.startsWith(start));
  expect(found).toHaveLength(1);
  return found[0]!;
};

describe('the SDP module reads what node-datachannel wrote', () => {
  it('the fixtures are CRLF descriptions with one loopback host candidate each', () => {
    for (const sdp of [offerData, answerData, offerMedia, answerMedia]) {
      expect(sdp.startsWith('v=0\r\n')).toBe(true);
      expect(sdp.split('\n').every((l) => l === '' || l.endsWith('\r'))).toBe(true);
      expect(countCandidates(sdp)).toBe(1);
    }
  });

  it("a candidate line: every field, and the same line written back", () => {
    const line = lineOf(offerData, 'a=candidate:');
    const c = parseCandidate(line)!;
    expect(c).toMatchObject({ foundation: '1', component: 1, transport: 'UDP', priority: 2114977791, address: '127.0.0.1', type: 'host', rest: '' });
    expect(line).toBe(`a=candidate:1 1 UDP 2114977791 127.0.0.1 ${c.port} typ host`);
    expect(c.port).toBeGreaterThanOrEqual(1024);
    expect(candidateLine(c)).toBe(line);
    expect(candidates(offerData)).toEqual([c]);
    expect(candidateAddresses(offerData)).toEqual([`127.0.0.1 ${c.port} host`]);
    expect([...candidateFamilies(offerData)]).toEqual([4]);
  });

  it('a trickled candidate, a server-reflexive one with its base, and lines that are not candidates', () => {
    const srflx = 'a=candidate:2 1 UDP 1686052607 198.51.100.7 40000 typ srflx raddr 0.0.0.0 rport 0';
    expect(parseCandidate(srflx)).toEqual({
      foundation: '2', component: 1, transport: 'UDP', priority: 1686052607, address: '198.51.100.7', port: 40000, type: 'srflx', rest: 'raddr 0.0.0.0 rport 0',
    });
    expect(candidateLine(parseCandidate(srflx)!)).toBe(srflx);
    expect(parseCandidate('candidate:1 1 UDP 2114977791 127.0.0.1 5000 typ host\r')?.address).toBe('127.0.0.1');
    expect(parseCandidate(`a=candidate:${'f'.repeat(33)} 1 UDP 1 127.0.0.1 5000 typ host`)).toBeUndefined();
    expect(parseCandidate('a=candidate:1 1 UDP 1 127.0.0.1 5000 host')).toBeUndefined();
    expect(parseCandidate('a=end-of-candidates')).toBeUndefined();
  });

  it('the ICE identity, the DTLS roles and the fingerprint of an offer and its answer', () => {
    const offer = iceIdentity(offerData)!;
    expect(offer.ufrag).toBe(lineOf(offerData, 'a=ice-ufrag:').slice('a=ice-ufrag:'.length));
    expect(offer.pwd).toBe(lineOf(offerData, 'a=ice-pwd:').slice('a=ice-pwd:'.length));
    expect(offer.fingerprint).toMatch(/^sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(iceIdentity(answerData)!.fingerprint).not.toBe(offer.fingerprint);
    // as mailed: the offerer is the DTLS client, the answerer the server
    expect(dtlsSetups(offerData)).toEqual(['active']);
    expect(dtlsSetups(answerData)).toEqual(['passive']);
    expect(dtlsSetups(offerMedia)).toEqual(['active', 'active', 'active']);
    const [algorithm, value] = offer.fingerprint.split(' ');
    expect(fingerprintLines(offerData)).toEqual([{ algorithm, value }]);
    expect(descriptionFingerprints(offerData)).toEqual([{ algorithm: 'sha-256', hex: value!.replace(/:/g, '') }]);
  });

  it('the sections of a camera call: mids, kinds, directions, codecs and the sender SSRCs', () => {
    expect(sectionMids(offerData)).toBe('application:0');
    expect(sectionMids(offerMedia)).toBe('video:video audio:audio application:0');
    expect(sectionMids(answerMedia)).toBe(sectionMids(offerMedia));
    expect(mediaSections(offerData)).toEqual([]);
    expect(mediaSections(offerMedia)).toEqual([
      { kind: 'video', mid: 'video', direction: 'recvonly', payloadTypes: { h264: 96 }, ssrcs: [] },
      { kind: 'audio', mid: 'audio', direction: 'recvonly', payloadTypes: { opus: 111 }, ssrcs: [] },
    ]);
    const answer = mediaSections(answerMedia);
    expect(answer.map((s) => [s.kind, s.direction, s.payloadTypes])).toEqual([
      ['video', 'sendonly', { h264: 96 }],
      ['audio', 'sendonly', { opus: 111 }],
    ]);
    for (const s of answer) {
      // "a=ssrc:<ssrc> msid:peerdial peerdial-video": the sender's SSRC of that kind
      const msid = attributeValues(answerMedia, 'ssrc').find((v) => v.endsWith(` msid:peerdial peerdial-${s.kind}`))!;
      expect(s.ssrcs).toEqual([Number(msid.split(' ')[0])]);
      expect(s.ssrcs[0]).toBeGreaterThan(0);
    }
  });
});

describe('the SDP module edits descriptions and keeps their line ends', () => {
  it('libdatachannel writes actpass; the offer as mailed says active, and nothing else changed', () => {
    const written = offerMedia.replaceAll('a=setup:active', 'a=setup:actpass');
    expect(dtlsSetups(written)).toEqual(['actpass', 'actpass', 'actpass']);
    expect(forceOffererDtlsClient(written)).toBe(offerMedia);
    // an answer's passive is left alone
    expect(forceOffererDtlsClient(answerMedia)).toBe(answerMedia);
  });

  it('lines dropped, replaced and put in take the line end of their place', () => {
    const edited = editLines(answerData, (line) => (line.startsWith('a=candidate:') ? undefined : line === 'a=end-of-candidates' ? ['a=x', line] : line));
    expect(countCandidates(edited)).toBe(0);
    expect(edited).toContain('\r\na=x\r\na=end-of-candidates\r\n');
    expect(edited.length).toBe(answerData.length - lineOf(answerData, 'a=candidate:').length - 2 + 'a=x\r\n'.length);
    expect(editLines(answerData, (line) => line)).toBe(answerData);
    const lf = answerData.replaceAll('\r\n', '\n');
    expect(editLines(lf, (line) => line)).toBe(lf);
  });

  it('a router mapping becomes a server-reflexive candidate before the end of the candidates', () => {
    const port = parseCandidate(lineOf(offerMedia, 'a=candidate:'))!.port;
    const mapped = addMappedCandidate(offerMedia, { externalHost: '198.51.100.7', externalPort: 40000, internalHost: '127.0.0.1', internalPort: port });
    expect(countCandidates(mapped)).toBe(2);
    expect(mapped).toContain(`\r\na=candidate:pdmap 1 UDP 1694498815 198.51.100.7 40000 typ srflx raddr 127.0.0.1 rport ${port}\r\na=end-of-candidates\r\n`);
    expect(candidateAddresses(mapped)).toEqual([`127.0.0.1 ${port} host`, '198.51.100.7 40000 srflx']);
    // once is enough
    expect(addMappedCandidate(mapped, { externalHost: '198.51.100.7', externalPort: 40000, internalHost: '127.0.0.1', internalPort: port })).toBe(mapped);
  });
});

describe('what the rest of peerdial asks of a description, through the module', () => {
  it("the answer's candidates are the addresses mailed with it", () => {
    const port = parseCandidate(lineOf(answerData, 'a=candidate:'))!.port;
    expect(addressesFromSdp(answerData)).toEqual([{ ip: '127.0.0.1', port, source: 'interface', scope: 'loopback' }]);
  });

  it('a mailed answer is checked: usable on a loopback-only side, refused with the reason elsewhere', () => {
    const loopback = checkRemoteDescription(answerData, 'answer', { loopback: true });
    expect(loopback).toEqual({ ok: true, sdp: answerData, dropped: [] });
    const strict = checkRemoteDescription(answerData, 'answer');
    expect(strict.ok).toBe(false);
    expect(strict.ok ? '' : strict.reason).toMatch(/^the answer names no usable candidate: dropped 127\.0\.0\.1 \(/);
    expect(candidateProblem(lineOf(answerData, 'a=candidate:'), { loopback: true })).toBeUndefined();
    expect(filterCandidates(answerData, { loopback: false })).toMatchObject({ kept: 0, sdp: answerData.replace(`${lineOf(answerData, 'a=candidate:')}\r\n`, '') });
  });

  it('a description missing what a call needs is refused, the first missing thing named', () => {
    const without = (sdp: string, start: string) => editLines(sdp, (line) => (line.startsWith(start) ? undefined : line));
    expect(descriptionShapeProblem(offerMedia, 'offer')).toBeUndefined();
    expect(descriptionShapeProblem(offerMedia.slice(5), 'offer')).toBe('the offer is not an SDP description (it does not start with v=0)');
    expect(descriptionShapeProblem(without(offerMedia, 'a=fingerprint:'), 'offer')).toBe('the offer carries no DTLS fingerprint');
    expect(descriptionShapeProblem(without(answerMedia, 'a=ice-pwd:'), 'answer')).toBe('the answer carries no ICE credentials');
    expect(descriptionShapeProblem(without(answerMedia, 'm=application'), 'answer')).toBe('the answer has no data channel section');
  });

  it('an IPv4 side and an IPv6 side have no path; two IPv4 sides may', () => {
    const v6 = editLines(answerData, (line) => (line.startsWith('a=candidate:') ? line.replace('127.0.0.1', '2001:db8::7') : line));
    expect([...candidateFamilies(v6)]).toEqual([6]);
    expect(noCommonFamily(offerData, v6)).toBe('this side has only IPv4 addresses and the peer only IPv6: there is no direct path');
    expect(noCommonFamily(offerData, answerData)).toBeUndefined();
  });
});

describe('one SDP module', () => {
  it('no other file of src/ carries an SDP or candidate grammar of its own', () => {
    // regular expressions anchored on an SDP line (/^a=..., /^m=...) or spelling out a candidate's fields
    const grammar = /\/\^(?:\(\?:)?[am]=|candidate:\\S|typ \(\\S/;
    const found: string[] = [];
    const files = (folder: string): string[] =>
      readdirSync(path.join(root, folder), { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? files(path.join(folder, e.name)) : e.name.endsWith('.ts') ? [path.join(folder, e.name)] : [],
      );
    for (const file of files('src')) {
      if (file === path.join('src', 'session', 'sdp.ts')) continue;
      readFileSync(path.join(root, file), 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (grammar.test(line)) found.push(`${file}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(found).toEqual([]);
    // and the module itself does carry them (the check can fail)
    expect(grammar.test(readFileSync(path.join(root, 'src/session/sdp.ts'), 'utf8'))).toBe(true);
  });
});

describe('behindNat: does an offer show its side behind NAT (a relay of its own is then worth keeping)', () => {
  const offer = (...cands: string[]) => ['v=0', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', ...cands.map((c) => `a=candidate:${c}`), ''].join('\r\n');
  it('a server-reflexive address no host candidate has: behind NAT', async () => {
    const { behindNat } = await import('../../src/session/sdp.js');
    expect(behindNat(offer('1 1 UDP 2114977791 10.0.4.2 40255 typ host', '2 1 UDP 1678769919 198.18.0.14 40255 typ srflx raddr 0.0.0.0 rport 0', '3 1 UDP 1048063 198.18.0.2 57117 typ relay raddr 0.0.0.0 rport 0'))).toBe(true);
  });
  it('a public host (no separate reflexive address), or no reflexive candidate at all: not known to be', async () => {
    const { behindNat } = await import('../../src/session/sdp.js');
    expect(behindNat(offer('1 1 UDP 2114977791 198.18.0.11 40255 typ host', '3 1 UDP 1048063 198.18.0.2 57117 typ relay raddr 0.0.0.0 rport 0'))).toBe(false);
    expect(behindNat(offer('1 1 UDP 2114977791 198.18.0.11 40255 typ host', '2 1 UDP 1678769919 198.18.0.11 40255 typ srflx raddr 0.0.0.0 rport 0'))).toBe(false);
    expect(behindNat(offer('1 1 UDP 2114977791 127.0.0.1 40255 typ host'))).toBe(false);
  });
});
