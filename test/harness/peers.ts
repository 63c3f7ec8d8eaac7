/**
 * Test users of peerdial on a real mail stack: each gets a config file, a
 * state dir and an identity, made through the same `init` API the CLI
 * uses. Passwords come from a password command, as a careful user would
 * set it up.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ImapFlow } from 'imapflow';
import { init } from '../../src/api/init.js';
import { openAccount } from '../../src/api/open.js';
import type { Account, Clock } from '../../src/agent/account.js';
import type { MailStack } from './mail-stack.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(ROOT, 'bin', 'peerdial.js');

export interface Peer {
  name: string;
  email: string;
  configFile: string;
  stateDir: string;
  downloadDir: string;
  open(clock?: Clock): Promise<Account>;
}

/** What a test sets in a peer's config beyond the mail stack's account. */
export interface PeerSettings {
  whoMayCall?: 'everybody' | 'contacts' | 'nobody';
  answer?: 'auto-answer' | 'ring' | 'deny';
  ringSeconds?: number;
  sieve?: number;
}

export async function tempDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `peerdial-${prefix}-`));
  return dir;
}

export async function makePeer(
  stack: MailStack,
  name: string,
  dir: string,
  extra: PeerSettings = {},
): Promise<Peer> {
  const user = stack.users[name];
  if (!user) throw new Error(`no mail user ${name} in the stack`);
  const home = path.join(dir, name);
  await fs.mkdir(home, { recursive: true });
  const pwFile = path.join(home, 'password');
  await fs.writeFile(pwFile, user.password, { mode: 0o600 });
  const caFile = path.join(home, 'ca.pem');
  await fs.writeFile(caFile, stack.ca);
  const configFile = path.join(home, 'config.toml');
  const stateDir = path.join(home, 'state');
  const downloadDir = path.join(home, 'downloads');
  await init({
    config: configFile,
    email: user.email,
    name: name[0]!.toUpperCase() + name.slice(1),
    user: user.user,
    secret: { command: `cat '${pwFile}'` },
    imap: { host: stack.host, port: stack.imapPort, tls: 'starttls' },
    smtp: { host: stack.host, port: stack.smtpPort, tls: 'starttls' },
    caFile,
    stateDir,
    downloadDir,
    iceServers: [],
    bindAddress: '127.0.0.1',
    ...extra,
  });
  return {
    name,
    email: user.email,
    configFile,
    stateDir,
    downloadDir,
    open: (clock?: Clock) => openAccount({ config: configFile, ...(clock ? { clock } : {}) }),
  };
}

/**
 * Makes each peer a contact of every other one, with the other's key, as
 * `peerdial contacts add NAME EMAIL --key FILE` does: their mail to each
 * other is encrypted from the first one (addresses never go in clear text).
 */
export async function introduce(...peers: Peer[]): Promise<void> {
  const accounts = await Promise.all(peers.map((p) => p.open()));
  for (const [i, acc] of accounts.entries()) {
    for (const [j, other] of accounts.entries()) {
      if (i === j) continue;
      await acc.contacts.add({ name: peers[j]!.name, email: peers[j]!.email });
      await acc.contacts.pinKey(peers[j]!.email, other.identity.armoredPublicKey, other.identity.fingerprint, 'manual');
    }
  }
}

/** Makes each peer a contact of every other one, without keys: their keys come with first mails (which carry no addresses unless sent --plain). */
export async function introduceWithoutKeys(...peers: Peer[]): Promise<void> {
  for (const a of peers) {
    const acc = await a.open();
    for (const b of peers) if (b !== a) await acc.contacts.add({ name: b.name, email: b.email });
  }
}

/** A raw IMAP view of a user's mailbox, for asserting what peerdial left alone. */
export async function mailboxSnapshot(stack: MailStack, name: string, folder = 'INBOX'): Promise<{ uid: number; flags: string[]; source: string }[]> {
  const client = new ImapFlow({ ...stack.imapConfig(name), logger: false });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const lock = await client.getMailboxLock(folder);
    try {
      const out: { uid: number; flags: string[]; source: string }[] = [];
      if ((client.mailbox && client.mailbox.exists) === 0) return out;
      for await (const m of client.fetch('1:*', { uid: true, flags: true, source: true })) {
        // \\Recent is the server's, not anybody's change: it is set for the first session only.
        out.push({ uid: m.uid, flags: [...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort(), source: m.source!.toString('latin1') });
      }
      return out.sort((a, b) => a.uid - b.uid);
    } finally {
      lock.release();
    }
  } finally {
    await client.logout().catch(() => client.close());
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI (built into dist/ by `npm test`'s pretest). */
export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string | Buffer; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`peerdial ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 60_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Waits for a condition, polling; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface Pair {
  stack: MailStack;
  dir: string;
  alice: Peer;
  hitoshi: Peer;
  stop(): Promise<void>;
}

/** The usual cast on a fresh mail stack: alice, and hitoshi whose agent answers her automatically; contacts of each other. */
export async function aliceAndHitoshi(prefix: string, stackOf: () => Promise<MailStack>): Promise<Pair> {
  const stack = await stackOf();
  const dir = await tempDir(prefix);
  const alice = await makePeer(stack, 'alice', dir);
  const hitoshi = await makePeer(stack, 'hitoshi', dir, { answer: 'auto-answer' });
  await introduce(alice, hitoshi);
  return {
    stack,
    dir,
    alice,
    hitoshi,
    stop: async () => {
      await stack.stop();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
