/**
 * One-mail calls on the real Postfix + Dovecot, two agents on loopback:
 * hitoshi (auto-answer for alice, who is introduced) announces with a
 * standing answer for alice. Alice's call to him then crosses the mail
 * system once: her offer. Hitoshi's agent connects as soon as it has it;
 * no answer is mailed (the mails are counted in both mailboxes). The
 * standing answer serves one call: the next one is refused as used, and an
 * expired one is refused as expired, and those calls go with two mails;
 * so does a call whose standing answer hitoshi's agent no longer knows (it
 * restarted): he refuses it and mails his answer, which replaces the one
 * alice made from the standing answer.
 */
import { describe, expect, it } from 'vitest';
import type { MailStack } from './harness/mail-stack.js';
import { mailboxSnapshot, waitFor, type Peer } from './harness/peers.js';
import { introducedPeers } from './harness/scene.js';
import { agentOf, endedStates, type RecordedAgent } from './harness/agents.js';
import type { AgentEvent } from '../src/agent/agent.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;

introducedPeers('onemail', { alice: { ringSeconds: 30 }, hitoshi: { answer: 'auto-answer', ringSeconds: 30 } }, async (s) => {
  stack = s.stack;
  dir = s.dir;
  alice = s.peers.alice!;
  hitoshi = s.peers.hitoshi!;
});

/** Every mail in a user's mailbox (INBOX and peerdial's folder). */
async function mails(peer: Peer, folder: string): Promise<number> {
  return (await mailboxSnapshot(stack, peer.name, 'INBOX')).length + (await mailboxSnapshot(stack, peer.name, folder).catch(() => [])).length;
}

/** A call alice places; it talks one line each way and is hung up. Returns the mails each side received meanwhile, and alice's states. */
async function callAndCount(a: RecordedAgent, h: RecordedAgent): Promise<{ toHitoshi: number; toAlice: number; states: string[]; calleeStates: string[] }> {
  const folder = a.agent.account.account.folder;
  const before = { alice: await mails(alice, folder), hitoshi: await mails(hitoshi, folder) };
  const endedBefore = endedStates(h.events, 'in').length;
  const call = await a.agent.call('hitoshi');
  const incoming = await waitFor('hitoshi has the call', () => h.events.find((e): e is Extract<AgentEvent, { type: 'connected'; call: unknown }> => e.type === 'connected' && 'call' in e && e.call.callId === call.callId));
  const heard = new Promise<string>((resolve) => incoming.call.control.onMessage((m: Buffer | string) => resolve(String(m))));
  await call.control.send('hello hitoshi');
  expect(await heard).toBe('hello hitoshi');
  call.hangup();
  expect(await call.ended).toBe('closed');
  await waitFor('hitoshi saw the hang-up', () => endedStates(h.events, 'in').length > endedBefore);
  // every mail of this call is filed by now: the offer before the call rang, an answer before the caller connected
  const after = { alice: await mails(alice, folder), hitoshi: await mails(hitoshi, folder) };
  return { toHitoshi: after.hitoshi - before.hitoshi, toAlice: after.alice - before.alice, states: endedStates(a.events, 'out').at(-1)!, calleeStates: endedStates(h.events, 'in').at(-1)! };
}

const refusals = (events: AgentEvent[]) => events.filter((e): e is Extract<AgentEvent, { type: 'standing-refused' }> => e.type === 'standing-refused').map((e) => `${e.direction} ${e.code}`);

