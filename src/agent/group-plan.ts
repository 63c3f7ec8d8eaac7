/**
 * Group calls, the pure part: who is in the group, who offers to whom, which
 * pairs are left out. No I/O. (agent/group.ts carries it out.)
 *
 * The design (README "Group calls"): a group is a full mesh of at most
 * LIMITS.groupMembers machines, the caller included. The caller mails every
 * member an offer carrying the group (wire/message.ts GroupField: a random
 * id and the member list, the caller first), signed and encrypted like any
 * offer. Every pair connects directly (or through the relay of `[ice] turn`):
 * the member earlier in the list offers to the later one, by mail, as an
 * ordinary call carrying the same group. A member offers only to members it
 * has as a contact with a key; a pair where either side does not know the
 * other is left out, and both sides (and through the caller, everybody) are
 * told. Chat lines and files go over each pair's own channels, so nothing is
 * relayed and anyone leaving ends only their own pairs.
 */
import { PeerdialError } from '../errors.js';
import { LIMITS } from '../wire/limits.js';
import type { GroupField } from '../wire/message.js';

/**
 * The member list of a new group: the caller first, then the callees in the
 * order given, each once. Refuses more than LIMITS.groupMembers, fewer than
 * two callees (that is an ordinary call) and calling oneself.
 */
export function groupMembers(caller: string, callees: readonly string[]): string[] {
  const members = [caller];
  for (const c of callees) {
    if (c === caller) throw new PeerdialError('USAGE', `${c} is you: a group call names the others.`);
    if (!members.includes(c)) members.push(c);
  }
  if (members.length > LIMITS.groupMembers) {
    throw new PeerdialError('LIMIT_EXCEEDED', `A group call has at most ${LIMITS.groupMembers} members, you included; this one would have ${members.length}.`, {
      hint: `Call at most ${LIMITS.groupMembers - 1} people at once (every pair connects directly: ${pairCount(LIMITS.groupMembers)} connections at most).`,
    });
  }
  if (members.length < 3) throw new PeerdialError('USAGE', 'A group call names at least two other people; for one, make an ordinary call.');
  return members;
}

/** Connections in a full mesh of `n` members. */
export function pairCount(n: number): number {
  return (n * (n - 1)) / 2;
}

/** The member of the pair (a, b) that offers: the earlier one in the list. */
export function offererOf(members: readonly string[], a: string, b: string): string {
  return members.indexOf(a) < members.indexOf(b) ? a : b;
}

export interface LeftOut {
  /** The member that offers (earlier in the list) and the one that would answer. */
  offerer: string;
  answerer: string;
  /** Who does not know whom, in words. */
  why: string;
}

export interface PairPlan {
  /** Members `me` offers to (later in the list, known as contacts), in list order. */
  offerTo: string[];
  /** Members whose offer `me` waits for (earlier in the list, known as contacts). */
  expectFrom: string[];
  /** Pairs with `me` that are left out because `me` does not know the other member. */
  leftOut: LeftOut[];
}

/**
 * What `me` does in the group: offer to the later members it knows, wait
 * for the earlier ones it knows; a member it does not know (no contact, or
 * no key, or blocked) is a pair left out. `knows` says whether `me` has the
 * member as a contact that may be called (its key pinned).
 */
export function pairPlan(me: string, members: readonly string[], knows: (member: string) => boolean): PairPlan {
  const mine = members.indexOf(me);
  if (mine < 0) throw new PeerdialError('USAGE', `${me} is not a member of this group.`);
  const plan: PairPlan = { offerTo: [], expectFrom: [], leftOut: [] };
  members.forEach((other, i) => {
    if (i === mine) return;
    const earlier = i < mine;
    if (!knows(other)) {
      plan.leftOut.push({
        offerer: earlier ? other : me,
        answerer: earlier ? me : other,
        why: `${me} does not have ${other} as a contact with a key`,
      });
      return;
    }
    (earlier ? plan.expectFrom : plan.offerTo).push(other);
  });
  return plan;
}

/** The group of a new group call. */
export function newGroup(id: string, members: readonly string[]): GroupField {
  return { id, members: [...members] };
}

/** A pair left out, in one line for the user. */
export function leftOutLine(l: LeftOut): string {
  return `no connection between ${l.offerer} and ${l.answerer}: ${l.why}; they do not hear each other (everybody else does)`;
}
