/**
 * The restart machine (src/agent/restart.ts) on its own: alice and hitoshi
 * are in a call; an address changes; the machine is fed typed events and
 * its whole lists of states and outputs are compared.
 */
import { describe, expect, it } from 'vitest';
import { Restart, type RestartEvent, type RestartOutput } from '../../src/agent/restart.js';
import { controlPathUsable, restartLogEntry } from '../../src/agent/restart-call.js';
import { acceptUpdate } from '../../src/wire/update.js';

const CALL = 'call-id-0000000000000001';

function machine(o: { caller: boolean; controlOpen?: boolean }): { r: Restart; run: (events: RestartEvent[]) => RestartOutput[] } {
  let open = o.controlOpen ?? true;
  const r = new Restart({ caller: o.caller, callId: CALL, peer: o.caller ? 'hitoshi@example.test' : 'alice@example.test', controlOpen: () => open });
  const run = (events: RestartEvent[]) => {
    const out: RestartOutput[] = [];
    for (const e of events) {
      if (e.type === 'session-lost') open = false;
      out.push(...r.handle(e));
    }
    return out;
  };
  return { r, run };
}

describe('alice (the caller) changes address mid-call', () => {
  it('the offer goes over the control channel, gets no answer there, goes by mail; the answer comes by mail: reconnected via mail', () => {
    const { r, run } = machine({ caller: true });
    const out = run([
      { type: 'address-changed', at: 10_000 },
      { type: 'session-offer-ready', sdp: 'v=0 new offer', nonce: 'nonce-offer-1' },
      { type: 'clock-mail-fallback' },
      { type: 'peer-answer', generation: 1, sdp: 'v=0 new answer', via: 'mail' },
      { type: 'session-connected', at: 14_200 },
    ]);
    expect(r.m.history).toEqual(['steady', 'offering', 'offer-sent', 'connecting', 'steady']);
    expect(out).toEqual([
      { to: 'user', say: 'address changed, reconnecting...' },
      { to: 'clock', start: 'restart' },
      { to: 'session', do: 'make-offer', generation: 1 },
      { to: 'peer', send: 'offer', generation: 1, sdp: 'v=0 new offer', nonce: 'nonce-offer-1', via: 'control' },
      { to: 'clock', start: 'mail-fallback' },
      // the same offer, the same nonce: hitoshi takes whichever copy comes first
      { to: 'peer', send: 'offer', generation: 1, sdp: 'v=0 new offer', nonce: 'nonce-offer-1', via: 'mail' },
      { to: 'clock', stop: 'mail-fallback' },
      { to: 'session', do: 'apply-answer', sdp: 'v=0 new answer' },
      { to: 'clock', stop: 'all' },
      { to: 'call', do: 'switch' },
      { to: 'log', restart: { generation: 1, cause: 'address-changed', outcome: 'reconnected', via: 'mail', ms: 4200 } },
      { to: 'user', say: 'reconnected via mail in 4.2 s' },
    ]);
  });

  it('the control channel still works (another path is left): the answer comes back on it and no mail is sent', () => {
    const { run } = machine({ caller: true });
    const out = run([
      { type: 'address-changed', at: 0 },
      { type: 'session-offer-ready', sdp: 'v=0 o', nonce: 'n1' },
      { type: 'peer-answer', generation: 1, sdp: 'v=0 a', via: 'control' },
      { type: 'clock-mail-fallback' },
      { type: 'session-connected', at: 800 },
    ]);
    expect(out.filter((o) => o.to === 'peer')).toEqual([{ to: 'peer', send: 'offer', generation: 1, sdp: 'v=0 o', nonce: 'n1', via: 'control' }]);
    expect(out).toContainEqual({ to: 'user', say: 'reconnected via the control channel in 0.8 s' });
    expect(out).toContainEqual({ to: 'log', restart: { generation: 1, cause: 'address-changed', outcome: 'reconnected', via: 'control', ms: 800 } });
  });

  it('the control channel is already closed: the offer goes by mail at once, with no fallback to wait for', () => {
    const { run } = machine({ caller: true, controlOpen: false });
    const out = run([{ type: 'address-changed', at: 0 }, { type: 'session-offer-ready', sdp: 'v=0 o', nonce: 'n1' }]);
    expect(out.slice(-1)).toEqual([{ to: 'peer', send: 'offer', generation: 1, sdp: 'v=0 o', nonce: 'n1', via: 'mail' }]);
    expect(out).not.toContainEqual({ to: 'clock', start: 'mail-fallback' });
  });

  it('no answer before the restart time is up: the call ends, and the log and the user say why', () => {
    const { r, run } = machine({ caller: true });
    const out = run([{ type: 'address-changed', at: 0 }, { type: 'session-offer-ready', sdp: 'v=0 o', nonce: 'n1' }, { type: 'clock-restart-timeout' }]);
    expect(r.m.state).toBe('ended');
    expect(r.m.done).toBe(true);
    expect(out.slice(-4)).toEqual([
      { to: 'session', do: 'drop-new' },
      { to: 'log', restart: { generation: 1, cause: 'address-changed', outcome: 'failed', detail: 'no answer to the new description before the restart time was up' } },
      { to: 'user', say: 'could not reconnect: no answer to the new description before the restart time was up' },
      { to: 'call', do: 'end', reason: 'no answer to the new description before the restart time was up' },
    ]);
  });

  it('the address changes again while the first restart is under way: a second restart, the first transport dropped', () => {
    const { r, run } = machine({ caller: true });
    const out = run([{ type: 'address-changed', at: 0 }, { type: 'session-offer-ready', sdp: 'v=0 o1', nonce: 'n1' }, { type: 'address-changed', at: 500 }, { type: 'session-offer-ready', sdp: 'v=0 o2', nonce: 'n2' }]);
    expect(r.generation).toBe(2);
    expect(out).toContainEqual({ to: 'session', do: 'drop-new' });
    expect(out).toContainEqual({ to: 'session', do: 'make-offer', generation: 2 });
    expect(out.filter((o) => o.to === 'user')).toEqual([{ to: 'user', say: 'address changed, reconnecting...' }]);
    // hitoshi's answer to the first restart is refused before it reaches the machine
    expect(acceptUpdate({ callId: CALL, nonce: 'answer-to-the-first-one', generation: 1, role: 'answer', sdp: 'v=0' }, 'hitoshi@example.test', r.context())).toMatchObject({ ok: false, reason: 'unexpected-answer' });
  });
});

