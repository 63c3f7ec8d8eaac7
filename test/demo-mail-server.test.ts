// The demo's in-process mail server (smtp-server + one hoodiecrow per user)
// driven through peerdial's own mail edges: src/mail/smtp.ts sends,
// src/mail/imap.ts connects, src/mail/inbox.ts watches. Loopback only.
import { describe, it, expect, beforeAll, afterAll, onTestFinished } from 'vitest';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ImapFlow } from 'imapflow';
import ts from 'typescript';
import { startDemoMailServer, type DemoMailServer } from '../src/demo/mail-server.js';
import { connectImap } from '../src/mail/imap.js';
import { sendRaw, smtpTransport } from '../src/mail/smtp.js';
import { InboxWatcher, type InboxMail, type Verdict } from '../src/mail/inbox.js';
import { Ledger } from '../src/store/ledger.js';
import { HEADER_VERSION } from '../src/wire/headers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));


let mailCount = 0;
/** A raw mail as peerdial's outbox would hand it to sendRaw; `peerdial` adds our version header. */
function rawMail(o: { from: string; to: string; subject: string; peerdial: boolean; body?: string }): { raw: Buffer; messageId: string } {
  const messageId = `<demo-${process.pid}-${++mailCount}@example.test>`;
  const lines = [
    `From: ${o.from}`,
    `To: ${o.to}`,
    `Subject: ${o.subject}`,
    `Message-ID: ${messageId}`,
    `Date: ${new Date().toUTCString()}`,
    ...(o.peerdial ? [`${HEADER_VERSION}: 1`] : []),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    o.body ?? 'hello',
    '',
  ];
  return { raw: Buffer.from(lines.join('\r\n'), 'utf8'), messageId };
}

/** alice's side exactly as peerdial configures it: smtpTransport + sendRaw. */
async function send(mail: DemoMailServer, from: string, to: string, raw: Buffer): Promise<void> {
  const target = { server: mail.smtpServer(from), password: mail.users[from]!.password };
  const transport = await smtpTransport(target);
  try {
    await sendRaw(transport, target, { from: mail.users[from]!.email, to: [to] }, raw);
  } finally {
    transport.close();
  }
}

async function login(mail: DemoMailServer, name: string): Promise<ImapFlow> {
  return connectImap({ server: mail.imapServer(name), password: mail.users[name]!.password });
}

