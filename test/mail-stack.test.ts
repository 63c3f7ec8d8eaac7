// The real-mail-server harness itself: Postfix submission -> LMTP -> Dovecot
// -> IMAP, with TLS verified against the harness CA.
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { simpleParser } from 'mailparser';
import { startMailStack, processesUsing, type MailStack } from './harness/mail-stack.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function imapClient(stack: MailStack, name: string): ImapFlow {
  return new ImapFlow({ ...stack.imapConfig(name), logger: false });
}

async function send(stack: MailStack, from: string, to: string, subject: string, text = 'hello'): Promise<string> {
  const transport = nodemailer.createTransport(stack.smtpConfig(from));
  try {
    const info = await transport.sendMail({
      from: stack.users[from]!.email,
      to: stack.users[to]!.email,
      subject,
      text,
    });
    expect(info.accepted).toEqual([stack.users[to]!.email]);
    return info.messageId;
  } finally {
    transport.close();
  }
}

/** Subjects in a user's INBOX, via a fresh IMAP session. */
async function inboxSubjects(stack: MailStack, name: string): Promise<string[]> {
  const client = imapClient(stack, name);
  await client.connect();
  try {
    const lock = await client.getMailboxLock('INBOX');
    try {
      const subjects: string[] = [];
      if (typeof client.mailbox === 'object' && client.mailbox.exists > 0) {
        for await (const msg of client.fetch('1:*', { envelope: true })) subjects.push(msg.envelope?.subject ?? '');
      }
      return subjects;
    } finally {
      lock.release();
    }
  } finally {
    await client.logout().catch(() => {});
  }
}

function maildirFiles(stack: MailStack, name: string): number {
  const md = stack.users[name]!.maildir;
  return readdirSync(`${md}/new`).length + readdirSync(`${md}/cur`).length;
}