describe('alice has no address for a while (the old lease is gone, the new one not yet there)', () => {
  it('nothing is offered until the next address comes; then one restart, timed from the loss', () => {
    const { r, run } = machine({ caller: true, controlOpen: false });
    const out = run([
      { type: 'address-gone', at: 1_000 },
      { type: 'clock-grace' },
      { type: 'address-changed', at: 3_000 },
      { type: 'session-offer-ready', sdp: 'v=0 o', nonce: 'n1' },
      { type: 'peer-answer', generation: 1, sdp: 'v=0 a', via: 'mail' },
      { type: 'session-connected', at: 6_000 },
    ]);
    expect(r.m.history).toEqual(['steady', 'waiting', 'offering', 'offer-sent', 'connecting', 'steady']);
    expect(out.filter((o) => o.to === 'session' && o.do === 'make-offer')).toHaveLength(1);
    expect(out).toContainEqual({ to: 'log', restart: { generation: 1, cause: 'address-changed', outcome: 'reconnected', via: 'mail', ms: 5000 } });
  });

  it('the address goes while the new transport is being offered: it is dropped, and the next address starts a new one', () => {
    const { r, run } = machine({ caller: true });
    const out = run([{ type: 'address-changed', at: 0 }, { type: 'session-offer-ready', sdp: 'v=0 o1', nonce: 'n1' }, { type: 'address-gone', at: 100 }, { type: 'address-changed', at: 200 }]);
    expect(r.m.history).toEqual(['steady', 'offering', 'offer-sent', 'waiting', 'offering']);
    expect(out).toContainEqual({ to: 'session', do: 'drop-new' });
    expect(out.at(-1)).toEqual({ to: 'session', do: 'make-offer', generation: 2 });
  });
});

