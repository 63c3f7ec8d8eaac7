/**
 * A standing answer's life on its own: the pure machine, fed typed events,
 * compared as whole lists of states and outputs. Hitoshi made one for
 * alice; it serves one call, before it expires, while alice is introduced
 * or verified. Everything else is refused with a stable code, and the call
 * goes with two mails.
 */
import { describe, expect, it } from 'vitest';
import { newStanding, refusalError, type StandingEvent, type StandingOutput, type StandingState } from '../../src/agent/standing.js';
import { isPeerdialError } from '../../src/errors.js';

const ALICE = 'alice@example.test';
const MALLORY = 'mallory@example.test';
const T0 = Date.parse('2025-06-01T10:00:00.000Z');
const EXPIRES = T0 + 3600_000;
const terms = { id: 'st4nd1ng-answer-0001-hitoshi', contact: ALICE, expires: EXPIRES };

function run(events: StandingEvent[], initial?: StandingState): { states: string[]; outputs: StandingOutput[] } {
  const m = newStanding(terms, initial);
  const outputs: StandingOutput[] = [];
  for (const e of events) outputs.push(...m.handle(e));
  return { states: m.history, outputs };
}

const offerFromAlice = (now: number, trust: 'introduced' | 'verified' | 'learned' = 'introduced'): StandingEvent => ({ type: 'peer-offer', from: ALICE, trust, now });
const refusedWith = (outputs: StandingOutput[]) => outputs.flatMap((o) => ('refuse' in o ? [o.refuse.code] : []));

describe('the callee side: offers naming hitoshi\'s standing answer', () => {
  it('alice\'s first offer is served; her second naming the same answer is refused as used', () => {
    const r = run([offerFromAlice(T0 + 60_000), offerFromAlice(T0 + 120_000)]);
    expect(r.states).toEqual(['fresh', 'used']);
    expect(r.outputs).toEqual([
      { to: 'phone', use: true },
      { to: 'phone', refuse: { code: 'STANDING_ANSWER_USED', detail: 'standing answer st4nd1ng-answer-0001-hitoshi has served its call already' } },
    ]);
  });

  it('an offer that comes after the expiry is refused, the kept port and certificate are released, and later offers are refused too', () => {
    const r = run([offerFromAlice(EXPIRES), offerFromAlice(EXPIRES + 1)]);
    expect(r.states).toEqual(['fresh', 'expired']);
    expect(r.outputs).toEqual([
      { to: 'phone', refuse: { code: 'STANDING_ANSWER_EXPIRED', detail: 'standing answer st4nd1ng-answer-0001-hitoshi expired at 2025-06-01T11:00:00.000Z' } },
      { to: 'keeper', do: 'release' },
      { to: 'phone', refuse: { code: 'STANDING_ANSWER_EXPIRED', detail: 'standing answer st4nd1ng-answer-0001-hitoshi expired at 2025-06-01T11:00:00.000Z' } },
    ]);
  });

  it('the clock runs out while nobody calls: released; an offer afterwards is refused as expired', () => {
    const r = run([{ type: 'clock-expired' }, offerFromAlice(T0 + 60_000)]);
    expect(r.states).toEqual(['fresh', 'expired']);
    expect(refusedWith(r.outputs)).toEqual(['STANDING_ANSWER_EXPIRED']);
    expect(r.outputs[0]).toEqual({ to: 'keeper', do: 'release' });
  });

  it('alice\'s key is only learned now (it was replaced): refused as untrusted and withdrawn for good', () => {
    const r = run([offerFromAlice(T0 + 60_000, 'learned'), offerFromAlice(T0 + 61_000, 'verified')]);
    expect(r.states).toEqual(['fresh', 'withdrawn']);
    expect(refusedWith(r.outputs)).toEqual(['STANDING_ANSWER_UNTRUSTED', 'STANDING_ANSWER_UNKNOWN']);
    expect(r.outputs).toContainEqual({ to: 'keeper', do: 'release' });
  });

  it('mallory names alice\'s standing answer: refused as unknown to him, and it still serves alice', () => {
    const r = run([{ type: 'peer-offer', from: MALLORY, trust: 'verified', now: T0 + 60_000 }, offerFromAlice(T0 + 70_000, 'verified')]);
    expect(r.states).toEqual(['fresh', 'used']);
    expect(refusedWith(r.outputs)).toEqual(['STANDING_ANSWER_UNKNOWN']);
    expect(r.outputs.at(-1)).toEqual({ to: 'phone', use: true });
  });

  it('a newer standing answer replaces it: released, and an offer naming the old one is refused', () => {
    const r = run([{ type: 'agent-withdraw', reason: 'a newer one was announced' }, offerFromAlice(T0 + 60_000)]);
    expect(r.states).toEqual(['fresh', 'withdrawn']);
    expect(r.outputs).toEqual([
      { to: 'keeper', do: 'release' },
      { to: 'phone', refuse: { code: 'STANDING_ANSWER_UNKNOWN', detail: 'standing answer st4nd1ng-answer-0001-hitoshi was withdrawn' } },
    ]);
  });
});

describe('the caller side: alice holds hitoshi\'s standing answer', () => {
  const call = (now: number): StandingEvent => ({ type: 'user-call', contact: ALICE, trust: 'verified', now });

  it('her first call uses it; her second goes with two mails (used), also when the machine is read back from her store', () => {
    const r = run([call(T0 + 1000), call(T0 + 2000)]);
    expect(r.states).toEqual(['fresh', 'used']);
    expect(r.outputs[0]).toEqual({ to: 'phone', use: true });
    expect(refusedWith(r.outputs)).toEqual(['STANDING_ANSWER_USED']);
    const reread = run([call(T0 + 3000)], 'used');
    expect(refusedWith(reread.outputs)).toEqual(['STANDING_ANSWER_USED']);
  });

  it('a call after the expiry goes with two mails (expired)', () => {
    expect(refusedWith(run([call(EXPIRES + 1)]).outputs)).toEqual(['STANDING_ANSWER_EXPIRED']);
  });

  it('the refusal is a peerdial error with its code and says the call goes on with two mails', () => {
    const out = run([call(EXPIRES)]).outputs.find((o) => 'refuse' in o)!;
    const err = refusalError((out as { refuse: Parameters<typeof refusalError>[0] }).refuse);
    expect(isPeerdialError(err, 'STANDING_ANSWER_EXPIRED')).toBe(true);
    expect(err.hint).toMatch(/two mails/);
  });
});

describe("the callee's call machine on a one-mail call", () => {
  it('answered on the standing identity: straight to connecting, no answer goes to the outbox', async () => {
    const { newCallee } = await import('../../src/agent/callee.js');
    const m = newCallee();
    const outputs = [
      ...m.handle({ type: 'policy-auto-answer' }),
      ...m.handle({ type: 'session-answered-standing' }),
      ...m.handle({ type: 'session-connected' }),
    ];
    expect(m.history).toEqual(['offer-received', 'answering', 'connecting', 'connected']);
    expect(outputs.filter((o) => o.to === 'outbox')).toEqual([]);
    expect(outputs).toContainEqual({ to: 'clock', start: 'connect' });
  });
});
