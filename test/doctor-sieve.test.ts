/**
 * `peerdial doctor` beside another mail client that deletes new mail from
 * the server at once (as Delta Chat does with "delete from server"), on a
 * Dovecot with Sieve and ManageSieve: without the server-side rule the
 * doctor sees its test mail vanish and says what to do; with the rule
 * (installed by `init --sieve`) the mail is filed away at delivery, the
 * doctor reports the rule active and its test mail kept.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { makePeer, runCli, tempDir, type Peer } from './harness/peers.js';
import type { CheckResult } from '../src/doctor/checks.js';

const byId = (checks: CheckResult[], id: string) => checks.find((c) => c.id === id)!;

async function doctor(config: string): Promise<{ code: number | null; checks: CheckResult[]; stderr: string }> {
  const r = await runCli(['--config', config, '--json', 'doctor', '--timeout', '15', '--map-method', 'off'], { timeoutMs: 120_000 });
  const parsed = JSON.parse(r.stdout) as { ok: boolean; checks: CheckResult[] };
  return { code: r.code, checks: parsed.checks, stderr: r.stderr };
}

/** Another mail client on the user's INBOX that expunges every mail soon after it arrives. */
async function deleter(stack: MailStack, name: string): Promise<{ deleted: number; stop: () => Promise<void> }> {
  const c = new ImapFlow({ ...stack.imapConfig(name), logger: false });
  c.on('error', () => undefined);
  await c.connect();
  await c.mailboxOpen('INBOX');
  const state = { deleted: 0, stopped: false };
  // polls like a mail client does (NOOP every 200 ms) and expunges whatever is there
  const running = (async () => {
    while (!state.stopped && c.usable) {
      await c.noop();
      if (c.mailbox && c.mailbox.exists) {
        const uids = (await c.search({ all: true }, { uid: true })) || [];
        if (uids.length && (await c.messageDelete(uids.join(','), { uid: true }))) state.deleted += uids.length;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })().catch(() => undefined);
  return {
    get deleted() {
      return state.deleted;
    },
    stop: async () => {
      state.stopped = true;
      await c.logout().catch(() => c.close());
      await running;
    },
  };
}

let stack: MailStack;
let dir: string;
beforeAll(async () => {
  stack = await startMailStack({ users: ['alice', 'hitoshi'], sieve: true });
  dir = await tempDir('doctor-sieve');
}, 120_000);
afterAll(async () => {
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('another client deletes every new mail in the INBOX', () => {
  it('without the rule: doctor sees its test mail deleted before peerdial read it, and says to turn on the rule or Delta Chat\'s "delete from server" off', async () => {
    const hitoshi = await makePeer(stack, 'hitoshi', dir);
    const d = await deleter(stack, 'hitoshi');
    try {
      const { code, checks } = await doctor(hitoshi.configFile);
      expect(code, JSON.stringify(checks, null, 2)).toBe(1);
      const kept = byId(checks, 'mail-kept');
      expect(kept.verdict).toBe('fail');
      expect(kept.detail).toMatch(/deleted or moved by another mail client|did not show up in INBOX or Peerdial/);
      expect(kept.hint).toContain('init --sieve');
      expect(kept.hint).toContain('Delete from server');
      expect(d.deleted).toBeGreaterThan(0);
    } finally {
      await d.stop();
    }
  });

  it('with the rule from init --sieve: doctor reports it active, and its test mail is filed at delivery and kept', async () => {
    const alice: Peer = await makePeer(stack, 'alice', dir, { sieve: stack.sievePort });
    expect(await fs.readFile(alice.configFile, 'utf8')).toContain(`sieve_port = ${stack.sievePort}`);
    const d = await deleter(stack, 'alice');
    try {
      const { code, checks, stderr } = await doctor(alice.configFile);
      expect(byId(checks, 'sieve')).toMatchObject({ verdict: 'ok', detail: expect.stringContaining('the rule is active') });
      expect(byId(checks, 'mail-kept')).toMatchObject({ verdict: 'ok', detail: expect.stringContaining('filed there at delivery by the server-side rule') });
      // the IDLE timing mail went to the folder too, and the watcher on the folder saw it
      expect(byId(checks, 'imap-idle').verdict).toBe('ok');
      expect(code, stderr + JSON.stringify(checks, null, 2)).toBe(0);
      expect(d.deleted).toBe(0);
    } finally {
      await d.stop();
    }
  });
});

describe('peerdial init --sieve on the command line', () => {
  it('installs the rule, says so, and saves sieve_port; run again, it finds the rule already on', async () => {
    const stack2 = await startMailStack({ users: ['carol'], sieve: true });
    try {
      const home = path.join(dir, 'cli-carol');
      await fs.mkdir(home, { recursive: true });
      await fs.writeFile(path.join(home, 'ca.pem'), stack2.ca);
      const config = path.join(home, 'config.toml');
      const u = stack2.users.carol!;
      const args = ['--config', config, 'init', '--email', u.email, '--imap-host', stack2.host, '--imap-port', String(stack2.imapPort), '--imap-tls', 'starttls',
        '--smtp-host', stack2.host, '--smtp-port', String(stack2.smtpPort), '--smtp-tls', 'starttls', '--password-env', 'CAROL_PW', '--ca-file', path.join(home, 'ca.pem'),
        '--state-dir', path.join(home, 'state'), '--stun', 'none', '--sieve', String(stack2.sievePort)];
      const env = { ...process.env, CAROL_PW: u.password };
      const r = await runCli(args, { env, timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr + r.stdout).toMatch(/Sieve: ok: the rule is active: mail with Peerdial-Version is filed into Peerdial at delivery/);
      expect(await fs.readFile(config, 'utf8')).toContain(`sieve_port = ${stack2.sievePort}`);
      const again = await runCli([...args, '--force'], { env, timeoutMs: 60_000 });
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr + again.stdout).toMatch(/Sieve: ok: the rule is active/);
    } finally {
      await stack2.stop();
    }
  }, 180_000);
});
