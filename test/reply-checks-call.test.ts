/**
 * The caller expects the callee's reply, on the real Postfix + Dovecot:
 * from the moment alice's offer has gone until hitoshi's answer (or
 * decline) arrives, alice's agent checks its mailbox on the reply-check
 * schedule on top of IDLE; the expectation ends with the reply. Printed:
 * the NOOPs each call cost and who saw the reply first.
 */
import { describe, expect, it } from 'vitest';
import type { MailStack } from './harness/mail-stack.js';
import { waitFor, type Peer } from './harness/peers.js';
import { introducedPeers } from './harness/scene.js';
import { agentOf, endedStates } from './harness/agents.js';
import type { AgentEvent } from '../src/agent/agent.js';
import type { CheckResult } from '../src/mail/inbox.js';
import { REPLY_CHECKS } from '../src/mail/reply-checks.js';
import { isPeerdialError } from '../src/errors.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;

introducedPeers('replycall', { alice: { ringSeconds: 20 }, hitoshi: { answer: 'auto-answer', ringSeconds: 20 } }, async (s) => {
  stack = s.stack;
  dir = s.dir;
  alice = s.peers.alice!;
  hitoshi = s.peers.hitoshi!;
});

const checksWithMail = (events: AgentEvent[]): CheckResult[] =>
  events.filter((e): e is Extract<AgentEvent, { type: 'checked' }> => e.type === 'checked' && e.result.scanned > 0).map((e) => e.result);

describe('alice expects hitoshi\'s reply', () => {
  it('hitoshi answers: alice\'s agent checks for the answer while it waits, and stops when it came', async () => {
    const h = await agentOf(hitoshi);
    const a = await agentOf(alice);
    try {
      expect(a.agent.replies.checks).toEqual({ noops: 0, found: 0 });
      const from = a.events.length;
      const call = await a.agent.call('hitoshi');
      // the answer ended the expectation
      expect(a.agent.replies.size).toBe(0);
      const spent = a.agent.replies.checks;
      expect(spent.noops).toBeGreaterThan(0);
      expect(spent.noops).toBeLessThanOrEqual(REPLY_CHECKS.maxChecks);
      // the pass that handed the answer over reports when it is done (the call may connect first)
      const answerSeenBy = (await waitFor('the pass with the answer', () => checksWithMail(a.events.slice(from))[0])).seenBy;
      expect(['reply-check', 'idle']).toContain(answerSeenBy);
      // the callee expects no reply by mail: its watcher only IDLEs
      expect(h.agent.replies.checks).toEqual({ noops: 0, found: 0 });
      call.hangup();
      expect(await call.ended).toBe('closed');
      // nothing is expected any more: no further checks
      const after = a.agent.replies.checks.noops;
      await waitFor('hitoshi saw the hang-up', () => endedStates(h.events, 'in').length > 0);
      await new Promise((r) => setTimeout(r, 1_500));
      expect(a.agent.replies.checks.noops).toBe(after);
      console.log(`a call, caller side: ${spent.noops} reply-check NOOP(s) from offer sent to answer; the answer was seen by ${answerSeenBy}`);
      expect(endedStates(a.events, 'out')[0]).toEqual(['gathering', 'offer-queued', 'offer-sent', 'connecting', 'connected', 'closed']);
    } finally {
      await a.agent.stop();
      await h.agent.stop();
    }
  }, 90_000);

  it('hitoshi declines: the decline ends the expectation too', async () => {
    const h = await agentOf(hitoshi);
    const acc = h.agent.account;
    await acc.contacts.update(alice.email, (c) => (c.answer = 'ring'));
    const a = await agentOf(alice);
    try {
      const ringing = waitFor('ringing', () => h.events.find((e): e is Extract<AgentEvent, { type: 'ringing' }> => e.type === 'ringing'));
      const from = a.events.length;
      const calling = a.agent.call('hitoshi').catch((e) => e);
      (await ringing).call.decline('not now');
      const err = await calling;
      expect(isPeerdialError(err, 'CALL_DECLINED')).toBe(true);
      expect(a.agent.replies.size).toBe(0);
      const spent = a.agent.replies.checks.noops;
      expect(spent).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 1_500));
      expect(a.agent.replies.checks.noops).toBe(spent);
      const declineSeenBy = (await waitFor('the pass with the decline', () => checksWithMail(a.events.slice(from))[0])).seenBy;
      expect(['reply-check', 'idle']).toContain(declineSeenBy);
      console.log(`a declined call, caller side: ${spent} reply-check NOOP(s); the decline was seen by ${declineSeenBy}`);
    } finally {
      await acc.contacts.update(alice.email, (c) => delete c.answer);
      await a.agent.stop();
      await h.agent.stop();
    }
  }, 90_000);
});