describe('alice calls hitoshi with one mail', () => {
  it('hitoshi announces with a standing answer; alice\'s call crosses the mail system once (her offer), the next one twice (used)', async () => {
    const h = await agentOf(hitoshi);
    const a = await agentOf(alice);
    try {
      const announced = await h.agent.announce({ to: ['alice'], addresses: [{ ip: '192.0.2.10', source: 'interface', scope: 'documentation' }] });
      expect(announced.queued.map((q) => q.to)).toEqual([alice.email]);
      await waitFor('alice holds a fresh standing answer from hitoshi', async () => (await a.agent.account.standing.peek(hitoshi.email))?.state === 'fresh', 30_000);

      const one = await callAndCount(a, h);
      console.log(`one-mail call: mails to hitoshi ${one.toHitoshi}, to alice ${one.toAlice}; caller ${one.states.join(' > ')}; callee ${one.calleeStates.join(' > ')}`);
      expect(one.toHitoshi).toBe(1);
      expect(one.toAlice).toBe(0);
      expect(one.states).toEqual(['gathering', 'connecting-one-mail', 'connected', 'closed']);
      expect(one.calleeStates).toEqual(['offer-received', 'answering', 'connecting', 'connected', 'closed']);
      expect(refusals(a.events)).toEqual([]);

      const two = await callAndCount(a, h);
      console.log(`the next call: mails to hitoshi ${two.toHitoshi}, to alice ${two.toAlice}; refusals ${refusals(a.events).join(', ')}`);
      expect(refusals(a.events)).toEqual(['out STANDING_ANSWER_USED']);
      expect(two.toHitoshi).toBe(1);
      expect(two.toAlice).toBe(1);
      expect(two.states).toEqual(['gathering', 'offer-queued', 'offer-sent', 'connecting', 'connected', 'closed']);
    } finally {
      await a.agent.stop();
      await h.agent.stop();
    }
  }, 120_000);

  it('a standing answer that expired before alice calls is refused as expired: two mails', async () => {
    const h = await agentOf(hitoshi);
    // alice's clock, moved past the standing answer's expiry before she calls (and still within the allowed skew for hitoshi)
    let ahead = 0;
    const a = await agentOf(alice, { account: await alice.open(() => new Date(Date.now() + ahead)) });
    try {
      await h.agent.announce({ to: ['alice'], addresses: [{ ip: '192.0.2.10', source: 'interface', scope: 'documentation' }], standingSeconds: 60 });
      const held = await waitFor('alice holds the new standing answer', async () => {
        const s = await a.agent.account.standing.peek(hitoshi.email);
        return s?.state === 'fresh' ? s : undefined;
      }, 30_000);
      ahead = Date.parse(held.standing.expires) - Date.now() + 60_000;
      const r = await callAndCount(a, h);
      expect(refusals(a.events)).toEqual(['out STANDING_ANSWER_EXPIRED']);
      expect(r.toHitoshi).toBe(1);
      expect(r.toAlice).toBe(1);
      expect(r.states).toEqual(['gathering', 'offer-queued', 'offer-sent', 'connecting', 'connected', 'closed']);
    } finally {
      await a.agent.stop();
      await h.agent.stop();
    }
  }, 120_000);

  it("hitoshi's agent restarted after the announce: it refuses the standing answer alice's offer names (unknown), mails its answer, and the call connects with two mails", async () => {
    const before = await agentOf(hitoshi);
    const a = await agentOf(alice);
    let h: RecordedAgent | undefined;
    try {
      await before.agent.announce({ to: ['alice'], addresses: [{ ip: '192.0.2.10', source: 'interface', scope: 'documentation' }] });
      await waitFor('alice holds a fresh standing answer from hitoshi', async () => (await a.agent.account.standing.peek(hitoshi.email))?.state === 'fresh', 30_000);
      await before.agent.stop();
      h = await agentOf(hitoshi);
      const r = await callAndCount(a, h);
      expect(refusals(h.events)).toEqual(['in STANDING_ANSWER_UNKNOWN']);
      expect(refusals(a.events)).toEqual([]);
      expect(r.toHitoshi).toBe(1);
      expect(r.toAlice).toBe(1);
      // alice applied the answer made from the standing one, then hitoshi's mailed answer replaced it
      expect(r.states).toEqual(['gathering', 'connecting-one-mail', 'connecting', 'connected', 'closed']);
      expect(r.calleeStates).toEqual(['offer-received', 'answering', 'answer-queued', 'connecting', 'connected', 'closed']);
    } finally {
      await a.agent.stop();
      await h?.agent.stop();
    }
  }, 120_000);
});
