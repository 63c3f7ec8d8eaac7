/**
 * Mail is slow: the answer may come back minutes after the callee read the
 * offer, and the callee may read the offer long after it was made. Both
 * peers in this process, on 127.0.0.1 only.
 *
 * What these show (libdatachannel 0.24.5 / libjuice 1.7.2): with the offer
 * mailed as `a=setup:active` (the caller is the DTLS client) nothing on the
 * callee times out while the answer is in the mail: its ICE connects to the
 * caller's agent at once and stays up on consent checks, and its DTLS server
 * simply waits for the caller's hello. With the default roles the callee's
 * DTLS client gives up after ~31 s (notes/webrtc.md). On loopback the
 * setup:active fix alone is enough; no answer refresh or ICE restart is
 * needed. Behind a caller-side filtering NAT the callee's ICE still gives up
 * after ~39.5 s (notes/nat.md), which loopback cannot show.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { type IceConfig, type SessionProgress, Session, shutdownSessions } from '../../src/session/index.js';

const ice: IceConfig = { iceServers: [], bindAddress: '127.0.0.1' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recorder(t0: number, log: string[]) {
  return (e: SessionProgress) => {
    if (e.type === 'ice' || e.type === 'state' || e.type === 'connected' || e.type === 'failed') {
      log.push(`${((performance.now() - t0) / 1000).toFixed(1)}s ${e.type} ${'state' in e ? e.state : ''}`);
    }
  };
}

afterAll(() => shutdownSessions());

describe('slow mail', () => {
  it.concurrent(
    'hitoshi answers at once, but his answer reaches alice 90 s later: the call still connects',
    async () => {
      const t0 = performance.now();
      const aliceLog: string[] = [];
      const bobLog: string[] = [];
      const { session: alice, sdp: offer } = await Session.createOffer({ ice, onProgress: recorder(t0, aliceLog) });
      const { session: bob, sdp: answer } = await Session.acceptOffer(offer, { ice, onProgress: recorder(t0, bobLog) });
      const bobUp = bob.connected({ timeoutMs: 140_000 });

      await sleep(90_000); // the answer is in the mail
      expect(bob.isClosed).toBe(false);

      const tAnswer = performance.now();
      alice.acceptAnswer(answer);
      const [a, b] = await Promise.all([alice.connected({ timeoutMs: 30_000 }), bobUp]);
      const afterAnswerMs = Math.round(performance.now() - tAnswer);
      console.log(`answer 90 s late: connected ${afterAnswerMs} ms after the answer (alice ms=${a.ms})`);
      console.log(`  alice: ${aliceLog.join(' | ')}`);
      console.log(`  hitoshi: ${bobLog.join(' | ')}`);

      const got = new Promise((resolve) => b.channel.onMessage(resolve));
      await a.channel.send('sorry, the mail was slow');
      expect(await got).toBe('sorry, the mail was slow');
      alice.close();
      bob.close();
    },
    150_000,
  );

  it.concurrent(
    'alice offers, hitoshi reads the offer 60 s later: the call still connects',
    async () => {
      const { session: alice, sdp: offer } = await Session.createOffer({ ice });

      await sleep(60_000); // the offer is in the mail
      expect(alice.isClosed).toBe(false);

      const { session: bob, sdp: answer } = await Session.acceptOffer(offer, { ice });
      const tAnswer = performance.now();
      alice.acceptAnswer(answer);
      const [a, b] = await Promise.all([alice.connected({ timeoutMs: 30_000 }), bob.connected({ timeoutMs: 30_000 })]);
      console.log(`offer 60 s old: connected ${Math.round(performance.now() - tAnswer)} ms after the answer (alice ms=${a.ms})`);

      const got = new Promise((resolve) => a.channel.onMessage(resolve));
      await b.channel.send('just saw your call');
      expect(await got).toBe('just saw your call');
      alice.close();
      bob.close();
    },
    150_000,
  );
});
