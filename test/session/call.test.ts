/**
 * Scenario tests of a direct session on loopback, both peers in this process.
 * Traffic stays on 127.0.0.1: bindAddress 127.0.0.1, no ICE servers.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isPeerdialError } from '../../src/errors.js';
import {
  type Channel,
  type IceConfig,
  type SessionProgress,
  Session,
  dtlsSetups,
  liveSessionCount,
  shutdownSessions,
} from '../../src/session/index.js';

const ice: IceConfig = { iceServers: [], bindAddress: '127.0.0.1' };

/**
 * alice calls bob: offer -> answer -> both connected (the answer applied at once).
 * One attempt: a failure fails the test (both sessions closed first).
 */
async function call(): Promise<{ alice: Session; bob: Session; aliceCtl: Channel; bobCtl: Channel; ms: number }> {
  const { session: alice, sdp: offer } = await Session.createOffer({ ice });
  const { session: bob, sdp: answer } = await Session.acceptOffer(offer, { ice });
  try {
    alice.acceptAnswer(answer);
    const [a, b] = await Promise.all([alice.connected({ timeoutMs: 20_000 }), bob.connected({ timeoutMs: 20_000 })]);
    return { alice, bob, aliceCtl: a.channel, bobCtl: b.channel, ms: a.ms };
  } catch (err) {
    alice.close();
    bob.close();
    throw err;
  }
}

function nextMessage(ch: Channel): Promise<Buffer | string> {
  return new Promise((resolve) => ch.onMessage(resolve));
}

afterEach(() => {
  shutdownSessions();
});
afterAll(() => {
  shutdownSessions();
});

