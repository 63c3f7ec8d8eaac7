/**
 * The SecureJoin steps (agent/securejoin.ts) between two peerdial
 * accounts, each mail handed from one outbox to the other side's
 * handleChatMail directly (no mail server in between), and what a
 * hostile or late mail gets: an AUTH token used twice, an invite that
 * expired, an answer signed by a key the link did not name, a step
 * nobody asked for, a sender whose mail peerdial must not read at all.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { makePeer, runCli, tempDir, type Peer } from './harness/peers.js';
import { createDeltaChatInviteLink, joinInvite } from '../src/api/invite.js';
import { chatMailActive, handleChatMail, queueDeltaChatMail, wantsChatMail } from '../src/agent/securejoin.js';
import type { Account } from '../src/agent/account.js';
import { generateIdentity } from '../src/wire/identity.js';
import { parseSecureJoinLink, secureJoinLink } from '../src/wire/securejoin-link.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let carol: Peer;
let mallory: Peer;

beforeAll(async () => {
  stack = await startMailStack({ users: ['alice', 'carol', 'mallory'] });
  dir = await tempDir('securejoin-steps');
  alice = await makePeer(stack, 'alice', dir);
  carol = await makePeer(stack, 'carol', dir);
  mallory = await makePeer(stack, 'mallory', dir);
}, 180_000);
afterAll(async () => {
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** The raw mail of the newest queued SecureJoin step `step` in `acc`'s outbox. */
async function queued(acc: Account, step: string): Promise<Buffer> {
  const entries = (await acc.outbox.list()).filter((e) => e.kind === `securejoin ${step}`).sort((a, b) => a.created.localeCompare(b.created));
  const last = entries.at(-1);
  if (!last) throw new Error(`no ${step} in the outbox of ${acc.email}`);
  return fs.readFile(path.join(acc.outbox.dir, `${last.id}.eml`));
}

