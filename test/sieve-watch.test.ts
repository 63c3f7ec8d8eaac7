/**
 * The watcher with the server-side rule on: peerdial mail that came before
 * the rule (in the INBOX) and after it (delivered into the peerdial folder)
 * both arrive once; a second look reports nothing again, though the
 * folder now holds both.
 */
import { promises as fs } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { introduce, mailboxSnapshot, makePeer, tempDir, waitFor, type Peer } from './harness/peers.js';
import { announce, checkInbox } from '../src/api/mail.js';
import { installSieveRule } from '../src/mail/sieve-rule.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
beforeAll(async () => {
  stack = await startMailStack({ users: ['alice', 'hitoshi'], sieve: true });
  dir = await tempDir('sieve-watch');
  alice = await makePeer(stack, 'alice', dir);
  hitoshi = await makePeer(stack, 'hitoshi', dir);
  await introduce(alice, hitoshi);
}, 120_000);
afterAll(async () => {
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const peerdialMail = async (folder: string) => (await mailboxSnapshot(stack, 'hitoshi', folder)).filter((m) => /^Peerdial-Version:/im.test(m.source)).length;

it('an announce from before the rule (INBOX) and one after it (the folder) both arrive, once', async () => {
  const acc = await alice.open();
  await announce(acc, { to: ['hitoshi'], addresses: [{ ip: '203.0.113.1', source: 'interface', scope: 'documentation' }] });
  await waitFor('the first announce in hitoshi\'s INBOX', async () => (await peerdialMail('INBOX')) === 1, 30_000);

  // hitoshi turns the rule on (what init --sieve does: the script, then sieve_port in the config)
  const u = stack.users.hitoshi!;
  const r = await installSieveRule({ host: stack.host, port: stack.sievePort, ca: stack.ca, user: u.user, password: u.password }, 'Peerdial');
  expect(r.state).toBe('active');
  const config = await fs.readFile(hitoshi.configFile, 'utf8');
  await fs.writeFile(hitoshi.configFile, config.replace(/^folder = "Peerdial"$/m, `folder = "Peerdial"\nsieve_port = ${stack.sievePort}`));
  expect(await fs.readFile(hitoshi.configFile, 'utf8')).toContain(`sieve_port = ${stack.sievePort}`);

  await announce(acc, { to: ['hitoshi'], addresses: [{ ip: '203.0.113.2', source: 'interface', scope: 'documentation' }] });
  await waitFor('the second announce in hitoshi\'s Peerdial folder', async () => (await peerdialMail('Peerdial')) === 1, 30_000);
  expect(await peerdialMail('INBOX')).toBe(1);

  const first = await checkInbox(await hitoshi.open());
  expect(first.items.map((i) => ({ ok: i.ok, kind: i.kind, ip: i.addresses?.map((a) => a.ip) })).sort((a, b) => String(a.ip).localeCompare(String(b.ip)))).toEqual([
    { ok: true, kind: 'announce', ip: ['203.0.113.1'] },
    { ok: true, kind: 'announce', ip: ['203.0.113.2'] },
  ]);
  // the one from the INBOX was filed like any verified peerdial mail
  expect(await peerdialMail('INBOX')).toBe(0);
  expect(await peerdialMail('Peerdial')).toBe(2);

  const second = await checkInbox(await hitoshi.open());
  expect(second.items).toEqual([]);
});
