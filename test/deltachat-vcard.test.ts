/**
 * hitoshi uses Delta Chat, alice peerdial. They introduce each other by
 * vCard, no SecureJoin: alice imports the card hitoshi's Delta Chat shares
 * (`peerdial contacts import-vcard`): hitoshi is introduced with the key
 * Delta Chat made, marked as a Delta Chat user; hitoshi's Delta Chat
 * imports alice's card (`peerdial contacts export-vcard`) and knows her
 * key: the fingerprints match on both sides.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { deltaChatAccount, introduceByVcard, startCore, stopCore, type DeltaChat } from './harness/deltachat.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { makePeer, runCli, tempDir, type Peer } from './harness/peers.js';

let stack: MailStack;
let dir: string;
let dc: DeltaChat | undefined;
let alice: Peer;

beforeAll(async () => {
  stack = await startMailStack({ users: ['alice', 'hitoshi'] });
  dir = await tempDir('deltachat-vcard');
  alice = await makePeer(stack, 'alice', dir);
}, 120_000);
afterAll(async () => {
  await stopCore(dc);
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** Delta Chat's encryption info with the spaces and line breaks inside its fingerprints taken out. */
const squeezed = (text: string) => text.replace(/\s+/g, '').toUpperCase();

it("alice imports hitoshi's Delta Chat vCard and he imports hers: each side knows the other's key", async () => {
  const d = await startCore(path.join(dir, 'deltachat'));
  dc = d;
  const dcHitoshi = await deltaChatAccount(d, stack, 'hitoshi');
  await d.rpc.setConfig(dcHitoshi, 'displayname', 'Hitoshi Abe');

  const { contactId, chatId, imported } = await introduceByVcard(d, dcHitoshi, alice, dir, runCli, { name: 'hitoshi' });
  expect(imported).toMatch(/^Added hitoshi <hitoshi@[^>]+>: key [0-9A-F ]+, introduced \(from a vCard\); a Delta Chat user\.$/m);

  // alice's address book: introduced, source vcard, Delta Chat, the key Delta Chat has for itself
  const acc = await alice.open();
  const h = (await acc.contacts.byEmail(stack.users.hitoshi!.email))!;
  expect(h).toMatchObject({ name: 'hitoshi', trust: 'introduced', keySource: 'vcard', deltaChat: true });
  // hitoshi's Delta Chat: alice is a key contact with alice's peerdial key, in an accepted 1:1 chat
  const c = await d.rpc.getContact(dcHitoshi, contactId);
  expect(c).toMatchObject({ address: alice.email, isKeyContact: true, e2eeAvail: true });
  // its encryption info lists both fingerprints: its own (the one alice pinned) and alice's peerdial key
  const info = squeezed(await d.rpc.getContactEncryptionInfo(dcHitoshi, contactId));
  expect(info).toContain(acc.identity.fingerprint);
  expect(info).toContain(h.fingerprint);
  expect((await d.rpc.getBasicChatInfo(dcHitoshi, chatId)).isContactRequest).toBe(false);

  // the same card again changes nothing; a card for another key is refused without --replace
  const again = await runCli(['--config', alice.configFile, 'contacts', 'import-vcard', path.join(dir, 'hitoshi-deltachat.vcf')]);
  expect(again.code).toBe(0);
  expect(again.stdout).toMatch(/^Updated hitoshi/m);
  const other = (await runCli(['--config', alice.configFile, 'contacts', 'export-vcard', 'hitoshi'])).stdout.replace(/KEY:[^\r\n]+/, `KEY:data:application/pgp-keys;base64\\,${Buffer.from(acc.identity.publicKey.write()).toString('base64')}`);
  await fs.writeFile(path.join(dir, 'other.vcf'), other);
  const refused = await runCli(['--config', alice.configFile, 'contacts', 'import-vcard', path.join(dir, 'other.vcf')]);
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toContain('KEY_MISMATCH');
}, 300_000);
