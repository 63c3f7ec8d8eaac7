/**
 * The peer's description does not steer our packets: candidates that are
 * names, loopback (unless this side is loopback-only), link-local, multicast,
 * unspecified, broadcast or reserved addresses are taken out before
 * libdatachannel sees the description, so nothing is resolved and nothing is
 * sent there.
 *
 * The sessions run in this process on 127.0.0.1; a decoy UDP socket on
 * loopback stands where the hostile candidates point and counts what reaches
 * it. A hostname candidate names "localhost" (answered from /etc/hosts with
 * 127.0.0.1, no DNS server involved): were it resolved, the STUN checks would
 * land on the decoy, as they did before the policy.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session, shutdownSessions, type IceConfig, type SessionProgress } from '../../src/session/index.js';
import { MAX_REMOTE_CANDIDATES, candidateProblem, filterCandidates } from '../../src/session/candidates.js';
import { checkRemoteDescription } from '../../src/session/description-check.js';
import { isLoopbackOnly, peerIpProblem } from '../../src/wire/peer-ip.js';
import { validateMessage } from '../../src/wire/validate.js';

const loopbackOnly: IceConfig = { iceServers: [], bindAddress: '127.0.0.1' };

let decoy: Socket;
let decoyPort: number;
const reachedDecoy: string[] = [];

beforeAll(async () => {
  decoy = createSocket('udp4');
  decoy.on('message', (msg, from) => reachedDecoy.push(`${from.address}:${from.port} ${msg.length} bytes`));
  await new Promise<void>((r) => decoy.bind(0, '127.0.0.1', r));
  decoyPort = decoy.address().port;
});

afterAll(() => {
  shutdownSessions();
  decoy?.close();
});

const line = (n: number, address: string, port: number, extra = 'typ host') => `a=candidate:${n} 1 UDP ${2130706431 - n} ${address} ${port} ${extra}`;

/** The description with its own candidates replaced by (or, with keep, followed by) `lines`. */
function withCandidates(sdp: string, lines: string[], keep: boolean): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const own = sdp.split(eol).filter((l) => l.startsWith('a=candidate:'));
  const rest = sdp.split(eol).filter((l) => !l.startsWith('a=candidate:'));
  // candidates go right after the data channel's a=mid line, where libdatachannel wrote its own
  const at = rest.findIndex((l) => l.startsWith('a=mid:')) + 1;
  rest.splice(at, 0, ...lines, ...(keep ? own : []));
  return rest.join(eol);
}

/** Hostile candidates that all point at the decoy, one of each kind. */
function hostileLines(port: number): string[] {
  return [
    line(1, 'localhost', port),
    line(2, '169.254.10.10', port),
    line(3, '224.0.0.1', port),
    line(4, '0.0.0.0', port),
    line(5, '255.255.255.255', port),
    line(6, '::ffff:127.0.0.1', port),
    line(7, 'fe80::1', port),
    line(8, 'ff02::1', port),
  ];
}