describe('mail stack (real Dovecot + Postfix on loopback)', () => {
  let stack: MailStack;
  let startMs = 0;

  beforeAll(async () => {
    const t0 = Date.now();
    stack = await startMailStack();
    startMs = Date.now() - t0;
  });

  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail' && stack) {
      console.error(await stack.log());
    }
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('starts on loopback with users, random passwords and a CA', () => {
    console.log(`mail stack start: ${startMs} ms (a figure, not a threshold: timings belong in npm run bench)`);
    expect(stack.host).toBe('127.0.0.1');
    expect(Object.keys(stack.users).sort()).toEqual(['alice', 'carol', 'hitoshi']);
    expect(stack.users.alice!.email).toBe('alice@example.test');
    expect(stack.users.alice!.password).not.toBe(stack.users.hitoshi!.password);
    expect(stack.users.alice!.password.length).toBeGreaterThanOrEqual(12);
    expect(stack.ca).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const ports = [stack.imapPort, stack.imapsPort, stack.smtpPort, stack.smtpsPort, stack.lmtpPort];
    expect(new Set(ports).size).toBe(5);
    for (const p of ports) expect(p).toBeGreaterThan(1024);
  });

  it('alice sends via submission (STARTTLS + AUTH), hitoshi gets it over IMAP IDLE', async () => {
    const client = imapClient(stack, 'hitoshi');
    await client.connect();
    try {
      // The connection was upgraded with STARTTLS and verified against the CA.
      expect(client.secureConnection).toBe(true);
      const lock = await client.getMailboxLock('INBOX');
      try {
        const before = typeof client.mailbox === 'object' ? client.mailbox.exists : -1;
        expect(before).toBe(0);
        const exists = new Promise<number>((resolve) => {
          client.on('exists', (ev: { count: number }) => resolve(ev.count));
        });
        const idle = client.idle();
        await until('IDLE started', async () => client.idling, 5_000);
        const t0 = Date.now();
        const messageId = await send(stack, 'alice', 'hitoshi', 'first call offer', 'v=0 offer');
        // No deadline of our own: a lost EXISTS ends the test at its timeout.
        const count = await exists;
        const latency = Date.now() - t0;
        console.log(`submission -> IMAP IDLE EXISTS: ${latency} ms`);
        expect(count).toBe(1);
        // The next command ends IDLE; idle() resolves then.
        const msg = await client.fetchOne('*', { source: true, envelope: true });
        expect(msg).toBeTruthy();
        if (!msg) return;
        expect(msg.envelope?.subject).toBe('first call offer');
        const parsed = await simpleParser(msg.source!);
        expect(parsed.from?.value[0]?.address).toBe('alice@example.test');
        expect(parsed.text?.trim()).toBe('v=0 offer');
        expect(parsed.messageId).toBe(messageId);
        await idle;
        expect(client.idling).toBe(false);
      } finally {
        lock.release();
      }
    } finally {
      await client.logout().catch(() => {});
    }
  });

  it('the implicit-TLS ports present a certificate the harness CA verifies', async () => {
    for (const port of [stack.imapsPort, stack.smtpsPort]) {
      const greeting = await new Promise<string>((resolve, reject) => {
        const sock = tls.connect({ host: '127.0.0.1', port, ca: stack.ca }, () => {
          sock.once('data', (d) => {
            resolve(d.toString());
            sock.destroy();
          });
        });
        sock.once('error', reject);
      });
      expect(greeting).toMatch(port === stack.imapsPort ? /^\* OK/ : /^220 /);
    }
    // ...and nothing else: without the CA the certificate is rejected.
    await expect(
      new Promise((resolve, reject) => {
        const sock = tls.connect({ host: '127.0.0.1', port: stack.imapsPort }, () => resolve(sock));
        sock.once('error', reject);
      }),
    ).rejects.toThrow();
  });

  it('submission refuses mail without AUTH and wrong passwords', async () => {
    const noAuth = nodemailer.createTransport({ ...stack.smtpConfig('alice'), auth: undefined });
    await expect(
      noAuth.sendMail({ from: 'alice@example.test', to: 'hitoshi@example.test', subject: 'x', text: 'x' }),
    ).rejects.toThrow();
    noAuth.close();
    const badPass = nodemailer.createTransport({ ...stack.smtpConfig('alice'), auth: { user: 'alice', pass: 'wrong' } });
    await expect(
      badPass.sendMail({ from: 'alice@example.test', to: 'hitoshi@example.test', subject: 'x', text: 'x' }),
    ).rejects.toThrow(/auth|535/i);
    badPass.close();
    // Unknown recipients and other domains are refused: nothing can leave.
    const t = nodemailer.createTransport(stack.smtpConfig('alice'));
    await expect(
      t.sendMail({ from: 'alice@example.test', to: 'someone@example.com', subject: 'x', text: 'x' }),
    ).rejects.toThrow();
    t.close();
    expect(await stack.queueSize()).toBe(0);
  });

  it('holdDelivery keeps mail queued; releaseDelivery delivers it', async () => {
    const before = (await inboxSubjects(stack, 'hitoshi')).length;
    await stack.holdDelivery();
    await send(stack, 'alice', 'hitoshi', 'held mail');
    expect(await stack.queueSize()).toBe(1);
    await sleep(2_500);
    expect(await stack.queueSize()).toBe(1);
    expect(await inboxSubjects(stack, 'hitoshi')).not.toContain('held mail');
    expect(maildirFiles(stack, 'hitoshi')).toBe(before);

    await stack.releaseDelivery();
    expect(await stack.queueSize()).toBe(0);
    const subjects = await until('held mail in INBOX', async () => {
      const s = await inboxSubjects(stack, 'hitoshi');
      return s.includes('held mail') ? s : undefined;
    });
    expect(subjects).toHaveLength(before + 1);

    // Not held any more: the next mail goes straight through.
    await send(stack, 'carol', 'hitoshi', 'after release');
    await until('mail after release', async () => (await inboxSubjects(stack, 'hitoshi')).includes('after release'));
    expect(await stack.queueSize()).toBe(0);
  });

  it('stopImap/startImap keeps the mail and mail sent meanwhile waits in the queue', async () => {
    const before = await inboxSubjects(stack, 'hitoshi');
    expect(before.length).toBeGreaterThan(0);
    const client = imapClient(stack, 'hitoshi');
    await client.connect();
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.on('error', () => {});

    await stack.stopImap();
    // The IMAP session is gone, and the port refuses connections.
    // A session that survived stopImap would never close: the test's timeout ends it.
    await closed;
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: stack.imapPort });
      s.once('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);

    // Postfix still accepts mail; it waits for LMTP to come back.
    await send(stack, 'alice', 'hitoshi', 'sent while imap down');
    expect(await stack.queueSize()).toBe(1);

    await stack.startImap();
    const after = await until('queued mail delivered after startImap', async () => {
      const s = await inboxSubjects(stack, 'hitoshi');
      return s.includes('sent while imap down') ? s : undefined;
    });
    expect(after.slice(0, before.length)).toEqual(before);
    expect(await until('empty queue', async () => (await stack.queueSize()) === 0)).toBe(true);
  });

  it('deliverRaw puts a fixture straight into INBOX and into folders', async () => {
    const raw = [
      'From: carol@example.test',
      'To: alice@example.test',
      'Subject: raw fixture',
      'Message-ID: <raw-fixture@example.test>',
      'Date: Tue, 25 Nov 2025 12:00:00 +0000',
      '',
      'fixture body',
      '',
    ].join('\r\n');
    await stack.deliverRaw('alice', raw);
    await stack.deliverRaw('alice', Buffer.from(raw.replace('raw fixture', 'archived fixture')), 'Archive');
    expect(await inboxSubjects(stack, 'alice')).toEqual(['raw fixture']);

    const client = imapClient(stack, 'alice');
    await client.connect();
    try {
      const list = await client.list();
      expect(list.map((m) => m.path)).toContain('Archive');
      const status = await client.status('Archive', { messages: true });
      expect(status && status.messages).toBe(1);
      const lock = await client.getMailboxLock('INBOX');
      try {
        const msg = await client.fetchOne('1', { source: true });
        const parsed = await simpleParser(msg ? msg.source! : Buffer.alloc(0));
        expect(parsed.messageId).toBe('<raw-fixture@example.test>');
        expect(parsed.text?.trim()).toBe('fixture body');
      } finally {
        lock.release();
      }
    } finally {
      await client.logout().catch(() => {});
    }
    await expect(stack.deliverRaw('nobody', raw)).rejects.toThrow(/nobody/);
  });

  it('log() returns both daemons\' logs', async () => {
    const log = await stack.log();
    expect(log).toMatch(/dovecot/);
    expect(log).toMatch(/postfix\/(submission|smtpd|qmgr|lmtp)/);
  });
});

