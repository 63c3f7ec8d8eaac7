/**
 * Group calls, the pure rules (agent/group-plan.ts): who is in the group,
 * who offers to whom (the member earlier in the list, the caller first), and
 * which pairs are left out when a member does not know another.
 */
import { describe, expect, it } from 'vitest';
import { groupMembers, offererOf, pairCount, pairPlan, leftOutLine } from '../../src/agent/group-plan.js';
import { isPeerdialError } from '../../src/errors.js';

const A = 'alice@example.test';
const B = 'bob@example.test';
const C = 'carol@example.test';
const D = 'dave@example.test';
const everybody = () => true;

describe('the members of a group', () => {
  it('are the caller first, then the callees in the order named, each once', () => {
    expect(groupMembers(A, [B, C, B])).toEqual([A, B, C]);
  });

  it('are at most six, the caller included; a seventh is refused with the limit named', () => {
    const five = ['b', 'c', 'd', 'e', 'f'].map((n) => `${n}@example.test`);
    expect(groupMembers(A, five)).toHaveLength(6);
    let err: unknown;
    try {
      groupMembers(A, [...five, 'g@example.test']);
    } catch (e) {
      err = e;
    }
    expect(isPeerdialError(err, 'LIMIT_EXCEEDED')).toBe(true);
    expect((err as Error).message).toBe('A group call has at most 6 members, you included; this one would have 7.');
  });

  it('are at least two others, and never the caller again', () => {
    expect(() => groupMembers(A, [B])).toThrow(/at least two other people/);
    expect(() => groupMembers(A, [B, A])).toThrow(/is you/);
  });

  it('make a mesh of n(n-1)/2 pairs', () => {
    expect(pairCount(3)).toBe(3);
    expect(pairCount(6)).toBe(15);
  });
});

describe('who offers to whom', () => {
  const members = [A, B, C, D];

  it('the earlier member of each pair offers: the caller to all, bob to carol and dave, carol to dave', () => {
    expect(pairPlan(A, members, everybody)).toEqual({ offerTo: [B, C, D], expectFrom: [], leftOut: [] });
    expect(pairPlan(B, members, everybody)).toEqual({ offerTo: [C, D], expectFrom: [A], leftOut: [] });
    expect(pairPlan(C, members, everybody)).toEqual({ offerTo: [D], expectFrom: [A, B], leftOut: [] });
    expect(pairPlan(D, members, everybody)).toEqual({ offerTo: [], expectFrom: [A, B, C], leftOut: [] });
    expect(offererOf(members, D, B)).toBe(B);
  });

  it('every pair is offered exactly once', () => {
    const offers = members.flatMap((m) => pairPlan(m, members, everybody).offerTo.map((to) => `${m}>${to}`));
    expect(offers).toHaveLength(pairCount(members.length));
    expect(new Set(offers.map((o) => o.split('>').sort().join())).size).toBe(offers.length);
  });

  it('a member who does not know another leaves that pair out, on either side of it', () => {
    // bob does not know dave: he makes no offer to him, and says why
    const bob = pairPlan(B, members, (m) => m !== D);
    expect(bob.offerTo).toEqual([C]);
    expect(bob.leftOut).toEqual([{ offerer: B, answerer: D, why: `${B} does not have ${D} as a contact with a key` }]);
    // dave does not know bob: he expects no offer from him
    const dave = pairPlan(D, members, (m) => m !== B);
    expect(dave.expectFrom).toEqual([A, C]);
    expect(dave.leftOut).toEqual([{ offerer: B, answerer: D, why: `${D} does not have ${B} as a contact with a key` }]);
    expect(leftOutLine(bob.leftOut[0]!)).toBe(`no connection between ${B} and ${D}: ${B} does not have ${D} as a contact with a key; they do not hear each other (everybody else does)`);
  });

  it('somebody outside the group has no plan in it', () => {
    expect(() => pairPlan('eve@example.test', members, everybody)).toThrow(/not a member/);
  });
});