describe('the demo mail server: alice mails hitoshi on loopback', () => {
  let mail: DemoMailServer;
  let hitoshi: ImapFlow | undefined;

  beforeAll(async () => {
    mail = await startDemoMailServer({ users: ['alice', 'hitoshi'] });
  });
  afterAll(async () => {
    await hitoshi?.logout().catch(() => hitoshi?.close());
    await mail?.stop();
  });

  it('hands out ServerConfig-shaped settings: 127.0.0.1, ports picked by the OS, no TLS', () => {
    expect(mail.host).toBe('127.0.0.1');
    expect(mail.users.alice!.email).toBe('alice@example.test');
    expect(mail.users.hitoshi!.imapPort).not.toBe(mail.users.alice!.imapPort);
    expect(mail.smtpServer('alice')).toEqual({ host: '127.0.0.1', port: mail.smtpPort, tls: 'none', user: 'alice@example.test', password: mail.users.alice!.password });
    expect(mail.imapServer('hitoshi')).toEqual({
      host: '127.0.0.1',
      port: mail.users.hitoshi!.imapPort,
      tls: 'none',
      user: 'hitoshi@example.test',
      password: mail.users.hitoshi!.password,
    });
    expect(() => mail.imapServer('mallory')).toThrow(/no user mallory/);
  });

  it("hitoshi idles; alice's call mail arrives as EXISTS at once; it is found by its header, peeked, moved", async () => {
    hitoshi = await login(mail, 'hitoshi');
    expect(hitoshi.capabilities.has('IDLE')).toBe(true);
    expect(hitoshi.capabilities.has('MOVE')).toBe(true);
    await hitoshi.mailboxOpen('INBOX');

    // A newsletter first: hitoshi's own mail, which peerdial must not touch.
    const other = rawMail({ from: 'alice@example.test', to: 'hitoshi@example.test', subject: 'Lunch?', peerdial: false, body: 'Grüße, ½ past 12' });
    await send(mail, 'alice', 'hitoshi@example.test', other.raw);
    await hitoshi.noop(); // takes the queued "* 1 EXISTS" for it

    // "At once": the EXISTS is pushed while the client is still idling (before
    // it sends DONE), not queued until the next command.
    const exists = new Promise<{ at: number; idling: boolean }>((resolve) => {
      const onExists = (e: { count: number }) => {
        if (e.count !== 2) return;
        hitoshi!.off('exists', onExists);
        resolve({ at: Date.now(), idling: hitoshi!.idling });
      };
      hitoshi!.on('exists', onExists);
    });
    const idling = hitoshi.idle();
    await sleep(20); // IDLE is on the wire
    const offer = rawMail({ from: 'alice@example.test', to: 'hitoshi@example.test', subject: 'Call', peerdial: true });
    const sentAt = Date.now();
    await send(mail, 'alice', 'hitoshi@example.test', offer.raw);
    const acceptedAt = Date.now();
    // Nothing ends IDLE until the noop below: an EXISTS held back until DONE never comes (the test's timeout).
    const { at: existsAt, idling: idlingAtExists } = await exists;
    console.log(`SMTP send -> IDLE EXISTS: ${existsAt - sentAt} ms (SMTP transaction ${acceptedAt - sentAt} ms, EXISTS ${existsAt - acceptedAt} ms after 250 OK)`);
    expect(idlingAtExists).toBe(true);
    await hitoshi.noop(); // ends IDLE
    await idling;

    // UID SEARCH UID 1:* HEADER Peerdial-Version "": ours only.
    const all = (await hitoshi.search({ uid: '1:*' }, { uid: true })) || [];
    expect(all).toHaveLength(2);
    const ours = (await hitoshi.search({ uid: `1:${Math.max(...all)}`, header: { [HEADER_VERSION]: true } }, { uid: true })) || [];
    expect(ours).toEqual([Math.max(...all)]);
    const uid = ours[0]!;
    const otherUid = Math.min(...all);
    // A range past the end still answers (peerdial filters u > lastUid itself).
    expect((await hitoshi.search({ uid: `${uid + 1}:*` }, { uid: true })) || []).toEqual([uid]);

    const meta = await hitoshi.fetchOne(String(uid), { uid: true, size: true, envelope: true }, { uid: true });
    expect(meta && meta.envelope?.messageId).toBe(offer.messageId);
    // BODY.PEEK[]: the bytes as sent (after the delivering server's trace headers), no \Seen.
    const source = async (u: number): Promise<Buffer> => {
      const m = await hitoshi!.fetchOne(String(u), { uid: true, source: true }, { uid: true });
      if (!m || !m.source) throw new Error(`no source for UID ${u}`);
      return m.source;
    };
    const otherSource = await source(otherUid);
    expect(otherSource.subarray(otherSource.length - other.raw.length).equals(other.raw)).toBe(true);
    expect(otherSource.toString('utf8')).toMatch(/^Return-Path: <alice@example\.test>\r\nReceived: from /);
    expect(meta && meta.size).toBe((await source(uid)).length);
    const seen: string[][] = [];
    for await (const m of hitoshi.fetch('1:*', { uid: true, flags: true }, { uid: true })) seen.push([...(m.flags ?? [])]);
    expect(seen).toEqual([[], []]);

    // Filed into peerdial's own folder with UID MOVE; the newsletter stays.
    expect((await hitoshi.list()).map((m) => m.path)).not.toContain('Peerdial');
    await hitoshi.mailboxCreate('Peerdial');
    expect((await hitoshi.list()).map((m) => m.path)).toContain('Peerdial');
    const moved = await hitoshi.messageMove(String(uid), 'Peerdial', { uid: true });
    expect(moved && moved.destination).toBe('Peerdial');
    expect((await hitoshi.search({ uid: '1:*' }, { uid: true })) || []).toEqual([otherUid]);
    expect(await hitoshi.status('Peerdial', { messages: true })).toMatchObject({ messages: 1 });
  });

  it('refuses a recipient it does not know with 550 (SMTP_PERMANENT), and a wrong password', async () => {
    const stray = rawMail({ from: 'alice@example.test', to: 'nobody@example.test', subject: 'Call', peerdial: true });
    const err = await send(mail, 'alice', 'nobody@example.test', stray.raw).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SMTP_PERMANENT' });
    expect(String((err as Error).message)).toMatch(/550/);

    const target = { server: { ...mail.smtpServer('alice'), password: 'wrong' }, password: 'wrong' };
    const transport = await smtpTransport(target);
    try {
      await expect(sendRaw(transport, target, { from: 'alice@example.test', to: ['hitoshi@example.test'] }, stray.raw)).rejects.toMatchObject({ code: 'AUTH_FAILED' });
    } finally {
      transport.close();
    }
    await expect(connectImap({ server: mail.imapServer('hitoshi'), password: 'wrong' })).rejects.toBeTruthy();
  });
});