describe('SecureJoin steps between two peerdial accounts', () => {
  it('carol joins alice\'s Delta Chat invite: four steps, both verified; the same AUTH token again is refused', async () => {
    const a = await alice.open();
    const c = await carol.open();
    const { link } = await createDeltaChatInviteLink(a, { ttlSeconds: 3600, name: 'carol' });
    expect(await chatMailActive(a)).toBe(true);
    expect(await wantsChatMail(a, carol.email)).toBe(true);
    await joinInvite(c, link, { queueOnly: true });

    const step1 = await handleChatMail(a, await queued(c, 'vc-request'));
    expect(step1).toMatchObject({ handled: true, step: 'vc-request', queued: true });
    const step2 = await handleChatMail(c, await queued(a, 'vc-auth-required'));
    expect(step2).toMatchObject({ handled: true, step: 'vc-auth-required' });
    expect(step2.verified).toMatchObject({ email: alice.email, trust: 'verified', deltaChat: true, fingerprint: a.identity.fingerprint });
    const withAuth = await queued(c, 'vc-request-with-auth');
    const step3 = await handleChatMail(a, withAuth);
    expect(step3).toMatchObject({ handled: true, step: 'vc-request-with-auth' });
    expect(step3.verified).toMatchObject({ email: carol.email, name: 'carol', trust: 'verified', deltaChat: true, fingerprint: c.identity.fingerprint });
    const step4 = await handleChatMail(c, await queued(a, 'vc-contact-confirm'));
    expect(step4).toMatchObject({ handled: true, step: 'vc-contact-confirm' });
    expect(await c.invites.joinFor(alice.email, c.clock())).toBeUndefined();

    // the invite is used up: the same request again changes nothing
    const again = await handleChatMail(a, withAuth);
    expect(again).toMatchObject({ handled: false, queued: false });
    expect(again.detail).toMatch(/no open invite/);
  }, 120_000);

  it('an invite past its expiry is refused at the last step', async () => {
    const m = await mallory.open();
    const a = await alice.open();
    const { link } = await createDeltaChatInviteLink(a, { ttlSeconds: 60 });
    await joinInvite(m, link, { queueOnly: true });
    await handleChatMail(a, await queued(m, 'vc-request'));
    await handleChatMail(m, await queued(a, 'vc-auth-required'));
    const later = await alice.open(() => new Date(Date.now() + 120_000));
    const r = await handleChatMail(later, await queued(m, 'vc-request-with-auth'));
    expect(r).toMatchObject({ handled: false, queued: false });
    expect(r.detail).toMatch(/no open invite/);
    expect((await later.contacts.byEmail(mallory.email))?.trust).not.toBe('verified');
  }, 120_000);

  it("an answer signed by a key other than the one the link named leaves the joiner's contact unverified", async () => {
    const a = await alice.open();
    const m = await mallory.open();
    // a link in alice's name with a fingerprint that is not alice's key (a swapped QR code)
    const { link } = await createDeltaChatInviteLink(a, { ttlSeconds: 3600 });
    const real = parseSecureJoinLink(link)!;
    const other = await generateIdentity('someone@example.test');
    await joinInvite(m, secureJoinLink({ ...real, fingerprint: other.fingerprint }), { queueOnly: true });
    await handleChatMail(a, await queued(m, 'vc-request'));
    const r = await handleChatMail(m, await queued(a, 'vc-auth-required'));
    expect(r).toMatchObject({ handled: false, queued: false });
    expect(r.detail).toMatch(/not by the key .* the invite named/);
    const contact = await m.contacts.byEmail(alice.email);
    expect(contact?.trust).not.toBe('verified');
    expect(contact?.fingerprint).toBe(other.fingerprint);
  }, 120_000);

  it('a vc-request-with-auth that names a fingerprint other than its signer\'s, or gossips no key of ours, is refused and the invite stays open', async () => {
    const a = await alice.open();
    const m = await mallory.open();
    const { link } = await createDeltaChatInviteLink(a, { ttlSeconds: 3600 });
    const auth = parseSecureJoinLink(link)!.auth;
    const other = await generateIdentity('someone@example.test');
    const forge = async (fingerprint: string, gossip: boolean): Promise<Buffer> => {
      await queueDeltaChatMail(m, {
        to: alice.email,
        key: a.identity.publicKey,
        gossip,
        headers: [
          { name: 'Secure-Join', value: 'vc-request-with-auth' },
          { name: 'Secure-Join-Auth', value: auth },
          { name: 'Secure-Join-Fingerprint', value: fingerprint },
        ],
        text: 'Secure-Join: vc-request-with-auth',
        kind: 'securejoin vc-request-with-auth',
      });
      return queued(m, 'vc-request-with-auth');
    };
    const wrongFingerprint = await handleChatMail(a, await forge(other.fingerprint, true));
    expect(wrongFingerprint).toMatchObject({ handled: false, queued: false });
    expect(wrongFingerprint.detail).toMatch(/is not the signing key/);
    const noGossip = await handleChatMail(a, await forge(m.identity.fingerprint, false));
    expect(noGossip).toMatchObject({ handled: false, queued: false });
    expect(noGossip.detail).toMatch(/gossip/);
    expect((await a.invites.pending(a.clock())).some((i) => i.secret === auth)).toBe(true);
  }, 120_000);

  it('with no invite out and no join waiting, a stranger\'s chat mail is not read at all', async () => {
    const m = await mallory.open();
    const fresh = await makePeer(stack, 'carol', path.join(dir, 'fresh'));
    const c = await fresh.open();
    expect(await chatMailActive(c)).toBe(false);
    expect(await wantsChatMail(c, mallory.email)).toBe(false);
    expect(await wantsChatMail(m, 'nobody@example.test')).toBe(false);
  }, 120_000);

  it('the commands: `peerdial invite --delta-chat` prints the link and a QR code, `peerdial join LINK` queues the vc-request', async () => {
    const inv = await runCli(['--config', alice.configFile, 'invite', '--delta-chat', '--expires', '600'], { timeoutMs: 300_000 });
    expect(inv.code, inv.stderr).toBe(0);
    const link = /https:\/\/i\.delta\.chat\/#\S+/.exec(inv.stdout)?.[0];
    expect(link).toBeDefined();
    expect(parseSecureJoinLink(link!)).toMatchObject({ addr: alice.email, fingerprint: (await alice.open()).identity.fingerprint, v3: false });
    // the terminal QR code: rows of block characters and spaces only, once the colours are taken off
    // (not "a run of 10 blocks": how many rows have one depends on the random link, as few as 5)
    const qrRows = inv.stdout.split('\n').map((l) => l.replace(/\x1b\[[0-9;]*m/g, '')).filter((l) => /^[\u2580-\u259f ]+$/.test(l) && /[\u2580-\u259f]/.test(l));
    expect(qrRows.length).toBeGreaterThan(5);

    const join = await runCli(['--config', mallory.configFile, '--json', 'join', link!, '--queue-only'], { timeoutMs: 300_000 });
    expect(join.code, join.stderr).toBe(0);
    expect(JSON.parse(join.stdout)).toMatchObject({ deltaChat: true, contact: { email: alice.email, deltaChat: true } });
    const r = await handleChatMail(await alice.open(), await queued(await mallory.open(), 'vc-request'));
    expect(r).toMatchObject({ handled: true, step: 'vc-request' });
  }, 300_000);
});
