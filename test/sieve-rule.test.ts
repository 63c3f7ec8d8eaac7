/**
 * peerdial's server-side rule against a real Dovecot with Pigeonhole
 * (ManageSieve over STARTTLS, Sieve at LMTP delivery): installing it makes
 * a peerdial mail land in the peerdial folder and leaves other mail in the
 * INBOX; a user's own active script is never replaced, and the rule counts
 * as on once that script includes it.
 */
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { ManageSieveClient } from '../src/mail/managesieve.js';
import { checkSieveRule, INCLUDE_LINES, installSieveRule, SIEVE_SCRIPT_NAME, type SieveLogin } from '../src/mail/sieve-rule.js';

let stack: MailStack;
beforeAll(async () => {
  stack = await startMailStack({ users: ['alice', 'carol'], sieve: true });
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

const login = (name: string): SieveLogin => ({ host: 'localhost', port: stack.sievePort, ca: stack.ca, user: stack.users[name]!.user, password: stack.users[name]!.password });

async function mailTo(name: string, subject: string, headers: Record<string, string>): Promise<void> {
  const t = nodemailer.createTransport(stack.smtpConfig(name));
  try {
    await t.sendMail({ from: stack.users[name]!.email, to: stack.users[name]!.email, subject, text: subject, headers });
  } finally {
    t.close();
  }
}

/** Waits (no upper bound but the test's own) until a mail with this subject is in one of the folders; returns the folder. */
async function whereIs(name: string, subject: string, folders: string[]): Promise<string> {
  const c = new ImapFlow({ ...stack.imapConfig(name), logger: false });
  await c.connect();
  try {
    for (;;) {
      for (const f of folders) {
        const st = await c.status(f, { messages: true }).catch(() => undefined);
        if (!st || !st.messages) continue;
        const lock = await c.getMailboxLock(f);
        try {
          const hits = (await c.search({ subject }, { uid: true })) || [];
          if (hits.length) return f;
        } finally {
          lock.release();
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await c.logout();
  }
}

describe('ManageSieve client against Dovecot Pigeonhole', () => {
  it('greets, upgrades to TLS, logs in and lists no scripts for a new user', async () => {
    const c = await ManageSieveClient.connect({ host: 'localhost', port: stack.sievePort, ca: stack.ca });
    try {
      expect(c.capabilities.get('IMPLEMENTATION')).toMatch(/Pigeonhole/);
      expect(c.capabilities.get('SIEVE')).toMatch(/\bfileinto\b/);
      expect(c.capabilities.get('SASL')).toMatch(/PLAIN/);
      await c.authenticate(stack.users.carol!.user, stack.users.carol!.password);
      expect(await c.listScripts()).toEqual([]);
      await c.putScript('x "quoted"', 'keep;\r\n');
      expect(await c.listScripts()).toEqual([{ name: 'x "quoted"', active: false }]);
      expect(await c.getScript('x "quoted"')).toBe('keep;\r\n');
    } finally {
      await c.logout();
    }
  });

  it('refuses a wrong password as AUTH_FAILED', async () => {
    const c = await ManageSieveClient.connect({ host: 'localhost', port: stack.sievePort, ca: stack.ca });
    try {
      await expect(c.authenticate(stack.users.carol!.user, 'wrong')).rejects.toMatchObject({ code: 'AUTH_FAILED' });
    } finally {
      await c.logout();
    }
  });

  it('refuses a script the server cannot compile, with the server\'s reason', async () => {
    const c = await ManageSieveClient.connect({ host: 'localhost', port: stack.sievePort, ca: stack.ca });
    try {
      await c.authenticate(stack.users.carol!.user, stack.users.carol!.password);
      await expect(c.putScript('broken', 'fileinto "x"\r\n')).rejects.toMatchObject({ code: 'SIEVE_FAILED', message: expect.stringMatching(/PUTSCRIPT/) });
    } finally {
      await c.logout();
    }
  });
});

describe('the peerdial rule', () => {
  it('alice has no script: the rule is installed and made active; peerdial mail is filed at delivery, other mail stays in INBOX', async () => {
    expect((await checkSieveRule(login('alice'), 'Peerdial')).state).toBe('absent');
    const r = await installSieveRule(login('alice'), 'Peerdial');
    expect(r).toMatchObject({ state: 'active', did: 'activated', activeScript: SIEVE_SCRIPT_NAME });
    expect((await installSieveRule(login('alice'), 'Peerdial')).did).toBe('nothing');

    await mailTo('alice', 'a peerdial signal', { 'Peerdial-Version': '1' });
    await mailTo('alice', 'a letter from a friend', {});
    expect(await whereIs('alice', 'a peerdial signal', ['INBOX', 'Peerdial'])).toBe('Peerdial');
    expect(await whereIs('alice', 'a letter from a friend', ['INBOX', 'Peerdial'])).toBe('INBOX');
  });

  it('carol has her own active script: it stays active; she is told the include, and once she adds it the rule is on', async () => {
    const own = 'require "fileinto";\r\nif header :contains "subject" "newsletter" { fileinto "News"; }\r\n';
    const c = await ManageSieveClient.connect({ host: 'localhost', port: stack.sievePort, ca: stack.ca });
    try {
      await c.authenticate(stack.users.carol!.user, stack.users.carol!.password);
      await c.putScript('mine', own);
      await c.setActive('mine');
    } finally {
      await c.logout();
    }
    const r = await installSieveRule(login('carol'), 'Peerdial');
    expect(r).toMatchObject({ state: 'not-included', did: 'uploaded', activeScript: 'mine' });
    expect(r.instructions).toContain(INCLUDE_LINES);
    expect((await checkSieveRule(login('carol'), 'Peerdial')).state).toBe('not-included');

    // still hers, unchanged and active
    const c2 = await ManageSieveClient.connect({ host: 'localhost', port: stack.sievePort, ca: stack.ca });
    try {
      await c2.authenticate(stack.users.carol!.user, stack.users.carol!.password);
      expect((await c2.listScripts()).find((s) => s.active)?.name).toBe('mine');
      expect(await c2.getScript('mine')).toBe(own);
      // carol follows the instructions: the require beside hers, the include before her rules
      const [require, include] = INCLUDE_LINES.split('\n');
      const [hers, ...rules] = own.split('\r\n');
      await c2.putScript('mine', [require, hers, include, ...rules].join('\r\n'));
    } finally {
      await c2.logout();
    }
    expect((await checkSieveRule(login('carol'), 'Peerdial')).state).toBe('included');
    await mailTo('carol', 'a peerdial signal for carol', { 'Peerdial-Version': '1' });
    expect(await whereIs('carol', 'a peerdial signal for carol', ['INBOX', 'Peerdial'])).toBe('Peerdial');
  });
});
