/**
 * peerdial and Delta Chat (core 2.57 from npm, its default settings) on the
 * same addresses, with real calls: hitoshi and bob each run both; alice
 * only peerdial. hitoshi's peerdial agent answers alice's calls (files
 * with their SHA-256) while hitoshi's and bob's Delta Chats write to each
 * other and both peerdials mail each other their addresses.
 *
 * What must hold (DESIGN "Sharing the mailbox"; the key conflict measured
 * with Delta Chat 1.160, where Delta Chat took peerdial's key from a
 * standard Autocrypt header and 3 of 24 chat messages became unreadable):
 * every Delta Chat message arrives readable on the other side, every
 * peerdial call connects, every peerdial mail is read by peerdial, and
 * neither touches the other's mail.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { deltaChatAccount, startCore, stopCore, type DeltaChat } from './harness/deltachat.js';
import { introducedPeers } from './harness/scene.js';
import { agentOf, type RecordedAgent } from './harness/agents.js';
import { mailboxSnapshot, runCli, waitFor, type Peer } from './harness/peers.js';
import type { MailStack } from './harness/mail-stack.js';
import { announce, checkInbox } from '../src/api/mail.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const ROUNDS = 3;

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
let bob: Peer;
let dc: DeltaChat | undefined;
let hitoshiAgent: RecordedAgent | undefined;

introducedPeers('deltachat-coexist', { alice: { ringSeconds: 30 }, hitoshi: { answer: 'auto-answer', ringSeconds: 30 }, bob: {} }, (s) => {
  stack = s.stack;
  dir = s.dir;
  alice = s.peers.alice!;
  hitoshi = s.peers.hitoshi!;
  bob = s.peers.bob!;
});
afterAll(async () => {
  await hitoshiAgent?.agent.stop();
  await stopCore(dc);
});

let dcHitoshi: number;
let dcBob: number;
/** Every message each Delta Chat showed: text, and whether it was decrypted and carries no error. */
const shown = new Map<string, { text: string; readable: boolean }>();

beforeAll(async () => {
  const d = (dc = await startCore(path.join(dir, 'deltachat')));
  dcHitoshi = await deltaChatAccount(d, stack, 'hitoshi');
  dcBob = await deltaChatAccount(d, stack, 'bob');
  const look = (acc: number, msgId: number) => {
    if (msgId <= 9) return;
    d.rpc.getMessage(acc, msgId).then(
      (m) => shown.set(`${acc}:${msgId}`, { text: m.text ?? '', readable: m.showPadlock && !m.error }),
      () => undefined,
    );
  };
  d.on('IncomingMsg', (acc, e) => look(acc, e.msgId));
  d.on('MsgsChanged', (acc, e) => look(acc, e.msgId));
  await d.rpc.startIo(dcHitoshi);
  await d.rpc.startIo(dcBob);
  // the two Delta Chats meet the way their users would: bob scans hitoshi's QR code
  const qr = await d.rpc.getChatSecurejoinQrCode(dcHitoshi, null);
  await d.rpc.secureJoin(dcBob, qr);
  await waitFor(
    "bob's Delta Chat verifying hitoshi",
    async () => (await d.rpc.getContacts(dcBob, 0, null)).some((c) => c.address === stack.users.hitoshi!.email && c.isVerified),
    180_000,
    200,
  );
  hitoshiAgent = await agentOf(hitoshi);
}, 240_000);

/** The id of the contact (met by SecureJoin: with its key) that `acc`'s Delta Chat has for a mail user: in its contact list or a member of one of its chats. */
async function contactOf(acc: number, name: string): Promise<number> {
  const email = stack.users[name]!.email;
  const find = async () => {
    const ids = new Set((await dc!.rpc.getContacts(acc, 0, null)).map((c) => c.id));
    for (const chatId of await dc!.rpc.getChatlistEntries(acc, null, null, null)) for (const id of (await dc!.rpc.getFullChatById(acc, chatId)).contactIds) ids.add(id);
    for (const id of ids) if ((await dc!.rpc.getContact(acc, id)).address === email) return id;
    return undefined;
  };
  return waitFor(`${email} as a contact of account ${acc}'s Delta Chat`, find, 180_000, 200);
}

