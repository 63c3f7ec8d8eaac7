/**
 * The order of work for a mail, on the real mail stack: hitoshi's watcher
 * looks at size and outer headers first. A stranger's mail, a 30 MB mail
 * and a mail whose Peerdial-Signer is not alice's pinned key cost a header
 * fetch: their bodies are never requested. Alice's genuine offer is
 * fetched, marked as being examined, then classified and filed.
 */
import { promises as fs } from 'node:fs';
import type { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectImap } from '../src/mail/imap.js';
import { InboxWatcher, type InboxMail } from '../src/mail/inbox.js';
import type { Received } from '../src/agent/account.js';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { introduce, makePeer, mailboxSnapshot, tempDir, type Peer } from './harness/peers.js';
import { forgedOffer, hugeMail } from './harness/hostile.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
let mallory: Peer;

beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice', 'hitoshi', 'mallory'] });
  dir = await tempDir('screen');
  alice = await makePeer(stack, 'alice', dir);
  hitoshi = await makePeer(stack, 'hitoshi', dir);
  mallory = await makePeer(stack, 'mallory', dir);
  await introduce(alice, hitoshi);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('hitoshi\'s watcher screens before it fetches', () => {
  it('strangers, oversized mail and a wrong signer cost a header fetch; alice\'s offer is fetched, examined and filed', async () => {
    const h = await hitoshi.open();
    const a = await alice.open();
    const mallorysKey = (await mallory.open()).identity;
    await stack.deliverRaw('hitoshi', await forgedOffer({ from: mallory.email, to: hitoshi.email, signer: mallorysKey.privateKey }));
    await stack.deliverRaw('hitoshi', await hugeMail(30_000_000, { from: alice.email, to: hitoshi.email }));
    await stack.deliverRaw('hitoshi', await forgedOffer({ from: alice.email, to: hitoshi.email, signer: mallorysKey.privateKey, claimedFingerprint: mallorysKey.fingerprint }));
    const queued = await a.queue({ kind: 'offer', to: hitoshi.email, sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n', purpose: 'chat' });
    await stack.deliverRaw('hitoshi', await a.outbox.raw(queued.entry.id));

    const client: ImapFlow = await connectImap(await h.imapTarget());
    // record what the watcher asks the server for, per UID
    const asked: { uid: string; body: boolean }[] = [];
    const fetchOne = client.fetchOne.bind(client);
    client.fetchOne = ((range: string, query: Record<string, unknown>, opts: unknown) => {
      asked.push({ uid: range, body: 'source' in query });
      return fetchOne(range, query as never, opts as never);
    }) as typeof client.fetchOne;
    const mails: InboxMail<Received>[] = [];
    const examinedBefore: string[] = [];
    try {
      const watcher = new InboxWatcher<Received>({
        client,
        ledger: h.ledger,
        folder: h.account.folder,
        screen: (o) => h.screen(o),
        classify: async (raw) => {
          const id = /^Message-ID: (<[^>]+>)/im.exec(raw.toString('latin1'))![1]!;
          examinedBefore.push(`${id} ${await h.ledger.resultOf(id)}`);
          return h.classify(raw);
        },
        onMail: (m) => void mails.push(m),
      });
      await watcher.prepare();
      const r = await watcher.check();
      expect(r).toMatchObject({ ours: 4, filed: 1, left: 3 });
    } finally {
      await client.logout().catch(() => client.close());
    }
    expect(mails.map((m) => (m.verdict.ok ? 'accepted' : m.verdict.reason))).toEqual(['unknown-sender', 'too-large', 'key-mismatch', 'accepted']);
    // bodies: only for alice's genuine offer (UID 4)
    expect(asked.filter((q) => q.body).map((q) => q.uid)).toEqual(['4']);
    expect(asked.filter((q) => !q.body).map((q) => q.uid)).toEqual(['1', '2', '3', '4']);
    // it was marked as being examined before it was parsed
    expect(examinedBefore).toEqual([`${queued.messageId} examining`]);
    expect(await h.ledger.resultOf(queued.messageId)).toBe('accepted');
    // the three others stay in INBOX, unflagged
    const inbox = await mailboxSnapshot(stack, 'hitoshi');
    expect(inbox.map((m) => m.uid)).toEqual([1, 2, 3]);
    for (const m of inbox) expect(m.flags).toEqual([]);
  }, 180_000);

  it('a mail another client deletes before it is read is reported as vanished, never as malformed', async () => {
    const h = await hitoshi.open();
    const a = await alice.open();
    const queue = async () => {
      const q = await a.queue({ kind: 'offer', to: hitoshi.email, sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n', purpose: 'chat' });
      await stack.deliverRaw('hitoshi', await a.outbox.raw(q.entry.id));
      return q.messageId;
    };
    await queue();
    await queue();
    const client: ImapFlow = await connectImap(await h.imapTarget());
    const other: ImapFlow = await connectImap(await h.imapTarget()); // "another mail client" on the same account
    const mails: InboxMail<Received>[] = [];
    try {
      await other.mailboxOpen('INBOX');
      const uids = (await other.search({ header: { 'peerdial-version': '1' } }, { uid: true })) || [];
      expect(uids.length).toBeGreaterThanOrEqual(2);
      const [first, second] = uids.slice(-2) as [number, number];
      const expunge = (uid: number) => other.messageDelete(String(uid), { uid: true });
      // the other client deletes the first mail before the watcher's first fetch, the second between its two fetches
      const fetchOne = client.fetchOne.bind(client);
      client.fetchOne = (async (range: string, query: Record<string, unknown>, opts: unknown) => {
        if (range === String(first) && !('source' in query)) await expunge(first);
        if (range === String(second) && 'source' in query) await expunge(second);
        return fetchOne(range, query as never, opts as never);
      }) as typeof client.fetchOne;
      const watcher = new InboxWatcher<Received>({
        client,
        ledger: h.ledger,
        folder: h.account.folder,
        screen: (o) => h.screen(o),
        classify: (raw) => h.classify(raw),
        onMail: (m) => void mails.push(m),
      });
      await watcher.prepare();
      await watcher.check();
    } finally {
      await client.logout().catch(() => client.close());
      await other.logout().catch(() => other.close());
    }
    const last = mails.slice(-2);
    expect(last.map((m) => (m.verdict.ok ? 'accepted' : m.verdict.reason))).toEqual(['vanished', 'vanished']);
    for (const m of last) expect(m.verdict.ok ? '' : m.verdict.detail).toMatch(/deleted or moved by another mail client before peerdial read it/);
    expect(mails.some((m) => !m.verdict.ok && m.verdict.reason === 'malformed')).toBe(false);
  }, 180_000);
});
