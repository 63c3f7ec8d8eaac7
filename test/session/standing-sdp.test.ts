/**
 * The descriptions of a one-mail call, pure: hitoshi's standing answer is
 * read from a description his side gathered; alice makes the answer to her
 * own data-channel offer from it, and that answer is one her session takes
 * (the callee as DTLS server, her offer's mid, hitoshi's credentials,
 * fingerprint and candidates). An offer with audio or video goes with two
 * mails.
 */
import { describe, expect, it } from 'vitest';
import { answerFromStanding, answerableByStanding, standingFromDescription } from '../../src/session/standing-sdp.js';
import { dtlsSetups, iceIdentity, sectionMids } from '../../src/session/sdp.js';
import { checkRemoteDescription } from '../../src/session/description-check.js';
import { validateStanding } from '../../src/wire/standing.js';

const FP = '82:5F:FF:82:CD:FF:8F:71:42:EA:EE:D3:05:8C:DA:B2:61:8F:75:AE:17:2D:A9:92:36:C9:5B:28:7D:37:A7:40';

/** What libdatachannel 0.24 writes for hitoshi's data-channel description (captured, addresses from documentation ranges). */
const HITOSHI_GATHERED = [
  'v=0',
  'o=rtc 1805347459 0 IN IP4 10.0.0.5',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0',
  'a=msid-semantic:WMS *',
  'a=ice-options:ice2,trickle',
  `a=fingerprint:sha-256 ${FP}`,
  'm=application 45495 UDP/DTLS/SCTP webrtc-datachannel',
  'c=IN IP4 10.0.0.5',
  'a=mid:0',
  'a=sendrecv',
  'a=sctp-port:5000',
  'a=max-message-size:262144',
  'a=setup:actpass',
  'a=ice-ufrag:Hs7q',
  'a=ice-pwd:r8Yv2kQp0sLm4nZx6cWb9tJd',
  'a=candidate:1 1 UDP 2114977791 10.0.0.5 45495 typ host',
  'a=candidate:2 1 UDP 1686052607 203.0.113.44 45495 typ srflx raddr 10.0.0.5 rport 45495',
  'a=end-of-candidates',
  '',
].join('\r\n');

/** Alice's data-channel offer as libdatachannel writes it. */
const ALICE_OFFER = HITOSHI_GATHERED.replaceAll('10.0.0.5', '192.168.1.23')
  .replace('203.0.113.44', '198.51.100.7')
  .replace('Hs7q', 'Kx3b')
  .replace('r8Yv2kQp0sLm4nZx6cWb9tJd', '9QmN5sYw2bXq0vTj7LrF4hEz')
  .replace(FP, FP.replace('82:5F', '11:22'));

const ALICE_AV_OFFER = ALICE_OFFER.replace('a=group:BUNDLE 0', 'a=group:BUNDLE 0 1') + ['m=audio 45495 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 192.168.1.23', 'a=mid:1', 'a=sendrecv', 'a=rtpmap:111 opus/48000/2', ''].join('\r\n');

describe('hitoshi keeps an answer standing', () => {
  it('what it promises is read from his gathered description, and is a valid standing answer', () => {
    const id = standingFromDescription(HITOSHI_GATHERED)!;
    expect(id).toEqual({
      iceUfrag: 'Hs7q',
      icePwd: 'r8Yv2kQp0sLm4nZx6cWb9tJd',
      fingerprint: FP,
      candidates: ['candidate:1 1 UDP 2114977791 10.0.0.5 45495 typ host', 'candidate:2 1 UDP 1686052607 203.0.113.44 45495 typ srflx raddr 10.0.0.5 rport 45495'],
    });
    const standing = { v: 1, id: 'st4nd1ng-answer-0001-hitoshi', from: 'hitoshi@example.test', to: 'alice@example.test', created: '2025-06-01T10:00:00.000Z', expires: '2025-06-01T11:00:00.000Z', ...id };
    expect(validateStanding(standing)).toEqual({ ok: true, standing });
  });

  it('a description without candidates promises nothing', () => {
    expect(standingFromDescription(HITOSHI_GATHERED.replace(/^a=candidate:.*\r\n/gm, ''))).toBeUndefined();
  });
});

describe('alice calls with it', () => {
  const standing = standingFromDescription(HITOSHI_GATHERED)!;

  it('the answer she makes for her data-channel offer is one her session takes: hitoshi is the DTLS server, her mid, his identity and candidates', () => {
    const answer = answerFromStanding(ALICE_OFFER, standing)!;
    const check = checkRemoteDescription(answer, 'answer', { loopback: false });
    expect(check.ok).toBe(true);
    expect(dtlsSetups(answer)).toEqual(['passive']);
    expect(sectionMids(answer)).toBe(sectionMids(ALICE_OFFER));
    expect(iceIdentity(answer)).toEqual({ ufrag: 'Hs7q', pwd: 'r8Yv2kQp0sLm4nZx6cWb9tJd', fingerprint: `sha-256 ${FP}` });
    expect(answer).toContain('a=candidate:2 1 UDP 1686052607 203.0.113.44 45495 typ srflx raddr 10.0.0.5 rport 45495\r\n');
    expect(answer).toContain('m=application 45495 UDP/DTLS/SCTP webrtc-datachannel\r\n');
  });

  it('an offer with audio goes with two mails: no answer is made from the standing one', () => {
    expect(answerableByStanding(ALICE_OFFER)).toBe(true);
    expect(answerableByStanding(ALICE_AV_OFFER)).toBe(false);
    expect(answerFromStanding(ALICE_AV_OFFER, standing)).toBeUndefined();
  });
});
