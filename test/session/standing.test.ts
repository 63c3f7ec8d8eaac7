/**
 * A one-mail call at the session level, on loopback in this process:
 * hitoshi keeps an answer standing (port, certificate, ICE credentials);
 * alice makes her answer from it and applies it at once, before hitoshi
 * has even seen her offer; hitoshi answers the offer on the kept identity
 * when it arrives, and his answer never travels. Both connect, and alice's
 * session checked hitoshi's certificate against the standing answer's
 * fingerprint. And the way back to two mails: hitoshi refuses the standing
 * answer and mails a real one, which replaces the provisional one.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Session, SessionHosts, shutdownSessions, type IceConfig } from '../../src/session/index.js';
import { prepareStanding } from '../../src/session/standing.js';
import { answerFromStanding } from '../../src/session/standing-sdp.js';
import { iceIdentity } from '../../src/session/sdp.js';

const ice: IceConfig = { iceServers: [], bindAddress: '127.0.0.1' };

afterAll(() => {
  shutdownSessions();
});

describe('hitoshi keeps an answer standing; alice calls with her offer alone', () => {
  it('alice applies the answer made from it before hitoshi has her offer; he answers on the kept identity; both connect and talk', async () => {
    const prepared = await prepareStanding(Session, ice);
    try {
      const { session: alice, sdp: offer } = await Session.createOffer({ ice });
      const answer = answerFromStanding(offer, prepared.identity)!;
      alice.acceptAnswer(answer, { provisional: true });
      // ... the offer is in the mail; then hitoshi's agent has it:
      const { session: hitoshi, sdp: hisAnswer } = await Session.acceptOffer(offer, { ice, standing: prepared.kept });
      try {
        // the answer he made (and does not mail) has exactly the identity alice already holds
        expect(iceIdentity(hisAnswer)).toEqual(iceIdentity(answer));
        const [a, h] = await Promise.all([alice.connected({ timeoutMs: 20_000 }), hitoshi.connected({ timeoutMs: 20_000 })]);
        const heard = new Promise<string>((resolve) => h.channel.onMessage((m) => resolve(String(m))));
        await a.channel.send('hello over one mail');
        expect(await heard).toBe('hello over one mail');
        expect(a.pair.remote).toContain(String(prepared.kept.port));
      } finally {
        alice.close();
        hitoshi.close();
      }
    } finally {
      prepared.certificate.remove();
    }
  }, 60_000);

  it('hitoshi refuses the standing answer and mails a real one: it replaces the provisional answer, and they connect (two mails)', async () => {
    const prepared = await prepareStanding(Session, ice);
    try {
      const { session: alice, sdp: offer } = await Session.createOffer({ ice });
      alice.acceptAnswer(answerFromStanding(offer, prepared.identity)!, { provisional: true });
      const { session: hitoshi, sdp: mailed } = await Session.acceptOffer(offer, { ice });
      try {
        alice.acceptAnswer(mailed);
        const [a] = await Promise.all([alice.connected({ timeoutMs: 20_000 }), hitoshi.connected({ timeoutMs: 20_000 })]);
        expect(a.pair.remote).not.toContain(`:${prepared.kept.port}/`);
        // a real answer is final
        expect(() => alice.acceptAnswer(mailed)).toThrow(/already been answered/);
      } finally {
        alice.close();
        hitoshi.close();
      }
    } finally {
      prepared.certificate.remove();
    }
  }, 60_000);

  it('with isolated sessions (session host processes, as the agent runs them) the same: prepared and answered in hosts, connected', async () => {
    const hosts = new SessionHosts();
    try {
      const prepared = await prepareStanding(hosts, ice);
      try {
        const { session: alice, sdp: offer } = await hosts.createOffer({ ice });
        alice.acceptAnswer(answerFromStanding(offer, prepared.identity)!, { provisional: true });
        const { session: hitoshi } = await hosts.acceptOffer(offer, { ice, standing: prepared.kept });
        const [a] = await Promise.all([alice.connected({ timeoutMs: 20_000 }), hitoshi.connected({ timeoutMs: 20_000 })]);
        expect(a.pair.remote).toContain(String(prepared.kept.port));
        alice.close();
        hitoshi.close();
      } finally {
        prepared.certificate.remove();
      }
    } finally {
      await hosts.shutdown();
    }
  }, 60_000);
});
