/**
 * SecureJoin between peerdial and a real Delta Chat core (2.57 from npm) on
 * the real mail stack, both ways:
 *
 * 1. bob's Delta Chat shows its invite link; alice runs `peerdial join
 *    LINK` and her `peerdial inbox` takes the handshake on. At the end bob
 *    is a verified Delta Chat contact in alice's peerdial, with exactly the
 *    key his link named, and alice is verified in bob's Delta Chat.
 * 2. carol's peerdial makes an invite (`invite --delta-chat`); bob's Delta
 *    Chat joins it (`secureJoin`), carol's inbox answers; the same end.
 *
 * Along the way: a mail of bob's that is no SecureJoin step of ours is
 * left in INBOX untouched (no flag, no move) while alice reads.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deltaChatAccount, startCore, stopCore, type DeltaChat } from './harness/deltachat.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { mailboxSnapshot, makePeer, tempDir, waitFor, type Peer } from './harness/peers.js';
import { checkInbox } from '../src/api/mail.js';
import { createDeltaChatInviteLink, joinInvite } from '../src/api/invite.js';
import type { Account } from '../src/agent/account.js';
import type { ChatMailResult } from '../src/agent/securejoin.js';
import { Agent, type AgentEvent } from '../src/agent/agent.js';

const HANDSHAKE_MS = 180_000;

let stack: MailStack;
let dir: string;
let dc: DeltaChat;
let dcBob: number;
let alice: Peer;
let carol: Peer;
let dave: Peer;

beforeAll(async () => {
  stack = await startMailStack({ users: ['alice', 'bob', 'carol', 'dave'] });
  dir = await tempDir('deltachat-securejoin');
  alice = await makePeer(stack, 'alice', dir);
  carol = await makePeer(stack, 'carol', dir);
  dave = await makePeer(stack, 'dave', dir);
  dc = await startCore(path.join(dir, 'deltachat'));
  dcBob = await deltaChatAccount(dc, stack, 'bob');
  await dc.rpc.setConfig(dcBob, 'displayname', 'Bob');
  await dc.rpc.startIo(dcBob);
}, 180_000);
afterAll(async () => {
  await stopCore(dc);
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** Runs `peerdial inbox` until `done` says the handshake is over; returns every chat mail it read. */
async function inboxUntil(acc: Account, what: string, done: () => Promise<boolean>): Promise<ChatMailResult[]> {
  const seen: ChatMailResult[] = [];
  await waitFor(
    what,
    async () => {
      const r = await checkInbox(acc);
      seen.push(...r.chat);
      return done();
    },
    HANDSHAKE_MS,
    500,
  );
  return seen;
}

/** Every contact bob's Delta Chat knows: its contact list and the members of its chats (a contact met by SecureJoin may be only the latter). */
async function deltaChatContacts(): Promise<Array<{ address: string; isVerified: boolean; id: number }>> {
  const ids = new Set((await dc.rpc.getContacts(dcBob, 0, null)).map((c) => c.id));
  for (const chatId of await dc.rpc.getChatlistEntries(dcBob, null, null, null)) {
    for (const id of (await dc.rpc.getFullChatById(dcBob, chatId)).contactIds) ids.add(id);
  }
  return Promise.all([...ids].map((id) => dc.rpc.getContact(dcBob, id)));
}