describe('a call on loopback', () => {
  it('alice offers as DTLS client, bob answers as DTLS server', async () => {
    const { session: alice, sdp: offer } = await Session.createOffer({ ice });
    expect(dtlsSetups(offer)).toEqual(['active']);
    expect(offer).toMatch(/^a=candidate:.* 127\.0\.0\.1 /m);
    expect(offer).not.toMatch(/a=candidate:.* (?!127\.0\.0\.1)\d+\.\d+\.\d+\.\d+ \d+ typ/);
    const { session: bob, sdp: answer } = await Session.acceptOffer(offer, { ice });
    expect(dtlsSetups(answer)).toEqual(['passive']);
    alice.close();
    bob.close();
  });

  it('alice and bob connect over 127.0.0.1 on the control channel', async () => {
    const { alice, bob } = await call();
    const [a, b] = await Promise.all([alice.connected(), bob.connected()]);
    expect(b.pair.local).toContain('127.0.0.1');
    expect(b.pair.remote).toContain('127.0.0.1');
    expect(a.channel.label).toBe('control');
    expect(b.channel.label).toBe('control');
    expect(liveSessionCount()).toBe(2);
    alice.close();
    bob.close();
    expect(liveSessionCount()).toBe(0);
  });

  it('an old offer from an actpass peer is made active by the callee', async () => {
    const { session: alice, sdp: offer } = await Session.createOffer({ ice });
    const legacy = offer.replace(/a=setup:active/g, 'a=setup:actpass');
    const { session: bob, sdp: answer } = await Session.acceptOffer(legacy, { ice });
    // bob answered as if alice were the DTLS client
    expect(dtlsSetups(answer)).toEqual(['passive']);
    alice.close();
    bob.close();
  });

  it('a text message goes each way on the control channel', async () => {
    const { aliceCtl, bobCtl } = await call();
    const atBob = nextMessage(bobCtl);
    await aliceCtl.send('hello bob');
    expect(await atBob).toBe('hello bob');
    const atAlice = nextMessage(aliceCtl);
    await bobCtl.send('hello alice');
    expect(await atAlice).toBe('hello alice');
  });

  it('bob hears about a channel alice opens, and alice sees bob close the call', async () => {
    const { alice, bob } = await call();
    const opened = new Promise<Channel>((resolve) =>
      bob.onChannel((ch) => {
        if (ch.label === 'file') resolve(ch);
      }),
    );
    const file = await alice.openChannel('file', { protocol: 'peerdial-file' });
    const atBob = await opened;
    expect(atBob.protocol).toBe('peerdial-file');
    const closedAtAlice = new Promise<void>((resolve) => alice.onClose(() => resolve()));
    bob.close();
    await closedAtAlice;
    expect(file.isOpen).toBe(false);
    await expect(file.send('late')).rejects.toMatchObject({ code: 'SESSION_CLOSED' });
  });

  it('16 MiB of binary crosses a channel with backpressure and arrives intact', async () => {
    const { alice, bob } = await call();
    const total = 16 * 1024 * 1024;
    const data = randomBytes(total);
    const received = new Promise<string>((resolve) => {
      bob.onChannel((ch) => {
        const hash = createHash('sha256');
        let got = 0;
        ch.onMessage((m) => {
          const buf = typeof m === 'string' ? Buffer.from(m) : m;
          hash.update(buf);
          got += buf.length;
          if (got >= total) resolve(hash.digest('hex'));
        });
      });
    });
    const ch = await alice.openChannel('bulk');
    const chunk = Math.min(64 * 1024, ch.maxMessageSize);
    let maxBuffered = 0;
    for (let off = 0; off < total; off += chunk) {
      await ch.send(data.subarray(off, off + chunk));
      maxBuffered = Math.max(maxBuffered, (ch as unknown as { bufferedAmount: number }).bufferedAmount);
    }
    expect(await received).toBe(createHash('sha256').update(data).digest('hex'));
    // send() waited for the low-water mark (1 MiB) instead of queueing all 16 MiB.
    expect(maxBuffered).toBeLessThan(4 * 1024 * 1024);
  }, 60_000);

  it('a message larger than the peer accepts is refused with a clear error', async () => {
    const { aliceCtl } = await call();
    const max = aliceCtl.maxMessageSize;
    expect(max).toBeGreaterThan(0);
    const err = await aliceCtl.send(new Uint8Array(max + 1)).catch((e: unknown) => e);
    expect(isPeerdialError(err, 'TRANSFER_FAILED')).toBe(true);
    expect(String((err as Error).message)).toContain(String(max));
  });

  it('a garbled answer is refused with SESSION_FAILED and a hint', async () => {
    const { session: alice } = await Session.createOffer({ ice });
    let err: unknown;
    try {
      alice.acceptAnswer('hello');
    } catch (e) {
      err = e;
    }
    expect(isPeerdialError(err, 'SESSION_FAILED')).toBe(true);
    expect((err as { hint?: string }).hint).toMatch(/fresh offer/);
  });

  it('connected() gives up with SESSION_FAILED when no answer comes', async () => {
    const { session: alice } = await Session.createOffer({ ice });
    await expect(alice.connected({ timeoutMs: 300 })).rejects.toMatchObject({ code: 'SESSION_FAILED' });
  });

  it('an offer is still made when the STUN server never answers: host candidates only, after the gathering bound', async () => {
    // A STUN server on a closed loopback port: nothing leaves 127.0.0.1.
    const events: SessionProgress[] = [];
    const { session: alice, sdp } = await Session.createOffer({
      ice: { iceServers: ['stun:127.0.0.1:9'], bindAddress: '127.0.0.1' },
      gatherTimeoutMs: 500,
      onProgress: (e) => events.push(e),
    });
    expect(sdp).toMatch(/^a=candidate:.* 127\.0\.0\.1 \d+ typ host/m);
    expect(events.find((e) => e.type === 'gathered')).toMatchObject({ complete: false, candidates: 1 });
    alice.close();
  });

  it('an aborted offer is cancelled and leaves no session behind', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(Session.createOffer({ ice, signal: ac.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(liveSessionCount()).toBe(0);
  });
});
