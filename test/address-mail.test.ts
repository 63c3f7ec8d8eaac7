/**
 * The address mail, end to end through a real Postfix and Dovecot:
 * alice announces her addresses, hitoshi's watcher (idling) receives,
 * verifies and lists them, and hitoshi's other mail stays exactly as it
 * was. Then every kind of bad mail is reported and left alone.
 */
import { promises as fs, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { BIN, ROOT, introduceWithoutKeys, mailboxSnapshot, makePeer, runCli, tempDir, waitFor, type Peer } from './harness/peers.js';
import { watchInbox, type MailboxEvent } from '../src/agent/mailbox.js';
import { announce, inboxItem, type InboxItem } from '../src/api/mail.js';
import { buildMail } from '../src/wire/build.js';
import { generateIdentity } from '../src/wire/identity.js';
import type { PeerdialMessage } from '../src/wire/message.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
let carol: Peer;

const ADDRS = [
  { ip: '203.0.113.7', source: 'interface' as const, scope: 'documentation' },
  { ip: '2001:db8::7', source: 'interface' as const, scope: 'documentation' },
];

function newsletter(n: number): string {
  return [
    `From: News <news@shop.example>`,
    `To: hitoshi@example.test`,
    `Subject: Weekly offers ${n} (peerdial in the subject means nothing)`,
    `Message-ID: <news-${n}@shop.example>`,
    `Date: Tue, 24 Nov 2026 10:00:00 +0000`,
    `Content-Type: text/plain; charset=utf-8`,
    ``,
    `Buy things. Issue ${n}.`,
    ``,
  ].join('\r\n');
}

/** Runs hitoshi's watcher until `stop()`; collects what it reports. */
function watchHitoshi(): { items: InboxItem[]; events: MailboxEvent[]; stop: () => Promise<void> } {
  const items: InboxItem[] = [];
  const events: MailboxEvent[] = [];
  const ac = new AbortController();
  const running = (async () => {
    const acc = await hitoshi.open();
    await watchInbox(acc, { signal: ac.signal, onMail: (m) => void items.push(inboxItem(m)), onEvent: (e) => events.push(e) });
  })();
  return {
    items,
    events,
    stop: async () => {
      ac.abort();
      await running;
    },
  };
}

beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice', 'hitoshi', 'carol'] });
  dir = await tempDir('mail');
  alice = await makePeer(stack, 'alice', dir);
  hitoshi = await makePeer(stack, 'hitoshi', dir);
  carol = await makePeer(stack, 'carol', dir);
  // no keys yet: this file is about keys learned from first mails (trust on first use)
  await introduceWithoutKeys(alice, hitoshi);
  // hitoshi's own mail, which peerdial must never touch
  await stack.deliverRaw('hitoshi', newsletter(1));
  await stack.deliverRaw('hitoshi', newsletter(2));
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('alice announces her address to hitoshi', () => {
  it('hitoshi, idling, receives it, verifies it, pins her key and lists her addresses; his other mail is untouched', async () => {
    const before = await mailboxSnapshot(stack, 'hitoshi');
    expect(before).toHaveLength(2);
    const w = watchHitoshi();
    try {
      await waitFor('hitoshi idling', () => w.events.some((e) => e.type === 'idle'));
      // alice has no key of hitoshi: her first announce goes in clear text only because she asks (--plain);
      // that addresses are refused without it is test/privacy.test.ts
      const r = await announce(await alice.open(), { to: ['hitoshi'], addresses: ADDRS, plain: true });
      expect(r.drain?.sent).toBe(1);
      const item = await waitFor('announce arrives', () => w.items.find((i) => i.ok && i.kind === 'announce'));
      expect(item.from).toBe(alice.email);
      expect(item.addresses?.map((a) => a.ip)).toEqual(['203.0.113.7', '2001:db8::7']);
      expect(item.learnedKey).toBe(true);
      expect(item.folder).toBe('Peerdial');
    } finally {
      await w.stop();
    }
    const acc = await hitoshi.open();
    const c = await acc.contacts.require('alice');
    expect(c.fingerprint).toBe((await alice.open()).identity.fingerprint);
    expect(c.presence?.addresses.map((a) => a.ip)).toContain('203.0.113.7');
    // INBOX: the same two mails, same bytes, same flags; the announce was filed away.
    expect(await mailboxSnapshot(stack, 'hitoshi')).toEqual(before);
    const filed = await mailboxSnapshot(stack, 'hitoshi', 'Peerdial');
    expect(filed).toHaveLength(1);
    // Its shape is one that other mail programs leave alone: plain multipart/mixed on top.
    expect(filed[0]!.source).toMatch(/^Content-Type: multipart\/mixed/im);
    expect(filed[0]!.source).not.toMatch(/^Content-Type: multipart\/encrypted/im);
    expect(filed[0]!.source).toMatch(/^Peerdial-Version: 1/im);
    expect(filed[0]!.source).toMatch(/^Auto-Submitted: auto-generated/im);
  });

  it('hitoshi answers; alice learns his key, and from then on their mail is encrypted', async () => {
    await announce(await hitoshi.open(), { to: ['alice'], addresses: ADDRS });
    const r = await runCli(['--config', alice.configFile, '--json', 'inbox']);
    expect(r.code, r.stderr).toBe(0);
    const { items } = JSON.parse(r.stdout) as { items: InboxItem[] };
    expect(items).toHaveLength(1);
    // hitoshi already knew alice's key, so even his first mail to her is encrypted
    expect(items[0]).toMatchObject({ ok: true, from: hitoshi.email, kind: 'announce', learnedKey: true, encrypted: true });
    const second = await announce(await alice.open(), { to: ['hitoshi'], addresses: ADDRS });
    expect(second.drain?.sent).toBe(1);
    const r2 = await runCli(['--config', hitoshi.configFile, '--json', 'inbox']);
    const got = (JSON.parse(r2.stdout) as { items: InboxItem[] }).items;
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ ok: true, encrypted: true, learnedKey: false });
    // Encrypted: the provider cannot read the addresses.
    const filed = await mailboxSnapshot(stack, 'hitoshi', 'Peerdial');
    expect(filed.at(-1)!.source).not.toContain('203.0.113.7');
  });
});