/** The contact bob's Delta Chat has for `email`, once it is verified. */
async function verifiedInDeltaChat(email: string): Promise<{ address: string; isVerified: boolean }> {
  let last: unknown[] = [];
  try {
    return await waitFor(
      `${email} verified in bob's Delta Chat`,
      async () => {
        const all = await deltaChatContacts();
        last = all.map((c) => ({ address: c.address, isVerified: c.isVerified, id: c.id }));
        return all.find((c) => c.address === email && c.isVerified);
      },
      HANDSHAKE_MS,
      250,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; bob's Delta Chat knows ${JSON.stringify(last)}`);
  }
}

describe('SecureJoin with Delta Chat', () => {
  it("from bob's Delta Chat invite to alice's peerdial: both sides end verified", async () => {
    const link = await dc.rpc.getChatSecurejoinQrCode(dcBob, null);
    expect(link).toMatch(/^https:\/\/i\.delta\.chat\/#[0-9A-F]{40}&/);
    const bobFingerprint = /#([0-9A-F]{40})&/.exec(link)![1]!;
    const acc = await alice.open();
    const joined = await joinInvite(acc, link);
    expect(joined.deltaChat).toBe(true);
    expect(joined.drain?.sent).toBe(1);

    const steps = await inboxUntil(acc, 'bob verified in alice\'s peerdial', async () => {
      const join = await acc.invites.joinFor(stack.users.bob!.email, acc.clock());
      const c = await acc.contacts.byEmail(stack.users.bob!.email);
      return join === undefined && c?.trust === 'verified';
    });
    expect(steps.filter((s) => s.handled).map((s) => s.step)).toEqual(['vc-auth-required', 'vc-contact-confirm']);
    const bob = (await acc.contacts.byEmail(stack.users.bob!.email))!;
    expect(bob).toMatchObject({ deltaChat: true, trust: 'verified', verified: true, fingerprint: bobFingerprint });
    expect(bob.publicKey).toContain('BEGIN PGP PUBLIC KEY BLOCK');

    const inDc = await verifiedInDeltaChat(alice.email);
    expect(inDc.isVerified).toBe(true);
  }, 400_000);

  it("from carol's peerdial invite to bob's Delta Chat: both sides end verified, and the invite is used up", async () => {
    const acc = await carol.open();
    const { link } = await createDeltaChatInviteLink(acc, { ttlSeconds: 3600 });
    expect(link).toMatch(new RegExp(`^https://i\\.delta\\.chat/#${acc.identity.fingerprint}&a=carol%40`));
    const scanned = await dc.rpc.checkQr(dcBob, link);
    expect(scanned.kind).toBe('askVerifyContact');
    await dc.rpc.secureJoin(dcBob, link);

    const steps = await inboxUntil(acc, 'bob verified in carol\'s peerdial', async () => (await acc.contacts.byEmail(stack.users.bob!.email))?.trust === 'verified');
    expect(steps.filter((s) => s.handled).map((s) => s.step)).toEqual(['vc-request', 'vc-request-with-auth']);
    const bob = (await acc.contacts.byEmail(stack.users.bob!.email))!;
    expect(bob).toMatchObject({ deltaChat: true, trust: 'verified' });
    expect(await acc.invites.pending(acc.clock())).toEqual([]);

    const inDc = await verifiedInDeltaChat(carol.email);
    expect(inDc.isVerified).toBe(true);

    // nothing of Delta Chat's mail was flagged or moved in carol's mailbox
    const inbox = await mailboxSnapshot(stack, 'carol');
    expect(inbox.length).toBeGreaterThan(0);
    for (const m of inbox) expect(m.flags.filter((f) => f !== '\\Recent')).toEqual([]);
  }, 400_000);

  it("dave's running agent answers the handshake of bob's Delta Chat on its own", async () => {
    const acc = await dave.open();
    const { link } = await createDeltaChatInviteLink(acc, { ttlSeconds: 3600, answer: 'ring' });
    const events: AgentEvent[] = [];
    const agent = new Agent({ account: acc, onEvent: (e) => events.push(e), control: 'serve' });
    try {
      await agent.serveControl();
      agent.start();
      await waitFor("dave's agent watching", () => events.some((e) => e.type === 'idle' || (e.type === 'checked')), HANDSHAKE_MS);
      const joinedAt = Date.now();
      await dc.rpc.secureJoin(dcBob, link);
      const done = await waitFor(
        'the agent verified bob',
        () => events.find((e): e is Extract<AgentEvent, { type: 'chat-mail' }> => e.type === 'chat-mail' && e.result.step === 'vc-request-with-auth' && e.result.handled),
        HANDSHAKE_MS,
        100,
      );
      expect(done.result.verified).toMatchObject({ email: stack.users.bob!.email, trust: 'verified', deltaChat: true, answer: 'ring', announce: false });
      const inDc = await verifiedInDeltaChat(dave.email);
      expect(inDc.isVerified).toBe(true);
      console.log(`SecureJoin, Delta Chat joining a running peerdial agent: both sides verified ${Date.now() - joinedAt} ms after secureJoin()`);
      // both answers went out through the agent's own outbox
      await waitFor('the outbox empty', async () => (await acc.outbox.list()).length === 0, HANDSHAKE_MS, 100);
    } finally {
      await agent.stop();
    }
  }, 400_000);
});