describe('hitoshi (the callee) sees alice restart', () => {
  it('her offer comes by mail: the answer goes back by mail; the log says the peer restarted', () => {
    const { r, run } = machine({ caller: false });
    const out = run([
      { type: 'session-lost', at: 1_000, reason: 'the connection failed' },
      { type: 'peer-offer', at: 3_000, generation: 1, sdp: 'v=0 her offer', via: 'mail' },
      { type: 'session-answer-ready', sdp: 'v=0 my answer', nonce: 'n-answer' },
      { type: 'session-connected', at: 4_500 },
    ]);
    expect(r.m.history).toEqual(['steady', 'waiting', 'answering', 'connecting', 'steady']);
    expect(out).toEqual([
      { to: 'user', say: 'connection lost, reconnecting...' },
      { to: 'clock', start: 'restart' },
      { to: 'clock', start: 'grace' },
      { to: 'session', do: 'make-answer', generation: 1, sdp: 'v=0 her offer' },
      { to: 'peer', send: 'answer', generation: 1, sdp: 'v=0 my answer', nonce: 'n-answer', via: 'mail' },
      { to: 'clock', stop: 'all' },
      { to: 'call', do: 'switch' },
      { to: 'log', restart: { generation: 1, cause: 'peer-restarted', outcome: 'reconnected', via: 'mail', ms: 3500 } },
      { to: 'user', say: 'reconnected via mail in 3.5 s' },
    ]);
  });

  it('her offer comes before he noticed anything: he answers on the way it came', () => {
    const { run } = machine({ caller: false });
    const out = run([{ type: 'peer-offer', at: 0, generation: 1, sdp: 'v=0 o', via: 'control' }, { type: 'session-answer-ready', sdp: 'v=0 a', nonce: 'na' }]);
    expect(out[0]).toEqual({ to: 'user', say: "the peer's address changed, reconnecting..." });
    expect(out.at(-1)).toEqual({ to: 'peer', send: 'answer', generation: 1, sdp: 'v=0 a', nonce: 'na', via: 'control' });
  });

  it('his answer went over the dying control channel; her offer comes again by mail: the same answer goes by mail', () => {
    const { r, run } = machine({ caller: false });
    run([{ type: 'peer-offer', at: 0, generation: 1, sdp: 'v=0 o', via: 'control' }, { type: 'session-answer-ready', sdp: 'v=0 a', nonce: 'na' }]);
    r.seen.add('n-offer');
    // the runtime: acceptUpdate refuses the mailed copy as replayed, and says so to the machine
    expect(acceptUpdate({ callId: CALL, nonce: 'n-offer', generation: 1, role: 'offer', sdp: 'v=0 o' }, 'alice@example.test', r.context())).toMatchObject({ reason: 'replayed' });
    const out = run([{ type: 'peer-offer-again', generation: 1, via: 'mail' }, { type: 'session-connected', at: 2_000 }]);
    expect(out[0]).toEqual({ to: 'peer', send: 'answer', generation: 1, sdp: 'v=0 a', nonce: 'na', via: 'mail' });
    expect(out).toContainEqual({ to: 'user', say: 'reconnected via mail in 2.0 s' });
  });

  it('the connection is lost and nobody noticed a change: the callee waits, the caller offers after the grace time', () => {
    const callee = machine({ caller: false });
    expect(callee.run([{ type: 'session-lost', at: 0, reason: 'x' }, { type: 'clock-grace' }]).filter((o) => o.to === 'session')).toEqual([]);
    expect(callee.r.m.state).toBe('waiting');
    const caller = machine({ caller: true });
    const out = caller.run([{ type: 'session-lost', at: 0, reason: 'x' }, { type: 'clock-grace' }, { type: 'session-offer-ready', sdp: 'v=0 o', nonce: 'n1' }]);
    expect(out).toContainEqual({ to: 'session', do: 'make-offer', generation: 1 });
    // the control channel died with the transport: straight to mail
    expect(out.at(-1)).toEqual({ to: 'peer', send: 'offer', generation: 1, sdp: 'v=0 o', nonce: 'n1', via: 'mail' });
  });
});