describe("peerdial's InboxWatcher against the demo server", () => {
  let mail: DemoMailServer;
  let client: ImapFlow | undefined;
  let stateDir: string;

  beforeAll(async () => {
    mail = await startDemoMailServer({ users: ['alice', 'hitoshi'] });
    stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'peerdial-demo-ledger-'));
  });
  afterAll(async () => {
    await client?.logout().catch(() => client?.close());
    await mail?.stop();
    await fs.rm(stateDir, { recursive: true, force: true });
  });

  it('files the call mail into Peerdial, leaves the rest, and wakes from IDLE for the next one', async () => {
    const lunch = rawMail({ from: 'alice@example.test', to: 'hitoshi@example.test', subject: 'Lunch?', peerdial: false });
    const offer = rawMail({ from: 'alice@example.test', to: 'hitoshi@example.test', subject: 'Call', peerdial: true });
    await send(mail, 'alice', 'hitoshi@example.test', lunch.raw);
    await send(mail, 'alice', 'hitoshi@example.test', offer.raw);

    client = await login(mail, 'hitoshi');
    const classified: string[] = [];
    const mails: InboxMail<Verdict>[] = [];
    const expires = new Date(Date.now() + 3600_000).toISOString();
    const watcher = new InboxWatcher<Verdict>({
      client,
      ledger: new Ledger(stateDir),
      folder: 'Peerdial',
      classify: async (raw) => {
        const messageId = /^Message-ID: (\S+)/im.exec(raw.toString('utf8'))?.[1] ?? '';
        classified.push(messageId);
        return { ok: true, messageId, nonce: `nonce-${messageId}`, expires };
      },
      onMail: (m) => {
        mails.push(m);
      },
    });
    await watcher.prepare();
    expect((await client.list()).map((m) => m.path)).toContain('Peerdial');

    const first = await watcher.check();
    expect(first).toMatchObject({ scanned: 2, ours: 1, filed: 1, left: 0 });
    expect(classified).toEqual([offer.messageId]);
    expect(mails.map((m) => m.folder)).toEqual(['Peerdial']);
    expect(await watcher.check()).toMatchObject({ scanned: 0, ours: 0 });
    const inbox = [];
    for await (const m of client.fetch('1:*', { uid: true, flags: true, envelope: true })) inbox.push(m);
    expect(inbox.map((m) => m.envelope?.messageId)).toEqual([lunch.messageId]);
    expect([...(inbox[0]!.flags ?? [])]).toEqual([]);

    // watch(): IDLE, the next offer arrives, the watcher wakes and files it.
    const ac = new AbortController();
    const idled = new Promise<void>((resolve) => {
      const orig = client!.idle.bind(client);
      client!.idle = () => {
        resolve();
        return orig();
      };
    });
    const watching = watcher.watch({ signal: ac.signal });
    await idled;
    await sleep(20);
    const second = rawMail({ from: 'alice@example.test', to: 'hitoshi@example.test', subject: 'Call again', peerdial: true });
    const sentAt = Date.now();
    await send(mail, 'alice', 'hitoshi@example.test', second.raw);
    while (mails.length < 2) await sleep(5);
    console.log(`SMTP send -> InboxWatcher filed it (IDLE, SEARCH, FETCH, MOVE): ${Date.now() - sentAt} ms`);
    expect(mails[1]).toMatchObject({ folder: 'Peerdial', verdict: { ok: true, messageId: second.messageId } });
    ac.abort();
    await watching;
    expect(await client.status('Peerdial', { messages: true })).toMatchObject({ messages: 2 });
  });
});

