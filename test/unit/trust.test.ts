/**
 * Trust levels, capabilities and invites, as pure rules: who may make this
 * machine do what, and how an invite's secret binds an introduction.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decide, forwardAllows, mayWake, type PolicyInput } from '../../src/agent/policy.js';
import { ContactStore, parseFingerprint, parseForwardTarget, type Contact } from '../../src/store/contacts.js';
import { introductionMac, inviteCode, inviteUri, macMatches, parseInvite } from '../../src/wire/invite.js';
import { validateMessage } from '../../src/wire/validate.js';
import { applyCapabilityWords } from '../../src/cli/run/contacts.js';
import { capabilitiesOf } from '../../src/store/contacts.js';
import { InviteStore } from '../../src/store/invites.js';
import { KeptStore, KEEP_MAX, KEEP_SECONDS } from '../../src/store/kept.js';

const NOW = new Date('2026-12-01T12:00:00Z');
const FPR = 'A'.repeat(40);

function contact(extra: Partial<Contact> = {}): Contact {
  return { name: 'bob', email: 'bob@example.org', aliases: [], verified: false, blocked: false, announce: true, added: NOW.toISOString(), answer: 'auto-answer', ...extra };
}

function offer(c: Contact | undefined, purpose: string, extra: Partial<PolicyInput> = {}) {
  return decide({ from: 'bob@example.org', ...(c ? { contact: c } : {}), whoMayCall: 'contacts', defaultAnswer: 'ring', activeCalls: 0, singleCall: false, expires: '2026-12-01T12:01:00Z', now: NOW, purpose, ...extra });
}

describe('what each trust level may make this machine do', () => {
  const introduced = contact({ fingerprint: FPR, trust: 'introduced' });
  const verified = contact({ fingerprint: FPR, trust: 'verified', verified: true });
  const learned = contact({ fingerprint: FPR, trust: 'learned' });

  it('an introduced or verified key set to auto-answer is answered, for every purpose it may use', () => {
    for (const c of [introduced, verified]) {
      for (const p of ['chat', 'file', 'pipe', 'view', 'media']) expect(offer(c, p)).toEqual({ type: 'policy-auto-answer' });
    }
  });

  it('a learned key set to auto-answer only rings for chat and media, and gets nothing at all (no mail back) for file, pipe, forward and view', () => {
    expect(offer(learned, 'chat')).toEqual({ type: 'policy-ring' });
    expect(offer(learned, 'media')).toEqual({ type: 'policy-ring' });
    for (const p of ['file', 'pipe', 'forward', 'view']) expect(offer(learned, p)).toMatchObject({ type: 'policy-deny' });
    // also when `peerdial listen` forces an answer
    expect(offer(learned, 'chat', { forceAnswer: true })).toEqual({ type: 'policy-ring' });
    // a stranger (who_may_call = everybody) is no better than a learned key
    expect(offer(undefined, 'chat', { whoMayCall: 'everybody' })).toEqual({ type: 'policy-ring' });
    expect(offer(undefined, 'view', { whoMayCall: 'everybody' })).toMatchObject({ type: 'policy-deny' });
  });

  it('a contact without the forward capability is declined; with it, only its own targets are reachable', () => {
    expect(offer(introduced, 'forward')).toEqual({ type: 'policy-refuse', text: 'forward is not allowed for bob@example.org here' });
    const fwd = contact({ fingerprint: FPR, trust: 'introduced', capabilities: { forward: ['127.0.0.1:22', 'localhost:8000-8010'] } });
    expect(offer(fwd, 'forward')).toEqual({ type: 'policy-auto-answer' });
    const allow = forwardAllows(fwd, undefined);
    expect([allow('127.0.0.1', 22), allow('127.0.0.1', 23), allow('localhost', 8005), allow('localhost', 8011), allow('10.0.0.1', 22)]).toEqual([true, false, true, false, false]);
    // the machine-wide list narrows it further
    expect(forwardAllows(fwd, (h, p) => p === 8000)('localhost', 8005)).toBe(false);
    // denied purposes are declined with a reason
    const noFiles = contact({ fingerprint: FPR, trust: 'introduced', capabilities: { file: false } });
    expect(offer(noFiles, 'file')).toMatchObject({ type: 'policy-refuse' });
  });

  it('only an introduced or verified key may wake this machine', () => {
    expect([mayWake(introduced), mayWake(verified), mayWake(learned), mayWake(contact()), mayWake(undefined)]).toEqual([true, true, false, false, false]);
  });
});

describe('capabilities from the command line', () => {
  it('allow and deny words: purposes, forward targets (no HOST:*), a file size limit', () => {
    const caps = capabilitiesOf(undefined);
    expect(caps).toMatchObject({ chat: true, file: true, forward: [], fileMaxBytes: 100 * 1024 * 1024 });
    applyCapabilityWords(caps, ['forward=127.0.0.1:22,127.0.0.1:5900-5901', 'file-max=5M'], true);
    applyCapabilityWords(caps, ['pipe', 'view'], false);
    expect(caps).toMatchObject({ pipe: false, view: false, forward: ['127.0.0.1:22', '127.0.0.1:5900-5901'], fileMaxBytes: 5 * 1024 * 1024 });
    applyCapabilityWords(caps, ['forward=127.0.0.1:22'], false);
    expect(caps.forward).toEqual(['127.0.0.1:5900-5901']);
    expect(() => applyCapabilityWords(caps, ['forward=127.0.0.1:*'], true)).toThrow(/not a forward target/);
    expect(() => applyCapabilityWords(caps, ['teleport'], true)).toThrow(/not a capability/);
    expect(parseForwardTarget('[::1]:22')).toEqual({ host: '::1', low: 22, high: 22 });
    expect(parseForwardTarget('host:30-20')).toBeUndefined();
    expect(parseFingerprint('abcd '.repeat(10))).toBe('ABCD'.repeat(10));
    expect(parseFingerprint('abcd')).toBeUndefined();
  });
});

describe('the address book keeps trust levels', () => {
  it('old records get a level from what they say; a learned key is replaced by an introduced one and reported; an introduced one only with replace', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'peerdial-trust-'));
    try {
      const base = { aliases: [], blocked: false, announce: true, added: NOW.toISOString() };
      await writeFile(path.join(dir, 'contacts.json'), JSON.stringify({ version: 1, contacts: [
        { ...base, name: 'a', email: 'a@example.org', fingerprint: FPR, publicKey: 'x', keySource: 'manual', verified: false },
        { ...base, name: 'b', email: 'b@example.org', fingerprint: FPR, publicKey: 'x', keySource: 'autocrypt', verified: true },
        { ...base, name: 'c', email: 'c@example.org', fingerprint: FPR, publicKey: 'x', keySource: 'autocrypt', verified: false },
        { ...base, name: 'd', email: 'd@example.org', verified: false },
      ] }));
      const store = new ContactStore(dir);
      expect((await store.list()).map((c) => c.trust)).toEqual(['introduced', 'verified', 'learned', undefined]);
      const other = 'B'.repeat(40);
      const r = await store.introduceKey('c@example.org', { fingerprint: other });
      expect(r.replaced).toEqual({ fingerprint: FPR, trust: 'learned' });
      expect(r.contact).toMatchObject({ fingerprint: other, trust: 'introduced' });
      expect(r.contact.publicKey).toBeUndefined();
      await expect(store.introduceKey('a@example.org', { fingerprint: other })).rejects.toMatchObject({ code: 'KEY_MISMATCH' });
      expect((await store.introduceKey('a@example.org', { fingerprint: other, replace: true })).replaced?.trust).toBe('introduced');
      // the awaited key arrives and matches: introduced, not learned
      expect(await store.pinKey('c@example.org', 'armored', other, 'autocrypt')).toMatchObject({ trust: 'introduced', publicKey: 'armored' });
      // a key nobody vouched for is learned
      expect(await store.pinKey('d@example.org', 'armored', FPR, 'autocrypt')).toMatchObject({ trust: 'learned' });
      expect(await store.verify('d@example.org')).toMatchObject({ trust: 'verified', verified: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('invites', () => {
  const invite = { email: 'alice@example.org', fingerprint: FPR, secret: 'AAAAAAAAAAAAAAAAAAAAAA', key: 'a'.repeat(60) };

  it('the code and the URI read back as the same invite; anything else is not an invite', () => {
    const { key: _key, ...short } = invite;
    expect(parseInvite(inviteCode(invite))).toEqual(short);
    expect(parseInvite(inviteUri(invite))).toEqual(invite);
    for (const bad of ['', 'alice@example.org', `alice@example.org:${FPR}:short`, `peerdial:invite?addr=a@b.c&fp=123&s=AAAAAAAAAAAAAAAAAAAAAA`, 'peerdial:alice@example.org']) {
      expect(parseInvite(bad)).toBeUndefined();
    }
  });

  it("the MAC binds the secret, both addresses and both keys; introduce and introduced differ", () => {
    const joiner = { email: 'bob@example.org', fingerprint: 'B'.repeat(40) };
    const inviter = { email: 'alice@example.org', fingerprint: FPR };
    const mac = introductionMac(invite.secret, 'introduce', joiner, inviter);
    expect(mac).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(macMatches(mac, introductionMac(invite.secret, 'introduce', joiner, inviter))).toBe(true);
    for (const other of [
      introductionMac('BBBBBBBBBBBBBBBBBBBBBB', 'introduce', joiner, inviter),
      introductionMac(invite.secret, 'introduced', joiner, inviter),
      introductionMac(invite.secret, 'introduce', { ...joiner, fingerprint: 'C'.repeat(40) }, inviter),
      introductionMac(invite.secret, 'introduce', { ...joiner, email: 'eve@example.org' }, inviter),
    ]) expect(macMatches(mac, other)).toBe(false);
  });

  it('the wire: introduce and introduced carry a mac; other kinds must not', () => {
    const base = { v: 1, from: 'bob@example.org', to: 'alice@example.org', callId: 'c'.repeat(16), created: '2026-12-01T12:00:00Z', expires: '2026-12-02T12:00:00Z', nonce: 'n'.repeat(16), addresses: [] };
    const mac = 'm'.repeat(43);
    expect(validateMessage({ ...base, kind: 'introduce', mac }).ok).toBe(true);
    expect(validateMessage({ ...base, kind: 'introduced', mac }).ok).toBe(true);
    expect(validateMessage({ ...base, kind: 'introduce' })).toMatchObject({ ok: false, detail: 'introduce carries no valid mac' });
    expect(validateMessage({ ...base, kind: 'introduce', mac: 'short' }).ok).toBe(false);
    expect(validateMessage({ ...base, kind: 'message', text: 'hi', mac })).toMatchObject({ ok: false, detail: 'message must not carry a mac' });
  });
});

describe('the stores of invites and kept mail', () => {
  it('an invite secret is good until it expires, and only once', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'peerdial-invites-'));
    try {
      const store = new InviteStore(dir);
      const inv = await store.create({ now: NOW, ttlSeconds: 60, name: 'bob' });
      expect(inv.secret).toMatch(/^[A-Za-z0-9_-]{22}$/);
      const at = (s: number) => new Date(NOW.getTime() + s * 1000);
      expect(await store.pending(at(59))).toHaveLength(1);
      expect(await store.pending(at(61))).toHaveLength(0);
      expect(await store.consume(inv.secret, at(10))).toBe(true);
      expect(await store.consume(inv.secret, at(11))).toBe(false);
      expect(await store.pending(at(12))).toHaveLength(0);
      const late = await store.create({ now: NOW, ttlSeconds: 60 });
      expect(await store.consume(late.secret, at(61))).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('kept mail: by sender, for a week, at most KEEP_MAX', { timeout: 120_000 }, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'peerdial-kept-'));
    try {
      const store = new KeptStore(dir);
      await store.keep({ messageId: '<a@x>', from: 'lee@example.org', at: NOW.toISOString() }, NOW);
      await store.keep({ messageId: '<b@x>', from: 'eve@example.org', at: NOW.toISOString() }, NOW);
      expect((await store.from(new Set(['lee@example.org']), NOW)).map((m) => m.messageId)).toEqual(['<a@x>']);
      expect(await store.from(new Set(['lee@example.org']), new Date(NOW.getTime() + KEEP_SECONDS * 1000 + 1))).toEqual([]);
      for (let i = 0; i < KEEP_MAX + 5; i++) await store.keep({ messageId: `<f${i}@x>`, from: 'flood@example.org', at: NOW.toISOString() }, NOW);
      const all = await store.all(NOW);
      expect(all).toHaveLength(KEEP_MAX);
      expect(all.some((m) => m.messageId === '<a@x>')).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