describe('both addresses change at once', () => {
  it('the two offers cross: the caller keeps its own and waits for the answer; the callee drops its own and answers', () => {
    const alice = machine({ caller: true });
    const hitoshi = machine({ caller: false });
    const start: RestartEvent[] = [{ type: 'address-changed', at: 0 }, { type: 'session-offer-ready', sdp: 'v=0 mine', nonce: 'n1' }];
    alice.run(start);
    hitoshi.run(start);
    const crossing: RestartEvent = { type: 'peer-offer', at: 100, generation: 1, sdp: 'v=0 theirs', via: 'control' };
    expect(alice.run([crossing])).toEqual([]);
    expect(alice.r.m.state).toBe('offer-sent');
    expect(hitoshi.run([crossing])).toEqual([
      { to: 'clock', stop: 'mail-fallback' },
      { to: 'session', do: 'drop-new' },
      { to: 'session', do: 'make-answer', generation: 1, sdp: 'v=0 theirs' },
    ]);
    expect(hitoshi.r.m.state).toBe('answering');
  });
});

describe('an update mail at the phone', () => {
  it('for no call in progress here: refused as unknown-call, never shown as a message', async () => {
    const { Phone } = await import('../../src/agent/phone.js');
    const events: Array<{ type: string; reason?: string }> = [];
    const phone = new Phone({ account: {} as never, send: () => undefined, onEvent: (e: unknown) => events.push(e as never) } as never);
    await phone.handleVerified(
      { v: 1, kind: 'update', from: 'alice@example.test', to: 'hitoshi@example.test', callId: CALL, created: '2026-01-01T00:00:00Z', expires: '2026-01-01T00:05:00Z', nonce: 'nonce-of-the-update-1', addresses: [], sdp: 'v=0', restart: { generation: 1, role: 'offer' } },
      '<update-1@example.test>',
    );
    expect(events).toEqual([expect.objectContaining({ type: 'mail-rejected', reason: 'unknown-call' })]);
  });
});

describe('whether the control channel may carry the update', () => {
  it('not when its path left from a host address alice no longer has; yes while she still has it, or when the path says nothing of her addresses', () => {
    expect(controlPathUsable(true, 'host 198.18.0.11:48532/udp', ['198.18.0.111'])).toBe(false);
    expect(controlPathUsable(true, 'host 198.18.0.11:48532/udp', ['198.18.0.11', '198.18.0.111'])).toBe(true);
    expect(controlPathUsable(true, 'host [2001:db8::5]:4000/udp', ['2001:db8::5'])).toBe(true);
    expect(controlPathUsable(true, 'srflx 203.0.113.5:4000/udp', [])).toBe(true);
    expect(controlPathUsable(false, 'host 198.18.0.11:48532/udp', ['198.18.0.11'])).toBe(false);
  });
});

describe('the call log line of a restart', () => {
  const call = { at: '2026-12-01T10:00:00.000Z', direction: 'out' as const, peer: 'hitoshi@example.test', callId: CALL };
  it('reconnected: how the description travelled and how long it took', () => {
    expect(restartLogEntry({ generation: 2, cause: 'address-changed', outcome: 'reconnected', via: 'control', ms: 812 }, call)).toEqual({
      ...call,
      outcome: 'restarted',
      detail: 'restart 2: address changed; new description by control channel; reconnected in 0.8 s',
    });
  });
  it('failed: why', () => {
    expect(restartLogEntry({ generation: 1, cause: 'connection-lost', outcome: 'failed', detail: 'no new connection before the restart time was up' }, call)).toEqual({
      ...call,
      outcome: 'restart-failed',
      detail: 'restart 1: connection lost; failed: no new connection before the restart time was up',
    });
  });
});