describe('stop()', () => {
  it('leaves nothing open: a process that started, mailed, idled and stopped exits by itself, quietly', async () => {
    // The module (and what it imports from src/) is transpiled on the fly so
    // a plain `node` child can load it; it sits below node_modules so its
    // package imports resolve as in the project.
    const dir = await fs.mkdtemp(path.join(root, 'node_modules', '.peerdial-demo-test-'));
    try {
      await fs.writeFile(path.join(dir, 'package.json'), '{ "type": "module" }\n');
      const pending = ['demo/mail-server.ts'];
      const done = new Set<string>();
      for (let rel = pending.pop(); rel !== undefined; rel = pending.pop()) {
        if (done.has(rel)) continue;
        done.add(rel);
        const source = await fs.readFile(path.join(root, 'src', rel), 'utf8');
        for (const [, spec] of source.matchAll(/from '(\.{1,2}\/[^']+)\.js'/g)) pending.push(path.join(path.dirname(rel), `${spec}.ts`));
        const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
        await fs.mkdir(path.join(dir, path.dirname(rel)), { recursive: true });
        await fs.writeFile(path.join(dir, rel.replace(/\.ts$/, '.js')), js);
      }
      const modulePath = path.join(dir, 'demo', 'mail-server.js');
      const script = `
        import { ImapFlow } from 'imapflow';
        import nodemailer from 'nodemailer';
        const { startDemoMailServer } = await import(${JSON.stringify(pathToFileURL(modulePath).href)});
        const mail = await startDemoMailServer({ users: ['alice', 'hitoshi'] });
        const i = mail.imapServer('hitoshi');
        const client = new ImapFlow({ host: i.host, port: i.port, secure: false, doSTARTTLS: false, auth: { user: i.user, pass: i.password }, logger: false, disableAutoIdle: true });
        client.on('error', () => undefined);
        await client.connect();
        await client.mailboxOpen('INBOX');
        const exists = new Promise((resolve) => client.once('exists', resolve));
        client.idle().catch(() => undefined);
        const s = mail.smtpServer('alice');
        const transport = nodemailer.createTransport({ host: s.host, port: s.port, secure: false, ignoreTLS: true, auth: { user: s.user, pass: s.password } });
        await transport.sendMail({ envelope: { from: s.user, to: ['hitoshi@example.test'] }, raw: 'Subject: hi\\r\\n\\r\\nhello\\r\\n' });
        await exists;
        await mail.stop(); // the client is still idling: the server ends it
        console.log('stopped');
      `;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      // also when the test times out (its awaits never return then)
      onTestFinished(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const startedAt = Date.now();
      // The client idles on (IDLE's limit is 29 minutes): a stop() that waited for it,
      // or a handle left open, keeps the child alive until the test's timeout.
      const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      console.log(`child started, mailed, idled, stopped and exited in ${Date.now() - startedAt} ms`);
      expect({ code, stdout: stdout.trim(), stderr }).toEqual({ code: 0, stdout: 'stopped', stderr: '' });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
