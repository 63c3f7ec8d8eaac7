/**
 * The peer's DTLS certificate is checked by the session itself (issue 12):
 * alice and bob on loopback, in this process. A description whose
 * `a=fingerprint` does not name the certificate the peer really uses is
 * otherwise valid (right ICE credentials, candidates, roles), so ICE and
 * DTLS come up; the side that got it must close before any channel is used,
 * fail with FINGERPRINT_MISMATCH, and neither side may see a byte.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PeerdialError } from '../../src/errors.js';
import { type Channel, type IceConfig, type SessionProgress, Session, shutdownSessions } from '../../src/session/index.js';
import { checkPeerFingerprint, descriptionFingerprints, normalizeFingerprint } from '../../src/session/fingerprint.js';

const ice: IceConfig = { iceServers: [], bindAddress: '127.0.0.1' };

/** The same description with every a=fingerprint value changed in its last byte (still well-formed). */
function tamper(sdp: string): string {
  const out = sdp.replace(/^(a=fingerprint:\S+ )(\S+)$/gm, (_l, head: string, value: string) => {
    const last = value.slice(-2);
    return `${head}${value.slice(0, -2)}${last === '00' ? '01' : '00'}`;
  });
  expect(out).not.toBe(sdp);
  return out;
}

/** Everything a side receives on any channel, from the moment its session exists. */
function collect(session: Session, channels: Channel[] = []): Array<string | Buffer> {
  const got: Array<string | Buffer> = [];
  const listen = (ch: Channel) => ch.onMessage((m) => got.push(m));
  session.onChannel(listen);
  for (const ch of channels) listen(ch);
  return got;
}

async function settle(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

afterEach(() => shutdownSessions());

describe("the peer's certificate, checked by the session", () => {
  it('normalises algorithm and value, and refuses a description whose fingerprints disagree', () => {
    const sdp = 'v=0\r\na=fingerprint:SHA-256 ab:cd:EF\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=fingerprint:sha-256 AB:CD:EF\r\n';
    const fps = descriptionFingerprints(sdp);
    expect(fps).toEqual([{ algorithm: 'sha-256', hex: 'ABCDEF' }, { algorithm: 'sha-256', hex: 'ABCDEF' }]);
    expect(checkPeerFingerprint(fps, normalizeFingerprint('sha-256', 'AB:CD:EF'))).toEqual({ ok: true });
    expect(checkPeerFingerprint(fps, normalizeFingerprint('sha-256', 'AB:CD:EE')).ok).toBe(false);
    expect(checkPeerFingerprint(fps, normalizeFingerprint('sha-1', 'AB:CD:EF')).ok).toBe(false);
    expect(checkPeerFingerprint(fps, undefined).ok).toBe(false);
    const mixed = descriptionFingerprints(sdp.replace('sha-256 AB:CD:EF', 'sha-256 AB:CD:00'));
    expect(checkPeerFingerprint(mixed, normalizeFingerprint('sha-256', 'AB:CD:EF')).ok).toBe(false);
  });

  it('bob answers with a tampered fingerprint: alice fails with FINGERPRINT_MISMATCH, and no data reaches either side', async () => {
    expect(await tamperedAnswer()).toBe('checked');
  });

  async function tamperedAnswer(): Promise<unknown> {
    const progress: SessionProgress[] = [];
    const { session: alice, sdp: offer } = await Session.createOffer({ ice, onProgress: (e) => progress.push(e) });
    const { session: bob, sdp: answer } = await Session.acceptOffer(offer, { ice });
    const aliceGot = collect(alice);
    const bobGot = collect(bob);
    // alice tries to open a channel and send at once: held until the check, refused after it.
    const early = alice.openChannel('early').then(
      (ch) => ch.send('from alice'),
      (err: unknown) => err,
    );
    // bob (who sees alice's true certificate) sends as soon as he is connected.
    const bobSide = bob.connected({ timeoutMs: 20_000 }).then(
      async (c) => {
        collect(bob, [c.channel]);
        await c.channel.send('from bob').catch(() => undefined);
        return 'connected';
      },
      (err: PeerdialError) => err.code,
    );
    try {
      alice.acceptAnswer(tamper(answer));
    } catch (e) {
      bob.close();
      return e;
    }
    const err = await alice.connected({ timeoutMs: 20_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PeerdialError);
    expect((err as PeerdialError).code).toBe('FINGERPRINT_MISMATCH');
    expect((err as PeerdialError).hint).toMatch(/README/);
    expect(await early).toBeInstanceOf(PeerdialError);
    expect(alice.isClosed).toBe(true);
    // The connection did come up (ICE and DTLS), then alice closed it.
    expect(progress.some((e) => e.type === 'state' && e.state === 'connected')).toBe(true);
    await bobSide;
    await settle(300);
    expect(aliceGot).toEqual([]);
    expect(bobGot).toEqual([]);
    bob.close();
    return 'checked';
  }

  it('alice offers with a tampered fingerprint: bob fails with FINGERPRINT_MISMATCH, and no data reaches either side', async () => {
    expect(await tamperedOffer()).toBe('checked');
  });

  async function tamperedOffer(): Promise<unknown> {
    const { session: alice, sdp: offer } = await Session.createOffer({ ice });
    const { session: bob, sdp: answer } = await Session.acceptOffer(tamper(offer), { ice });
    const aliceGot = collect(alice);
    const bobGot = collect(bob);
    const aliceSide = alice.connected({ timeoutMs: 20_000 }).then(
      async (c) => {
        collect(alice, [c.channel]);
        await c.channel.send('from alice').catch(() => undefined);
        return 'connected';
      },
      (e: PeerdialError) => e.code,
    );
    try {
      alice.acceptAnswer(answer);
    } catch (e) {
      bob.close();
      return e;
    }
    const err = await bob.connected({ timeoutMs: 20_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as PeerdialError).code).toBe('FINGERPRINT_MISMATCH');
    expect(bob.isClosed).toBe(true);
    await aliceSide;
    await settle(300);
    expect(aliceGot).toEqual([]);
    expect(bobGot).toEqual([]);
    alice.close();
    return 'checked';
  }

  it('with the true fingerprints, what alice sends at once arrives, in order, once the check has passed', async () => {
    const { session: alice, sdp: offer } = await Session.createOffer({ ice });
    const { session: bob, sdp: answer } = await Session.acceptOffer(offer, { ice });
    const bobGot = collect(bob);
    let a: Awaited<ReturnType<Session['connected']>>;
    try {
      alice.acceptAnswer(answer);
      [a] = await Promise.all([alice.connected({ timeoutMs: 20_000 }), bob.connected({ timeoutMs: 20_000 })]);
    } catch (err) {
      alice.close();
      bob.close();
      throw err;
    }
    for (let i = 0; i < 20; i++) void a.channel.send(`m${i}`);
    for (let i = 0; i < 100 && bobGot.length < 20; i++) await settle(20);
    expect(bobGot).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    alice.close();
    bob.close();
  });
});
