/**
 * peerdial beside Delta Chat on the same address, with Delta Chat set to
 * delete every mail from the server at once (`delete_server_after = 1`,
 * core 2.33 from npm), on a Dovecot with Sieve: with peerdial's rule on
 * (`init --sieve`) peerdial mail is filed into its folder at delivery, so
 * announces sent while hitoshi's peerdial was not running all arrive, and
 * Delta Chat's own messages from bob still reach hitoshi's Delta Chat.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { deltaChatAccount, startOlderCore, stopCore, type DeltaChat } from './harness/deltachat.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { introduce, mailboxSnapshot, makePeer, tempDir, waitFor, type Peer } from './harness/peers.js';
import { announce, checkInbox } from '../src/api/mail.js';

let stack: MailStack;
let dir: string;
let dc: DeltaChat | undefined;
let alice: Peer;
let hitoshi: Peer;

beforeAll(async () => {
  stack = await startMailStack({ users: ['alice', 'hitoshi', 'bob'], sieve: true });
  dir = await tempDir('deltachat-sieve');
  alice = await makePeer(stack, 'alice', dir);
  hitoshi = await makePeer(stack, 'hitoshi', dir, { sieve: stack.sievePort });
  await introduce(alice, hitoshi);
}, 120_000);
afterAll(async () => {
  await stopCore(dc);
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

it('Delta Chat deletes from the server at once; with the rule on, every peerdial announce and every Delta Chat message arrives', async () => {
  const d = await startOlderCore(path.join(dir, 'deltachat'), '2.33.0');
  dc = d;
  const version = (await d.rpc.getSystemInfo()).deltachat_core_version;
  const dcHitoshi = await deltaChatAccount(d, stack, 'hitoshi');
  const dcBob = await deltaChatAccount(d, stack, 'bob');
  await d.rpc.setConfig(dcHitoshi, 'delete_server_after', '1');
  expect(await d.rpc.getConfig(dcHitoshi, 'delete_server_after'), `Delta Chat ${version} has delete_server_after`).toBe('1');
  // what hitoshi's Delta Chat shows (the first message of a contact request comes as IncomingMsg, the next ones as MsgsChanged)
  const shown = new Map<number, string>();
  const look = (acc: number, msgId: number) => {
    if (acc !== dcHitoshi || msgId <= 9 || shown.has(msgId)) return;
    d.rpc.getMessage(acc, msgId).then((m) => shown.set(msgId, m.text ?? ''), () => undefined);
  };
  d.on('IncomingMsg', (acc, e) => look(acc, e.msgId));
  d.on('MsgsChanged', (acc, e) => look(acc, e.msgId));
  const fromBobShown = () => [...shown.values()].filter((t) => /^hello \d from bob$/.test(t)).sort();
  await d.rpc.startIo(dcHitoshi);
  await d.rpc.startIo(dcBob);

  // hitoshi's peerdial is not running: alice's announces wait on the server
  const acc = await alice.open();
  const sent: string[] = [];
  for (let i = 1; i <= 4; i++) {
    const a = await announce(acc, { to: ['hitoshi'], addresses: [{ ip: `203.0.113.${i}`, source: 'interface', scope: 'documentation' }] });
    expect(a.drain?.sent).toBe(1);
    sent.push(`203.0.113.${i}`);
  }
  // then bob writes to hitoshi with Delta Chat
  const chat = await d.rpc.createChatByContactId(dcBob, await d.rpc.createContact(dcBob, stack.users.hitoshi!.email, null));
  for (let i = 1; i <= 3; i++) await d.rpc.miscSendTextMessage(dcBob, chat, `hello ${i} from bob`);

  // Delta Chat got bob's messages and, as told, deleted them from the server: it has had its go at everything before them
  await waitFor('bob\'s 3 messages in hitoshi\'s Delta Chat', () => fromBobShown().length === 3, 120_000, 100);
  await waitFor('Delta Chat to delete bob\'s messages from hitoshi\'s INBOX', async () => !(await mailboxSnapshot(stack, 'hitoshi')).some((m) => m.source.includes('from bob')), 120_000, 200);
  // peerdial mail was never in the INBOX: the rule put it into Peerdial at delivery
  expect((await mailboxSnapshot(stack, 'hitoshi')).filter((m) => /^Peerdial-Version:/im.test(m.source))).toEqual([]);
  expect((await mailboxSnapshot(stack, 'hitoshi', 'Peerdial')).length).toBe(4);

  // hitoshi's peerdial starts: all four announces are there
  const { items } = await checkInbox(await hitoshi.open());
  const announces = items.filter((i) => i.ok && i.kind === 'announce');
  expect(announces.map((i) => i.from)).toEqual(Array(4).fill(alice.email));
  expect(items.filter((i) => !i.ok)).toEqual([]);
  expect(fromBobShown()).toEqual(['hello 1 from bob', 'hello 2 from bob', 'hello 3 from bob']);
}, 300_000);