/** The texts one account's Delta Chat showed that match `re`, and whether each was readable. */
function received(acc: number, re: RegExp): Array<{ text: string; readable: boolean }> {
  return [...shown.entries()].filter(([k, v]) => k.startsWith(`${acc}:`) && re.test(v.text)).map(([, v]) => v);
}

it('calls, address mails and Delta Chat messages cross on the same mailboxes: nothing lost, nothing unreadable, nobody touches the other\'s mail', async () => {
  const d = dc!;
  const chatOfBob = await d.rpc.createChatByContactId(dcBob, await contactOf(dcBob, 'hitoshi'));
  const chatOfHitoshi = await d.rpc.createChatByContactId(dcHitoshi, await contactOf(dcHitoshi, 'bob'));
  const hitoshiAcc = await hitoshi.open();
  const bobAcc = await bob.open();
  for (let i = 1; i <= ROUNDS; i++) {
    // both peerdials mail their address to each other: these are the mails whose key header Delta Chat must not take
    // hitoshi's agent runs on the same account: it may send this one from the outbox itself (bob's inbox counts them below)
    await announce(hitoshiAcc, { to: ['bob'] });
    expect((await announce(bobAcc, { to: ['hitoshi'] })).drain?.sent).toBe(1);
    await d.rpc.miscSendTextMessage(dcBob, chatOfBob, `bob to hitoshi ${i}`);
    await d.rpc.miscSendTextMessage(dcHitoshi, chatOfHitoshi, `hitoshi to bob ${i}`);
    // alice calls hitoshi's agent and sends a file
    const file = path.join(dir, `round-${i}.bin`);
    const data = randomBytes(256 * 1024 + i);
    await fs.writeFile(file, data);
    const r = await runCli(['--config', alice.configFile, 'send', 'hitoshi', file], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    const saved = path.join(hitoshi.downloadDir, `round-${i}.bin`);
    await waitFor(`round ${i}'s file saved by hitoshi's agent`, async () => (await fs.stat(saved).catch(() => undefined))?.size === data.length, 60_000);
    expect(sha256(await fs.readFile(saved))).toBe(sha256(data));
  }

  // every Delta Chat message arrived, decrypted, on the other side
  await waitFor('all Delta Chat messages shown', () => received(dcHitoshi, /^bob to hitoshi \d$/).length === ROUNDS && received(dcBob, /^hitoshi to bob \d$/).length === ROUNDS, 180_000, 200);
  expect(received(dcHitoshi, /^bob to hitoshi \d$/).every((m) => m.readable)).toBe(true);
  expect(received(dcBob, /^hitoshi to bob \d$/).every((m) => m.readable)).toBe(true);
  // and a last message each way after all the peerdial mail: Delta Chat still encrypts to the right key
  await d.rpc.miscSendTextMessage(dcBob, chatOfBob, 'bob to hitoshi last');
  await d.rpc.miscSendTextMessage(dcHitoshi, chatOfHitoshi, 'hitoshi to bob last');
  await waitFor('the last messages', () => received(dcHitoshi, /last$/).length === 1 && received(dcBob, /last$/).length === 1, 180_000, 200);
  expect([...received(dcHitoshi, /last$/), ...received(dcBob, /last$/)].every((m) => m.readable)).toBe(true);

  // every peerdial mail was read by peerdial: bob's announces by hitoshi's agent (filed once verified), hitoshi's by bob's inbox
  const fromBob = async () => (await mailboxSnapshot(stack, 'hitoshi', 'Peerdial').catch(() => [])).filter((m) => /^From:.*bob@/im.test(m.source)).length;
  await waitFor("hitoshi's agent filing bob's announces", async () => (await fromBob()) === ROUNDS, 120_000);
  expect(hitoshiAgent!.events.filter((e) => e.type === 'mail-rejected')).toEqual([]);
  const { items } = await checkInbox(bobAcc);
  expect(items.filter((x) => x.ok && x.kind === 'announce' && x.from === hitoshi.email)).toHaveLength(ROUNDS);
  expect(items.filter((x) => !x.ok)).toEqual([]);

  // peerdial filed only its own mail; Delta Chat's is where Delta Chat left it
  for (const who of ['hitoshi', 'bob']) {
    const filed = await mailboxSnapshot(stack, who, 'Peerdial').catch(() => []);
    expect(filed.every((m) => /^Peerdial-Version:/im.test(m.source)), `${who}'s Peerdial folder holds peerdial mail only`).toBe(true);
  }
}, 900_000);