describe('bad mail is reported with its reason and left alone', () => {
  async function deliverAndCheck(raws: (string | Buffer)[], accepted = 0): Promise<InboxItem[]> {
    const before = await mailboxSnapshot(stack, 'hitoshi');
    for (const raw of raws) await stack.deliverRaw('hitoshi', raw);
    const r = await runCli(['--config', hitoshi.configFile, '--json', 'inbox']);
    expect(r.code, r.stderr).toBe(0);
    const items = (JSON.parse(r.stdout) as { items: InboxItem[] }).items;
    if (process.env.DEBUG_INBOX) console.log(r.stdout, r.stderr);
    const after = await mailboxSnapshot(stack, 'hitoshi');
    // nothing moved, nothing flagged: the old mails unchanged, the new ones still there, unread
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.length).toBe(before.length + raws.length - accepted);
    expect(items.filter((i) => i.ok)).toHaveLength(accepted);
    for (const m of after.slice(before.length)) expect(m.flags).toEqual([]);
    return items;
  }

  function message(over: Partial<PeerdialMessage>): PeerdialMessage {
    const now = new Date();
    return {
      v: 1,
      kind: 'announce',
      from: alice.email,
      to: hitoshi.email,
      callId: randomBytes(12).toString('base64url'),
      created: now.toISOString(),
      expires: new Date(now.getTime() + 3600_000).toISOString(),
      nonce: randomBytes(16).toString('base64url'),
      addresses: ADDRS,
      ...over,
    };
  }

  it('a forged mail: From alice, signed by another key', async () => {
    const mallory = await generateIdentity(alice.email);
    const forged = await buildMail(message({}), { sender: mallory, date: new Date() });
    const [item] = await deliverAndCheck([forged.raw]);
    expect(item).toMatchObject({ ok: false, reason: 'key-mismatch' });
  });

  it('a tampered payload', async () => {
    const acc = await alice.open();
    const good = await buildMail(message({}), { sender: acc.identity, date: new Date() });
    const text = good.raw.toString('latin1');
    // flip one character inside the armored OpenPGP attachment
    const at = text.lastIndexOf('-----END PGP') - 200;
    const c = text[at] === 'A' ? 'B' : 'A';
    const tampered = text.slice(0, at) + c + text.slice(at + 1);
    const [item] = await deliverAndCheck([tampered]);
    expect(item?.ok).toBe(false);
    expect(['bad-signature', 'malformed', 'undecryptable']).toContain(item?.reason);
  });

  it('a replay of a mail that was already processed', async () => {
    const filed = await mailboxSnapshot(stack, 'hitoshi', 'Peerdial');
    const [item] = await deliverAndCheck([filed[0]!.source]);
    expect(item).toMatchObject({ ok: false, reason: 'replayed' });
  });

  it('a replay with a fresh Message-ID but the same signed payload (same nonce)', async () => {
    const acc = await alice.open();
    const msg = message({});
    const first = await buildMail(msg, { sender: acc.identity, date: new Date() });
    const copy = await buildMail(msg, { sender: acc.identity, date: new Date() });
    expect(copy.messageId).not.toBe(first.messageId);
    const items = await deliverAndCheck([first.raw, copy.raw], 1);
    expect(items.map((i) => (i.ok ? 'accepted' : i.reason))).toEqual(['accepted', 'replayed']);
  });

  it('an expired mail', async () => {
    const acc = await alice.open();
    const now = new Date();
    const short = await buildMail(message({ created: now.toISOString(), expires: new Date(now.getTime() + 1000).toISOString() }), { sender: acc.identity, date: now });
    await new Promise((r) => setTimeout(r, 1500));
    const [item] = await deliverAndCheck([short.raw]);
    expect(item).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('a mail for another recipient', async () => {
    const acc = await alice.open();
    const other = await buildMail(message({ to: carol.email }), { sender: acc.identity, date: new Date() });
    const [item] = await deliverAndCheck([other.raw]);
    expect(item).toMatchObject({ ok: false, reason: 'wrong-recipient' });
  });

  it('a mail from an unknown sender while only contacts may call', async () => {
    const acc = await carol.open();
    const m = await buildMail(message({ from: carol.email }), { sender: acc.identity, date: new Date() });
    const [item] = await deliverAndCheck([m.raw]);
    expect(item).toMatchObject({ ok: false, reason: 'unknown-sender' });
  });

  it('a mail that is not peerdial mail is not even fetched', async () => {
    const items = await deliverAndCheck([newsletter(3)]);
    expect(items).toEqual([]);
  });

  it('the whole corpus of malformed and forged fixtures: each reported, none crashes the watcher, none moved', async () => {
    const files: string[] = [];
    for (const sub of ['malformed', 'forged']) {
      for (const f of readdirSync(path.join(ROOT, 'fixtures', sub)).filter((x) => x.endsWith('.eml')).sort()) files.push(path.join(ROOT, 'fixtures', sub, f));
    }
    expect(files.length).toBeGreaterThan(20);
    const raws = files.map((f) => readFileSync(f));
    const items = await deliverAndCheck(raws);
    // every mail carrying our header is reported as rejected; none accepted
    expect(items.every((i) => !i.ok)).toBe(true);
    const ours = raws.filter((r) => /^Peerdial-Version:/im.test(r.subarray(0, 70_000).toString('latin1'))).length;
    expect(items.length).toBe(ours);
    for (const i of items) expect(i.reason).toBeTruthy();
  });
});

describe('nothing is lost when things break', () => {
  it('the outbox survives a crash between queueing and sending; the mail is delivered once after restart', async () => {
    // An SMTP "server" that accepts the connection and never says hello: the
    // sender hangs right after queueing, and we kill it there.
    const sockets: net.Socket[] = [];
    const blackhole = net.createServer((s) => void sockets.push(s));
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
    const port = (blackhole.address() as net.AddressInfo).port;
    const cfgText = await fs.readFile(alice.configFile, 'utf8');
    const brokenCfg = path.join(path.dirname(alice.configFile), 'config-blackhole.toml');
    await fs.writeFile(brokenCfg, cfgText.replace(`port = ${stack.smtpPort}`, `port = ${port}`));
    expect(await fs.readFile(brokenCfg, 'utf8')).toContain(`port = ${port}`);
    const child = spawn(process.execPath, [BIN, '--config', brokenCfg, 'announce', 'hitoshi'], { stdio: 'ignore' });
    const acc = await alice.open();
    await waitFor('the announce is queued and the sender is connected', async () => (await acc.outbox.list()).length === 1 && sockets.length > 0);
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    blackhole.close();
    sockets.forEach((s) => s.destroy());
    expect(await acc.outbox.pending()).toBe(1);
    // restart: the real server
    const flush = await runCli(['--config', alice.configFile, 'outbox', 'flush']);
    expect(flush.code, flush.stderr).toBe(0);
    expect(flush.stdout).toContain('sent 1');
    expect(await acc.outbox.pending()).toBe(0);
    const again = await runCli(['--config', alice.configFile, 'outbox', 'flush']);
    expect(again.stdout).toContain('sent 0');
    const r = await runCli(['--config', hitoshi.configFile, '--json', 'inbox']);
    const got = (JSON.parse(r.stdout) as { items: InboxItem[] }).items.filter((i) => i.ok);
    expect(got).toHaveLength(1);
  });

  it('the watcher survives the IMAP server being stopped and started again', async () => {
    const w = watchHitoshi();
    try {
      await waitFor('idling', () => w.events.some((e) => e.type === 'idle'));
      await stack.stopImap();
      await waitFor('disconnect noticed', () => w.events.some((e) => e.type === 'disconnected'), 30_000);
      await stack.startImap();
      await waitFor('reconnected', () => w.events.filter((e) => e.type === 'connected').length >= 2, 90_000, 200);
      await announce(await alice.open(), { to: ['hitoshi'], addresses: ADDRS });
      const item = await waitFor('announce after reconnect', () => w.items.find((i) => i.ok), 30_000);
      expect(item.from).toBe(alice.email);
    } finally {
      await w.stop();
    }
  });
});
