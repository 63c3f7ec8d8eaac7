/**
 * A group call of three through the real Postfix + Dovecot: alice calls
 * hitoshi and carol at once; every pair connects directly (loopback), the
 * offers travelling by mail (alice to both, hitoshi, earlier in the list,
 * to carol). A line from each reaches the other two with its sender, a
 * file to the group arrives whole at both, and hitoshi leaving leaves
 * alice and carol talking. A member who does not know another is told so,
 * and so is everybody else; that pair is left out. A group offer is a call
 * like any other: from a non-contact it is never answered by itself.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from '../harness/system.js';
import { startMailStack, type MailStack } from '../harness/mail-stack.js';
import { introduce, makePeer, tempDir, waitFor, type Peer } from '../harness/peers.js';
import { agentOf, type RecordedAgent } from '../harness/agents.js';
import type { GroupCall, GroupEvent } from '../../src/agent/group.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
let carol: Peer;
let dave: Peer;
let erin: Peer;

/** Generous: offers and answers travel through the real mail stack on a busy machine. */
const MAIL_WAIT = 180_000;

beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice', 'hitoshi', 'carol', 'dave', 'erin'] });
  dir = await tempDir('group');
  alice = await makePeer(stack, 'alice', dir, { ringSeconds: 120 });
  hitoshi = await makePeer(stack, 'hitoshi', dir, { answer: 'auto-answer', ringSeconds: 120 });
  carol = await makePeer(stack, 'carol', dir, { answer: 'auto-answer', ringSeconds: 120 });
  dave = await makePeer(stack, 'dave', dir, { answer: 'auto-answer', ringSeconds: 120 });
  await introduce(alice, hitoshi, carol);
  // dave knows alice and carol, alice and carol know him; hitoshi and dave do not know each other
  await introduce(alice, dave);
  await introduce(carol, dave);
  // erin takes calls from anybody and answers her contacts automatically; alice is one, dave is not
  erin = await makePeer(stack, 'erin', dir, { whoMayCall: 'everybody', answer: 'auto-answer', ringSeconds: 120 });
  await introduce(alice, erin);
  // dave has erin's key (so his offer can be encrypted to her), she has nothing of his
  const daveAccount = await dave.open();
  const erinAccount = await erin.open();
  await daveAccount.contacts.add({ name: 'erin', email: erin.email });
  await daveAccount.contacts.pinKey(erin.email, erinAccount.identity.armoredPublicKey, erinAccount.identity.fingerprint, 'manual');
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** A member's agent, with the group it joins (or starts) and everything that happens in it. */
interface Member {
  peer: Peer;
  agent: RecordedAgent;
  group?: GroupCall;
  events: GroupEvent[];
}

async function member(peer: Peer): Promise<Member> {
  const m: Member = { peer, events: [] } as unknown as Member;
  m.agent = await agentOf(peer, {
    onGroup: (g) => {
      m.group = g;
      g.on((e) => m.events.push(e));
    },
  });
  return m;
}

function linesOf(m: Member): string[] {
  return m.events.flatMap((e) => (e.type === 'line' ? [`${e.from}: ${e.text}`] : [])).sort();
}