describe('mail stack lifecycle', () => {
  it('two stacks run side by side, and stop leaves no process and no dir behind', async () => {
    const t0 = Date.now();
    const [a, b] = await Promise.all([startMailStack({ users: ['x'] }), startMailStack({ users: ['y'], domain: 'other.test' })]);
    const startMs = Date.now() - t0;
    try {
      expect(a.dir).not.toBe(b.dir);
      expect(a.imapPort).not.toBe(b.imapPort);
      expect(b.users.y!.email).toBe('y@other.test');
      await send(a, 'x', 'x', 'to myself');
      await until('self mail', async () => (await inboxSubjects(a, 'x')).includes('to myself'));
      expect(await inboxSubjects(b, 'y')).toEqual([]);
      expect(processesUsing(a.dir).length).toBeGreaterThan(0);
    } catch (err) {
      console.error(await a.log(), await b.log());
      throw err;
    } finally {
      const t1 = Date.now();
      await Promise.all([a.stop(), b.stop()]);
      console.info(`two stacks: start ${startMs} ms (parallel), stop ${Date.now() - t1} ms`);
    }
    for (const s of [a, b]) {
      expect(processesUsing(s.dir)).toEqual([]);
      expect(() => readdirSync(s.dir)).toThrow();
      // Ports are free again.
      for (const port of [s.imapPort, s.smtpPort, s.lmtpPort]) {
        const refused = await new Promise<boolean>((resolve) => {
          const sock = net.connect({ host: '127.0.0.1', port });
          sock.once('connect', () => {
            sock.destroy();
            resolve(false);
          });
          sock.once('error', () => resolve(true));
        });
        expect(refused).toBe(true);
      }
    }
    // Idempotent.
    await a.stop();
  });

  it('stop kills every process of the stack, checked by PID', async () => {
    const s = await startMailStack({ users: ['z'] });
    // Get worker processes going (imap, auth, smtpd, cleanup, lmtp, qmgr...).
    await send(s, 'z', 'z', 'spawn workers');
    await until('delivered', async () => (await inboxSubjects(s, 'z')).length === 1);
    const client = imapClient(s, 'z');
    await client.connect();
    client.on('error', () => {});
    await client.mailboxOpen('INBOX');

    const procs = processesUsing(s.dir).map((p) => ({ pid: p.pid, start: procStart(p.pid) }));
    const pids = procs.map((p) => p.pid);
    // Both masters are among them.
    const dovecotMaster = Number(readFileSync(`${s.dir}/dovecot/run/master.pid`, 'utf8').trim());
    const postfixMaster = Number(readFileSync(`${s.dir}/postfix/spool/pid/master.pid`, 'utf8').trim());
    expect(pids).toContain(dovecotMaster);
    expect(pids).toContain(postfixMaster);
    expect(procs.length).toBeGreaterThan(5);

    const t0 = Date.now();
    await s.stop();
    console.info(`stop with live sessions: ${Date.now() - t0} ms, ${procs.length} processes`);
    expect(processesUsing(s.dir)).toEqual([]);
    // None of those processes lives on (same PID and start time, not a zombie).
    const survivors = procs.filter((p) => {
      const now = procStart(p.pid);
      return now !== undefined && now === p.start && !isZombie(p.pid);
    });
    expect(survivors).toEqual([]);
    await client.logout().catch(() => {});
  });
});

function procStat(pid: number): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}
const procStart = (pid: number) => procStat(pid)?.[19];
const isZombie = (pid: number) => ['Z', 'X'].includes(procStat(pid)?.[0] ?? 'X');
