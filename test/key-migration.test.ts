/**
 * Peers still on the peerdial that put its key in a standard `Autocrypt`
 * header keep working with one that writes `Peerdial-Key` only: hitoshi's
 * account (on the real mail stack's accounts, as the agent classifies
 * mail) learns alice's key from her old-style message and introduces ines
 * from her old-style `introduce`; an old-style mail whose Autocrypt key is
 * not the signer's teaches nothing. Everything hitoshi sends back carries
 * Peerdial-Key and no Autocrypt header.
 */
import { promises as fs } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { makePeer, tempDir, type Peer } from './harness/peers.js';
import { buildMail } from '../src/wire/build.js';
import { buildAutocryptHeader } from '../src/wire/autocrypt.js';
import { HEADER_LEGACY_AUTOCRYPT, splitHeaderSection } from '../src/wire/headers.js';
import { introductionMac } from '../src/wire/invite.js';
import { createInvite } from '../src/api/invite.js';
import type { Identity } from '../src/wire/identity.js';
import type { PeerdialMessage } from '../src/wire/message.js';
import { message } from './wire/scenario.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
let ines: Peer;
let mallory: Peer;

beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice', 'hitoshi', 'ines', 'mallory'] });
  dir = await tempDir('keymig');
  alice = await makePeer(stack, 'alice', dir);
  hitoshi = await makePeer(stack, 'hitoshi', dir);
  ines = await makePeer(stack, 'ines', dir);
  mallory = await makePeer(stack, 'mallory', dir);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** A mail from `from` as the old peerdial wrote it: its key (or `keyOf`'s) in a standard Autocrypt header, no Peerdial-Key. */
async function oldStyleMail(from: Identity, msg: PeerdialMessage, keyOf: Identity = from): Promise<Buffer> {
  const built = await buildMail(msg, { sender: from, date: new Date() });
  const re = /^Peerdial-Key: .*(\r\n[ \t].*)*\r\n/m;
  const text = built.raw.toString('latin1');
  expect(text).toMatch(re);
  return Buffer.from(text.replace(re, () => `Autocrypt: ${buildAutocryptHeader(from.email, keyOf.publicKey)}\r\n`), 'latin1');
}

const now = (kind: PeerdialMessage['kind'], from: string, to: string, extra: Partial<PeerdialMessage> = {}): PeerdialMessage =>
  message(kind, from, to, { addresses: [], ...extra }, new Date(), 5 * 60_000);

describe('mail from a peer on the old peerdial (key in Autocrypt)', () => {
  it('alice is known by address only; an old-style mail whose Autocrypt key is mallory\'s teaches nothing; her genuine one pins her key as learned', async () => {
    const h = await hitoshi.open();
    const a = await alice.open();
    const m = await mallory.open();
    await h.contacts.add({ name: 'alice', email: alice.email });

    const forged = await h.classify(await oldStyleMail(a.identity, now('message', alice.email, hitoshi.email, { text: 'from the old peerdial' }), m.identity));
    expect(forged).toMatchObject({ ok: false, reason: 'bad-signature' });
    expect((await h.contacts.require('alice')).publicKey).toBeUndefined();

    const genuine = await h.classify(await oldStyleMail(a.identity, now('message', alice.email, hitoshi.email, { text: 'from the old peerdial' })));
    expect(genuine).toMatchObject({ ok: true });
    expect(genuine.parsed).toMatchObject({ ok: true, learnedKey: true, keyHeader: HEADER_LEGACY_AUTOCRYPT });
    expect(await h.contacts.require('alice')).toMatchObject({ fingerprint: a.identity.fingerprint, trust: 'learned', publicKey: expect.any(String) });
  });

  it('ines joins hitoshi\'s invite from the old peerdial: she is introduced, and the confirmation hitoshi queues carries Peerdial-Key only', async () => {
    const h = await hitoshi.open();
    const i = await ines.open();
    await createInvite(h, { name: 'ines' });
    const [pending] = await h.invites.pending(new Date());
    const mac = introductionMac(pending!.secret, 'introduce', { email: ines.email, fingerprint: i.identity.fingerprint }, { email: hitoshi.email, fingerprint: h.identity.fingerprint });
    const r = await h.classify(await oldStyleMail(i.identity, now('introduce', ines.email, hitoshi.email, { mac })));
    expect(r).toMatchObject({ ok: true });
    expect(await h.contacts.require(ines.email)).toMatchObject({ name: 'ines', fingerprint: i.identity.fingerprint, trust: 'introduced' });

    const queued = (await h.outbox.list()).filter((e) => e.to.includes(ines.email));
    expect(queued).toHaveLength(1);
    const raw = await h.outbox.raw(queued[0]!.id);
    const names = splitHeaderSection(raw).fields.map((f) => f.name);
    expect(names).toContain('peerdial-key');
    expect(names.filter((n) => n.startsWith('autocrypt'))).toEqual([]);
  });
});