describe('which addresses a peer may make us send to', () => {
  it.each([
    ['localhost', 'a hostname'],
    ['alice.local', 'a hostname'],
    ['xn--r8jz45g.jp', 'a hostname'],
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['::1', 'loopback'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'zone index'],
    ['224.0.0.251', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::fb', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['0.1.2.3', 'reserved'],
    ['::ffff:127.0.0.1', 'IPv4-mapped'],
    ['::ffff:10.0.0.1', 'IPv4-mapped'],
    ['::127.0.0.1', 'IPv4-compatible'],
    ['64:ff9b::7f00:1', 'reserved'],
    ['2002:7f00:1::1', '6to4 address that wraps loopback'],
    ['2002:a9fe:101::1', '6to4 address that wraps link-local'],
    ['127.000.000.001', 'a hostname'],
  ])('%s is refused (%s)', (ip, why) => {
    expect(peerIpProblem(ip, { loopback: false })).toContain(why);
  });

  it.each(['10.1.2.3', '172.16.0.2', '192.168.1.20', '100.64.1.1', '198.18.0.2', '203.0.113.7', '8.8.4.4', '2001:db8::2', 'fd00::2', '2a00:1450::1', '2002:c000:201::1'])(
    '%s is allowed (private ranges, CGNAT, labs and the internet)',
    (ip) => {
      expect(peerIpProblem(ip, { loopback: false })).toBeUndefined();
    },
  );

  it('loopback is allowed only when this side itself binds to loopback', () => {
    expect(isLoopbackOnly('127.0.0.1')).toBe(true);
    expect(isLoopbackOnly('::1')).toBe(true);
    expect(isLoopbackOnly(undefined)).toBe(false);
    expect(isLoopbackOnly('10.0.0.2')).toBe(false);
    expect(isLoopbackOnly('0.0.0.0')).toBe(false);
    expect(peerIpProblem('127.0.0.1', { loopback: true })).toBeUndefined();
    // loopback-only still refuses everything else
    expect(peerIpProblem('localhost', { loopback: true })).toContain('hostname');
    expect(peerIpProblem('169.254.1.1', { loopback: true })).toBe('link-local');
  });

  it('a candidate line is refused for its transport, type and port too', () => {
    const p = { loopback: false };
    expect(candidateProblem('a=candidate:1 1 TCP 1 192.0.2.1 9 typ host tcptype active', p)?.reason).toMatch(/transport TCP/);
    expect(candidateProblem('a=candidate:1 1 UDP 1 192.0.2.1 53 typ host', p)?.reason).toMatch(/port 53/);
    expect(candidateProblem('a=candidate:1 1 UDP 1 192.0.2.1 5000 typ magic', p)?.reason).toMatch(/unknown candidate type/);
    expect(candidateProblem('a=candidate:garbage', p)?.reason).toMatch(/not a candidate line/);
    expect(candidateProblem('a=candidate:1 1 UDP 1 192.0.2.1 5000 typ srflx raddr 0.0.0.0 rport 0', p)).toBeUndefined();
  });

  it(`at most ${MAX_REMOTE_CANDIDATES} candidates of one description are used`, () => {
    const many = ['v=0', ...Array.from({ length: 100 }, (_, i) => line(i, `192.0.2.${i + 1}`, 5000 + i)), 'a=end-of-candidates'].join('\r\n');
    const f = filterCandidates(many, { loopback: false });
    expect(f.kept).toBe(MAX_REMOTE_CANDIDATES);
    expect(f.dropped).toHaveLength(100 - MAX_REMOTE_CANDIDATES);
    expect(f.sdp.match(/^a=candidate:/gm)).toHaveLength(MAX_REMOTE_CANDIDATES);
    expect(f.sdp.endsWith('a=end-of-candidates')).toBe(true);
  });

  it('an announce naming loopback, link-local or multicast addresses is refused by the wire check; an offer may list its loopback', () => {
    const base = {
      v: 1, from: 'alice@example.test', to: 'hitoshi@example.test', callId: 'c'.repeat(16), nonce: 'n'.repeat(16),
      created: '2026-01-01T00:00:00.000Z', expires: '2026-01-02T00:00:00.000Z',
    };
    const announce = (ip: string) => validateMessage({ ...base, kind: 'announce', addresses: [{ ip, source: 'interface', scope: 'public' }] });
    for (const ip of ['127.0.0.1', '169.254.1.1', 'fe80::1', '224.0.0.1', '0.0.0.0', '::ffff:192.0.2.1']) {
      expect(announce(ip), ip).toMatchObject({ ok: false, detail: expect.stringMatching(/^addresses\[0\]\.ip is /) });
    }
    expect(announce('192.0.2.1').ok).toBe(true);
    const sdp = 'v=0\r\na=fingerprint:sha-256 AA\r\n';
    const offer = (ip: string) => validateMessage({ ...base, kind: 'offer', sdp, addresses: [{ ip, port: 5000, source: 'interface', scope: 'loopback' }] });
    expect(offer('127.0.0.1').ok).toBe(true);
    expect(offer('169.254.1.1').ok).toBe(false);
  });
});

describe('alice mails hitoshi an offer whose candidates point at a decoy', () => {
  it('hitoshi, not loopback-only, refuses an offer whose candidates are all loopback: a clear error, nothing reaches the decoy', async () => {
    const { session: alice, sdp } = await Session.createOffer({ ice: loopbackOnly });
    const offer = withCandidates(sdp, [line(1, '127.0.0.1', decoyPort), line(2, '127.0.0.2', decoyPort), line(3, 'localhost', decoyPort)], false);
    // hitoshi binds to no particular address: he is not a loopback-only test peer
    const err = await Session.acceptOffer(offer, { ice: { iceServers: [] } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      code: 'SESSION_FAILED',
      message: expect.stringMatching(/unusable offer: the offer names no usable candidate: dropped 127\.0\.0\.1 \(loopback\), 127\.0\.0\.2 \(loopback\), localhost \(a hostname \(peerdial makes no DNS lookups for a peer\)\)/),
    });
    alice.close('test over');
    expect(reachedDecoy).toEqual([]);
  });

  it('hitoshi, loopback-only, refuses an offer naming only a hostname, link-local, multicast, unspecified, broadcast and mapped addresses', async () => {
    const { session: alice, sdp } = await Session.createOffer({ ice: loopbackOnly });
    const offer = withCandidates(sdp, hostileLines(decoyPort), false);
    const err = await Session.acceptOffer(offer, { ice: loopbackOnly }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'SESSION_FAILED', message: expect.stringContaining('the offer names no usable candidate: dropped localhost (a hostname') });
    for (const why of ['169.254.10.10 (link-local)', '224.0.0.1 (multicast)', '0.0.0.0 (unspecified)', '255.255.255.255 (broadcast)', '::ffff:127.0.0.1 (an IPv4-mapped']) {
      expect((err as Error).message).toContain(why);
    }
    alice.close('test over');
    expect(reachedDecoy).toEqual([]);
  });

  it('with one good candidate among the hostile ones the call connects over the good one, and nothing reaches the decoy', async () => {
    const { session: alice, sdp } = await Session.createOffer({ ice: loopbackOnly });
    const offer = withCandidates(sdp, hostileLines(decoyPort), true);
    expect(checkRemoteDescription(offer, 'offer', { loopback: true })).toMatchObject({ ok: true, dropped: expect.arrayContaining([{ address: 'localhost', reason: expect.stringContaining('hostname') }]) });
    const { session: hitoshi, sdp: answer } = await Session.acceptOffer(offer, { ice: loopbackOnly });
    // the answer comes back with hostile candidates of its own: alice drops them the same way
    alice.acceptAnswer(withCandidates(answer, hostileLines(decoyPort), true));
    const [a] = await Promise.all([alice.connected({ timeoutMs: 20_000 }), hitoshi.connected({ timeoutMs: 20_000 })]);
    expect(a.pair.remote).toContain('127.0.0.1');
    expect(a.pair.remote).not.toContain(String(decoyPort));
    alice.close('test over');
    hitoshi.close('test over');
    expect(reachedDecoy).toEqual([]);
  });

  it('alice refuses an answer whose candidates are all hostile', async () => {
    const { session: alice, sdp } = await Session.createOffer({ ice: loopbackOnly });
    const { session: hitoshi, sdp: answer } = await Session.acceptOffer(sdp, { ice: loopbackOnly });
    expect(() => alice.acceptAnswer(withCandidates(answer, hostileLines(decoyPort), false))).toThrow(/unusable answer: the answer names no usable candidate: dropped localhost/);
    alice.close('test over');
    hitoshi.close('test over');
    expect(reachedDecoy).toEqual([]);
  });

  it('a kept answer replaces its connection with the same filtered offer: the repeated checks never reach the decoy', async () => {
    const { session: alice, sdp } = await Session.createOffer({ ice: loopbackOnly });
    // alice's own candidate leads into a silent socket (as behind a filtering NAT), so hitoshi's
    // first connection gets nowhere and is replaced; alice's checks reach him once she has the answer
    const hole = createSocket('udp4');
    hole.on('message', () => undefined);
    await new Promise<void>((r) => hole.bind(0, '127.0.0.1', r));
    const silent = sdp.replace(/^(a=candidate:\S+ \d+ \S+ \d+ 127\.0\.0\.1 )\d+( typ .*)$/gm, `$1${hole.address().port}$2`);
    const offer = withCandidates(silent, hostileLines(decoyPort), true);
    let kept!: () => void;
    const replaced = new Promise<void>((r) => (kept = r));
    const { session: hitoshi, sdp: answer } = await Session.acceptOffer(offer, {
      ice: loopbackOnly,
      keepAnswerMs: 60_000,
      keepAnswerRefreshMs: 1000,
      onProgress: (e: SessionProgress) => {
        if (e.type === 'answer-kept') kept();
      },
    });
    // the answer is held back until hitoshi's connection has been replaced once
    await replaced;
    alice.acceptAnswer(answer);
    await Promise.all([alice.connected({ timeoutMs: 20_000 }), hitoshi.connected({ timeoutMs: 20_000 })]);
    alice.close('test over');
    hitoshi.close('test over');
    hole.close();
    expect(reachedDecoy).toEqual([]);
  });
});