async function connectedTo(m: Member, ...others: Peer[]): Promise<void> {
  const want = others.map((o) => o.email).sort();
  await waitFor(`${m.peer.name} connected to ${others.map((o) => o.name).join(' and ')}`, () => m.group && JSON.stringify(m.group.connected().sort()) === JSON.stringify(want), MAIL_WAIT, 200);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('alice calls hitoshi and carol at once', () => {
  it('every pair connects; lines, a file to the group, and hitoshi leaving', async () => {
    const a = await member(alice);
    const h = await member(hitoshi);
    const c = await member(carol);
    try {
      a.group = await a.agent.agent.groups.start(['hitoshi', 'carol']);
      expect(a.group.members).toEqual([alice.email, hitoshi.email, carol.email]);
      await connectedTo(a, hitoshi, carol);
      await connectedTo(h, alice, carol);
      await connectedTo(c, alice, hitoshi);
      // every pair is direct, on loopback
      for (const m of [a, h, c]) {
        for (const e of m.events) if (e.type === 'pair-connected') expect(e.path).toMatch(/direct/);
      }
      // the pair hitoshi-carol was offered by hitoshi, the earlier of the two
      const hc = h.agent.events.flatMap((e) => (e.type === 'connected' && 'call' in e && e.call.peer === carol.email ? [e.call] : []));
      expect(hc.map((call) => call.direction)).toEqual(['out']);
      expect(hc[0]!.group?.members).toEqual([alice.email, hitoshi.email, carol.email]);

      // a line from each reaches the other two, named by its sender
      expect((await a.group.say('hello from alice')).sort()).toEqual([carol.email, hitoshi.email].sort());
      expect((await h.group!.say('hitoshi here')).sort()).toEqual([alice.email, carol.email].sort());
      expect((await c.group!.say('carol too')).sort()).toEqual([alice.email, hitoshi.email].sort());
      await waitFor('every line at every member', () => [a, h, c].every((m) => linesOf(m).length === 2), MAIL_WAIT, 100);
      expect(linesOf(a)).toEqual([`${carol.email}: carol too`, `${hitoshi.email}: hitoshi here`]);
      expect(linesOf(h)).toEqual([`${alice.email}: hello from alice`, `${carol.email}: carol too`]);
      expect(linesOf(c)).toEqual([`${alice.email}: hello from alice`, `${hitoshi.email}: hitoshi here`]);

      // a file to the group arrives at both, whole
      const file = path.join(dir, 'group-photo.bin');
      const data = randomBytes(2 * 1024 * 1024 + 5);
      await fs.writeFile(file, data);
      const sent = await a.group.sendFile(file);
      expect(sent.map((r) => [r.peer, r.sent?.status, r.error]).sort()).toEqual([
        [carol.email, 'sent', undefined],
        [hitoshi.email, 'sent', undefined],
      ].sort());
      for (const m of [h, c]) {
        const got = await waitFor(`${m.peer.name} saved the file`, () => m.events.find((e): e is Extract<GroupEvent, { type: 'file' }> => e.type === 'file'), MAIL_WAIT, 100);
        expect(got).toMatchObject({ from: alice.email, name: 'group-photo.bin', status: 'saved' });
        expect(path.dirname(got.path!)).toBe(m.peer.downloadDir);
        expect(sha256(await fs.readFile(got.path!))).toBe(sha256(data));
      }

      // hitoshi leaves: alice and carol stay connected and still talk
      await h.group!.leave();
      await waitFor('alice saw hitoshi leave', () => a.events.some((e) => e.type === 'left' && e.peer === hitoshi.email), MAIL_WAIT, 100);
      await waitFor('carol saw hitoshi leave', () => c.events.some((e) => e.type === 'left' && e.peer === hitoshi.email), MAIL_WAIT, 100);
      expect(a.group.connected()).toEqual([carol.email]);
      expect(c.group!.connected()).toEqual([alice.email]);
      expect(await c.group!.say('still here?')).toEqual([alice.email]);
      await waitFor('alice got carol\'s line after hitoshi left', () => linesOf(a).includes(`${carol.email}: still here?`), MAIL_WAIT, 100);
      expect(await a.group.say('yes')).toEqual([carol.email]);
      await waitFor('carol got alice\'s answer', () => linesOf(c).includes(`${alice.email}: yes`), MAIL_WAIT, 100);
      // hitoshi heard nothing after he left
      expect(linesOf(h)).not.toContain(`${carol.email}: still here?`);
    } finally {
      await a.agent.agent.stop();
      await h.agent.agent.stop();
      await c.agent.agent.stop();
    }
  }, 600_000);

  it('hitoshi does not know dave: that pair is left out, and every member is told', async () => {
    const a = await member(alice);
    const h = await member(hitoshi);
    const d = await member(dave);
    try {
      a.group = await a.agent.agent.groups.start(['hitoshi', 'dave']);
      await connectedTo(a, hitoshi, dave);
      await connectedTo(h, alice);
      await connectedTo(d, alice);
      const leftOut = (m: Member) => waitFor(`${m.peer.name} told of the pair left out`, () => m.events.find((e): e is Extract<GroupEvent, { type: 'left-out' }> => e.type === 'left-out'), MAIL_WAIT, 100);
      for (const m of [a, h, d]) {
        const l = await leftOut(m);
        expect(l).toMatchObject({ offerer: hitoshi.email, answerer: dave.email });
        expect(l.line).toContain(`no connection between ${hitoshi.email} and ${dave.email}`);
      }
      // hitoshi made no offer to dave (he does not know him): no call between them in either log
      expect(h.agent.events.some((e) => e.type === 'state' && e.peer === dave.email)).toBe(false);
      // the rest of the group talks
      expect((await a.group.say('hi both')).sort()).toEqual([dave.email, hitoshi.email].sort());
      await waitFor('both got alice\'s line', () => linesOf(h).length === 1 && linesOf(d).length === 1, MAIL_WAIT, 100);
      expect(h.group!.connected()).toEqual([alice.email]);
    } finally {
      await a.agent.agent.stop();
      await h.agent.agent.stop();
      await d.agent.agent.stop();
    }
  }, 600_000);

  it('a group offer from somebody who is not a contact is never answered by itself, even where contacts are', async () => {
    const d = await member(dave);
    const e = await member(erin);
    // alice's calls ring (her default); she takes dave's here
    const a = await member(alice);
    const taken = new Set<string>();
    const taking = setInterval(() => {
      for (const ev of a.agent.events) {
        if (ev.type === 'ringing' && ev.call.peer === dave.email && !taken.has(ev.call.callId)) {
          taken.add(ev.call.callId);
          ev.call.accept();
        }
      }
    }, 100);
    try {
      d.group = await d.agent.agent.groups.start(['alice', 'erin']);
      // alice (erin's contact) connects to erin: her offer is answered automatically
      await connectedTo(a, dave, erin);
      await connectedTo(e, alice);
      // erin does not know dave: that pair is left out, dave is told, and his offer is withdrawn
      const l = await waitFor('dave told of the pair left out', () => d.events.find((ev): ev is Extract<GroupEvent, { type: 'left-out' }> => ev.type === 'left-out'), MAIL_WAIT, 100);
      expect(l).toMatchObject({ offerer: dave.email, answerer: erin.email, why: `${erin.email} does not have ${dave.email} as a contact with a key` });
      await waitFor('dave\'s offer to erin ended', () => d.agent.events.some((ev) => ev.type === 'ended' && ev.peer === erin.email), MAIL_WAIT, 100);
      // erin's agent never answered dave (his mail is a stranger's: set aside, at most it would ring)
      expect(e.agent.events.some((ev) => ev.type === 'state' && ev.peer === dave.email && ev.state === 'answering')).toBe(false);
      expect(e.agent.events.some((ev) => ev.type === 'connected' && 'call' in ev && ev.call.peer === dave.email)).toBe(false);
      expect(d.group.connected()).toEqual([alice.email]);
      expect(e.group!.connected()).toEqual([alice.email]);
    } finally {
      clearInterval(taking);
      await d.agent.agent.stop();
      await a.agent.agent.stop();
      await e.agent.agent.stop();
    }
  }, 600_000);
});
