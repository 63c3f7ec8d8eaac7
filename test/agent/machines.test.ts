/**
 * The call state machines on their own: pure tables, fed typed events,
 * compared as whole lists of states and outputs (no mail, no sockets).
 */
import { describe, expect, it } from 'vitest';
import { newCaller, type CallerEvent, type CallerOutput } from '../../src/agent/caller.js';
import { newCallee, type CalleeEvent, type CalleeOutput } from '../../src/agent/callee.js';
import { decide, type PolicyInput } from '../../src/agent/policy.js';
import type { Contact } from '../../src/store/contacts.js';

function runCaller(events: CallerEvent[]): { states: string[]; outputs: CallerOutput[] } {
  const m = newCaller();
  const outputs: CallerOutput[] = [];
  for (const e of events) outputs.push(...m.handle(e));
  return { states: m.history, outputs };
}

function runCallee(events: CalleeEvent[]): { states: string[]; outputs: CalleeOutput[] } {
  const m = newCallee();
  const outputs: CalleeOutput[] = [];
  for (const e of events) outputs.push(...m.handle(e));
  return { states: m.history, outputs };
}

describe('the caller', () => {
  it('a call that connects and is hung up: the bye goes over the channel, no mail', () => {
    const r = runCaller([
      { type: 'session-gathered', sdp: 'v=0 offer' },
      { type: 'outbox-sent' },
      { type: 'peer-answer', sdp: 'v=0 answer' },
      { type: 'session-connected' },
      { type: 'user-hangup' },
    ]);
    expect(r.states).toEqual(['gathering', 'offer-queued', 'offer-sent', 'connecting', 'connected', 'closed']);
    expect(r.outputs).toEqual([
      { to: 'outbox', send: 'offer', sdp: 'v=0 offer' },
      { to: 'clock', start: 'ring' },
      { to: 'session', do: 'apply-answer', sdp: 'v=0 answer' },
      { to: 'clock', start: 'connect' },
      { to: 'clock', stop: 'all' },
      { to: 'log', outcome: 'connected' },
      { to: 'session', do: 'say-bye' },
      { to: 'session', do: 'close' },
      { to: 'log', outcome: 'hung-up', detail: 'by the caller' },
    ]);
  });

  it('nobody answers before the offer expires: timed out, and a cancel is mailed', () => {
    const r = runCaller([{ type: 'session-gathered', sdp: 's' }, { type: 'outbox-sent' }, { type: 'clock-ring-timeout' }]);
    expect(r.states).toEqual(['gathering', 'offer-queued', 'offer-sent', 'timed-out']);
    expect(r.outputs).toContainEqual({ to: 'outbox', send: 'cancel' });
    expect(r.outputs.at(-1)).toEqual({ to: 'log', outcome: 'timed-out', detail: 'no answer before the offer expired' });
  });

  it('Ctrl-C while it rings sends cancel; Ctrl-C while gathering sends nothing', () => {
    const ringing = runCaller([{ type: 'session-gathered', sdp: 's' }, { type: 'user-cancel' }]);
    expect(ringing.states.at(-1)).toBe('cancelled');
    expect(ringing.outputs).toContainEqual({ to: 'outbox', send: 'cancel' });
    const early = runCaller([{ type: 'user-cancel' }]);
    expect(early.states).toEqual(['gathering', 'cancelled']);
    expect(early.outputs.some((o) => o.to === 'outbox')).toBe(false);
  });

  it('declined and busy end the call without mail back', () => {
    const d = runCaller([{ type: 'session-gathered', sdp: 's' }, { type: 'peer-decline', text: 'later' }]);
    expect(d.states.at(-1)).toBe('declined');
    expect(d.outputs.filter((o) => o.to === 'outbox')).toHaveLength(1);
    const b = runCaller([{ type: 'session-gathered', sdp: 's' }, { type: 'outbox-sent' }, { type: 'peer-busy' }]);
    expect(b.states.at(-1)).toBe('busy');
  });

  it('a connection that dies without a bye is told by hangup mail', () => {
    const r = runCaller([
      { type: 'session-gathered', sdp: 's' },
      { type: 'peer-answer', sdp: 'a' },
      { type: 'session-connected' },
      { type: 'session-closed', reason: 'ice failed' },
    ]);
    expect(r.states.at(-1)).toBe('closed');
    expect(r.outputs).toContainEqual({ to: 'outbox', send: 'hangup' });
  });

  it('a connection failure a fresh offer cures: back to gathering, same call, no mail but the new offer', () => {
    const r = runCaller([
      { type: 'session-gathered', sdp: 'first' },
      { type: 'peer-answer', sdp: 'a1' },
      { type: 'session-retry', reason: 'the connection failed without timing out' },
      { type: 'session-gathered', sdp: 'second' },
      { type: 'peer-answer', sdp: 'a2' },
      { type: 'session-connected' },
    ]);
    expect(r.states).toEqual(['gathering', 'offer-queued', 'connecting', 'gathering', 'offer-queued', 'connecting', 'connected']);
    expect(r.outputs.filter((o) => o.to === 'outbox')).toEqual([
      { to: 'outbox', send: 'offer', sdp: 'first' },
      { to: 'outbox', send: 'offer', sdp: 'second' },
    ]);
    expect(r.outputs).toContainEqual({ to: 'log', outcome: 'retrying', detail: 'the connection failed without timing out' });
  });

  it('events a state does not expect change nothing (a late answer after a cancel)', () => {
    const m = newCaller();
    m.handle({ type: 'session-gathered', sdp: 's' });
    m.handle({ type: 'user-cancel' });
    expect(m.handle({ type: 'peer-answer', sdp: 'late' })).toEqual([]);
    expect(m.state).toBe('cancelled');
    expect(m.done).toBe(true);
  });
});

