/**
 * One-mail calls, the bookkeeping on both sides (no mail, no sockets):
 * hitoshi's agent keeps a standing answer for alice and honours it for one
 * offer; alice holds it in her store and uses it for one call. Used twice,
 * used after it expired, used by a contact whose key is only learned, or
 * replaced by a newer one: refused with its code, and the call goes with
 * two mails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import { StandingKeeper, makeStanding, takeStanding } from '../../src/agent/one-mail.js';
import { StandingStore } from '../../src/store/standing.js';
import { validateStanding } from '../../src/wire/standing.js';
import { tempDir } from '../harness/peers.js';

const ALICE = 'alice@example.test';
const HITOSHI = 'hitoshi@example.test';
const BOB = 'bob@example.test';
const T0 = new Date('2025-06-01T10:00:00.000Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);
const identity = {
  iceUfrag: 'Hs7q',
  icePwd: 'r8Yv2kQp0sLm4nZx6cWb9tJd',
  fingerprint: '82:5F:FF:82:CD:FF:8F:71:42:EA:EE:D3:05:8C:DA:B2:61:8F:75:AE:17:2D:A9:92:36:C9:5B:28:7D:37:A7:40',
  candidates: ['candidate:1 1 UDP 2114977791 10.0.0.5 45495 typ host'],
};

/** Hitoshi's keeper; what it released (port and certificate given back), in order. */
function hitoshisKeeper() {
  const released: string[] = [];
  const keeper = new StandingKeeper<{ port: number }>((kept, s) => released.push(`${s.to} port ${kept.port}`));
  return { keeper, released };
}

describe("hitoshi's agent keeps a standing answer for alice", () => {
  it('is a valid standing answer from hitoshi for alice, valid for an hour', () => {
    const s = makeStanding(HITOSHI, ALICE, identity, T0);
    expect(validateStanding(s).ok).toBe(true);
    expect(s.expires).toBe('2025-06-01T11:00:00.000Z');
  });

  it("alice's offer naming it is honoured once; a second offer naming it is refused as used", () => {
    const { keeper, released } = hitoshisKeeper();
    const s = makeStanding(HITOSHI, ALICE, identity, T0);
    keeper.issue(s, { port: 45495 });
    const first = keeper.honour(s.id, ALICE, 'introduced', at(60));
    expect(first).toEqual({ ok: true, standing: s, kept: { port: 45495 } });
    const second = keeper.honour(s.id, ALICE, 'introduced', at(90));
    expect(second.ok ? 'honoured' : second.error.code).toBe('STANDING_ANSWER_USED');
    // the session that served the first call owns the port now: nothing is released
    expect(released).toEqual([]);
  });

  it('an offer naming it after it expired is refused as expired, and its port and certificate are released', () => {
    const { keeper, released } = hitoshisKeeper();
    const s = makeStanding(HITOSHI, ALICE, identity, T0, 600);
    keeper.issue(s, { port: 45495 });
    const late = keeper.honour(s.id, ALICE, 'verified', at(600));
    expect(late.ok ? 'honoured' : late.error.code).toBe('STANDING_ANSWER_EXPIRED');
    expect(late.ok ? '' : late.error.hint).toMatch(/two mails/);
    expect(released).toEqual([`${ALICE} port 45495`]);
  });

  it('nobody called: the sweep releases it when it expires, and not before', () => {
    const { keeper, released } = hitoshisKeeper();
    keeper.issue(makeStanding(HITOSHI, ALICE, identity, T0, 600), { port: 45495 });
    expect(keeper.sweep(at(599))).toBe(0);
    expect(keeper.sweep(at(600))).toBe(1);
    expect(released).toEqual([`${ALICE} port 45495`]);
    expect(keeper.size).toBe(0);
  });

  it("alice's key is only learned now: refused as untrusted; bob cannot use alice's at all", () => {
    const { keeper, released } = hitoshisKeeper();
    const s = makeStanding(HITOSHI, ALICE, identity, T0);
    keeper.issue(s, { port: 45495 });
    const bobs = keeper.honour(s.id, BOB, 'verified', at(10));
    expect(bobs.ok ? 'honoured' : bobs.error.code).toBe('STANDING_ANSWER_UNKNOWN');
    const learned = keeper.honour(s.id, ALICE, 'learned', at(20));
    expect(learned.ok ? 'honoured' : learned.error.code).toBe('STANDING_ANSWER_UNTRUSTED');
    expect(released).toEqual([`${ALICE} port 45495`]);
  });

  it('a newer one for alice withdraws the older: its port is released and an offer naming it is refused', () => {
    const { keeper, released } = hitoshisKeeper();
    const older = makeStanding(HITOSHI, ALICE, identity, T0);
    const newer = makeStanding(HITOSHI, ALICE, identity, at(300));
    keeper.issue(older, { port: 45495 });
    keeper.issue(newer, { port: 45496 });
    expect(released).toEqual([`${ALICE} port 45495`]);
    expect(keeper.current(ALICE)).toEqual(newer);
    const r = keeper.honour(older.id, ALICE, 'verified', at(400));
    expect(r.ok ? 'honoured' : r.error.code).toBe('STANDING_ANSWER_UNKNOWN');
  });
});

describe("alice holds hitoshi's standing answer", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('standing-store');
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('her first call takes it; her second goes with two mails (used), also from another process reading the same store', async () => {
    const store = new StandingStore(`${dir}/a`);
    const s = makeStanding(HITOSHI, ALICE, identity, T0);
    expect(await store.keep(s, at(1))).toBe(true);
    const first = await takeStanding(store, HITOSHI, 'verified', at(30));
    expect(first).toEqual({ ok: true, standing: s, kept: undefined });
    const second = await takeStanding(new StandingStore(`${dir}/a`), HITOSHI, 'verified', at(40));
    expect(second.ok ? 'taken' : second.error.code).toBe('STANDING_ANSWER_USED');
    expect((await store.peek(HITOSHI))?.state).toBe('used');
  });

  it('the same announce read again does not make a used standing answer fresh; a newer one does', async () => {
    const store = new StandingStore(`${dir}/b`);
    const s = makeStanding(HITOSHI, ALICE, identity, T0);
    await store.keep(s, at(1));
    await takeStanding(store, HITOSHI, 'verified', at(2));
    expect(await store.keep(s, at(3))).toBe(false);
    const again = await takeStanding(store, HITOSHI, 'verified', at(4));
    expect(again.ok ? 'taken' : again.error.code).toBe('STANDING_ANSWER_USED');
    await store.keep(makeStanding(HITOSHI, ALICE, identity, at(5)), at(5));
    expect((await takeStanding(store, HITOSHI, 'verified', at(6))).ok).toBe(true);
  });

  it('a call after it expired, or to a contact whose key is only learned, or with none held, goes with two mails', async () => {
    const store = new StandingStore(`${dir}/c`);
    await store.keep(makeStanding(HITOSHI, ALICE, identity, T0, 600), at(1));
    const late = await takeStanding(store, HITOSHI, 'verified', at(600));
    expect(late.ok ? 'taken' : late.error.code).toBe('STANDING_ANSWER_EXPIRED');
    await store.keep(makeStanding(HITOSHI, ALICE, identity, at(700)), at(700));
    const learned = await takeStanding(store, HITOSHI, 'learned', at(701));
    expect(learned.ok ? 'taken' : learned.error.code).toBe('STANDING_ANSWER_UNTRUSTED');
    const none = await takeStanding(store, BOB, 'verified', at(702));
    expect(none.ok ? 'taken' : none.error.code).toBe('STANDING_ANSWER_UNKNOWN');
  });
});