describe('the callee', () => {
  it('auto-answer: answer mailed, connected, the caller hangs up over the channel', () => {
    const r = runCallee([
      { type: 'policy-auto-answer' },
      { type: 'session-answered', sdp: 'v=0 answer' },
      { type: 'outbox-sent' },
      { type: 'session-connected' },
      { type: 'peer-hangup', how: 'channel' },
    ]);
    expect(r.states).toEqual(['offer-received', 'answering', 'answer-queued', 'connecting', 'connected', 'closed']);
    expect(r.outputs.slice(0, 3)).toEqual([
      { to: 'session', do: 'answer' },
      { to: 'outbox', send: 'answer', sdp: 'v=0 answer' },
      { to: 'clock', start: 'connect' },
    ]);
  });

  it('ringing, then the caller cancels: a missed call', () => {
    const r = runCallee([{ type: 'policy-ring' }, { type: 'peer-cancel' }]);
    expect(r.states).toEqual(['offer-received', 'ringing', 'missed']);
    expect(r.outputs).toContainEqual({ to: 'user', ring: true });
    expect(r.outputs).toContainEqual({ to: 'user', stopRinging: true });
    expect(r.outputs.at(-1)).toEqual({ to: 'log', outcome: 'missed', detail: 'the caller hung up while it rang' });
  });

  it('declined by the user: a decline mail with the text', () => {
    const r = runCallee([{ type: 'policy-ring' }, { type: 'user-decline', text: 'in a meeting' }]);
    expect(r.states.at(-1)).toBe('declined');
    expect(r.outputs).toContainEqual({ to: 'outbox', send: 'decline', text: 'in a meeting' });
  });

  it('denied by policy: nothing goes back, no session is made', () => {
    const r = runCallee([{ type: 'policy-deny', reason: 'x is blocked' }]);
    expect(r.states).toEqual(['offer-received', 'denied']);
    expect(r.outputs.some((o) => o.to === 'outbox')).toBe(false);
    expect(r.outputs.some((o) => o.to === 'session' && o.do === 'answer')).toBe(false);
  });

  it('busy: a decline that says busy; expired: a missed call, nothing sent', () => {
    expect(runCallee([{ type: 'policy-busy' }]).outputs).toContainEqual({ to: 'outbox', send: 'busy' });
    const e = runCallee([{ type: 'policy-expired' }]);
    expect(e.states).toEqual(['offer-received', 'missed']);
    expect(e.outputs.some((o) => o.to === 'outbox' || (o.to === 'session' && o.do === 'answer'))).toBe(false);
  });
});

describe('policy', () => {
  const now = new Date('2026-11-25T12:00:00Z');
  const contact = (over: Partial<Contact> = {}): Contact => ({ name: 'alice', email: 'alice@example.test', aliases: [], verified: false, blocked: false, announce: true, added: '', ...over });
  const base: PolicyInput = { from: 'alice@example.test', contact: contact(), whoMayCall: 'contacts', defaultAnswer: 'ring', activeCalls: 0, singleCall: false, expires: '2026-11-25T12:02:00Z', now };

  it.each([
    ['a contact, default ring', {}, 'policy-ring'],
    ['a contact set to auto-answer, key introduced', { contact: contact({ answer: 'auto-answer', trust: 'introduced' }) }, 'policy-auto-answer'],
    ['a contact set to auto-answer, key verified', { contact: contact({ answer: 'auto-answer', trust: 'verified' }) }, 'policy-auto-answer'],
    ['a contact set to auto-answer whose key was only learned: it rings, no more', { contact: contact({ answer: 'auto-answer', trust: 'learned' }) }, 'policy-ring'],
    ['a contact set to deny', { contact: contact({ answer: 'deny' }) }, 'policy-deny'],
    ['a blocked contact, even when everybody may call', { contact: contact({ blocked: true }), whoMayCall: 'everybody' as const }, 'policy-deny'],
    ['a stranger, contacts only', { contact: undefined }, 'policy-deny'],
    ['a stranger, everybody may call', { contact: undefined, whoMayCall: 'everybody' as const }, 'policy-ring'],
    ['anybody, nobody may call', { whoMayCall: 'nobody' as const }, 'policy-deny'],
    ['an expired offer', { expires: '2026-11-25T11:59:59Z' }, 'policy-expired'],
    ['single-call and already in one', { singleCall: true, activeCalls: 1 }, 'policy-busy'],
    ['listen: answers whatever the mode, key introduced', { forceAnswer: true, contact: contact({ trust: 'introduced' }) }, 'policy-auto-answer'],
    ['listen: a key only learned still only rings', { forceAnswer: true, contact: contact({ trust: 'learned' }) }, 'policy-ring'],
    ['listen never answers a blocked caller', { forceAnswer: true, contact: contact({ blocked: true }) }, 'policy-deny'],
  ] as [string, Partial<PolicyInput>, string][])('%s', (_what, over, want) => {
    expect(decide({ ...base, ...over }).type).toBe(want);
  });
});
