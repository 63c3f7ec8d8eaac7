/**
 * peerdial's server-side rule: a Sieve script, kept through ManageSieve
 * (src/mail/managesieve.ts), that files every mail with a
 * `Peerdial-Version` header into peerdial's folder at delivery, so another
 * mail client on the same address (Delta Chat with "delete from server",
 * a phone that expunges) never sees it in the INBOX.
 *
 * The rule lives in a script of its own, named "peerdial". When no script
 * is active it is made the active one. When the user has an active script
 * of their own it is never replaced: the user is told the two lines to put
 * at its top (`require "include"; include :personal "peerdial";`), and the
 * rule counts as on once that script includes it.
 */
import { promises as fs } from 'node:fs';
import { PeerdialError } from '../errors.js';
import { HEADER_VERSION } from '../wire/headers.js';
import { ManageSieveClient, type ManageSieveOptions } from './managesieve.js';
import type { ImapTarget } from './imap.js';

export const SIEVE_SCRIPT_NAME = 'peerdial';

/** A Sieve string literal: "..." with \\ and \" escaped. */
function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** The script for a folder; `create` when the server has the "mailbox" extension (fileinto :create). */
export function sieveRuleScript(folder: string, opts: { create?: boolean } = {}): string {
  const create = opts.create ?? true;
  return [
    `# peerdial: files peerdial's own mail (header ${HEADER_VERSION}) into its folder at delivery,`,
    '# so that other mail clients on this address never see, move or delete it.',
    `require [${create ? '"fileinto", "mailbox"' : '"fileinto"'}];`,
    `if exists ${quote(HEADER_VERSION)} {`,
    `  fileinto ${create ? ':create ' : ''}${quote(folder)};`,
    '  stop;',
    '}',
    '',
  ].join('\r\n');
}

/** The two lines a user's own active script needs at its top to run peerdial's rule first. */
export const INCLUDE_LINES = `require "include";\ninclude :personal ${quote(SIEVE_SCRIPT_NAME)};`;

export type SieveRuleState =
  /** peerdial's script is the active one, with the current rule. */
  | 'active'
  /** the user's active script includes peerdial's current rule. */
  | 'included'
  /** peerdial's script is there but not run: another script is active and does not include it. */
  | 'not-included'
  /** peerdial's script is run but holds another rule (another folder, an older version). */
  | 'outdated'
  /** no peerdial script. */
  | 'absent';

export interface SieveRuleStatus {
  state: SieveRuleState;
  /** The active script's name, when there is one. */
  activeScript?: string;
  /** The server's Sieve extensions (capability SIEVE). */
  extensions: string[];
  implementation: string;
}

function includesPeerdial(script: string): boolean {
  return /(^|\n)\s*include\b[^;]*"peerdial"\s*;/.test(script.replace(/\r\n/g, '\n'));
}

async function inspect(c: ManageSieveClient, folder: string): Promise<SieveRuleStatus & { expected: string }> {
  const extensions = (c.capabilities.get('SIEVE') ?? '').split(/\s+/).filter(Boolean);
  const expected = sieveRuleScript(folder, { create: extensions.includes('mailbox') });
  const base = { extensions, implementation: c.capabilities.get('IMPLEMENTATION') ?? '', expected };
  const scripts = await c.listScripts();
  const active = scripts.find((s) => s.active);
  const ours = scripts.find((s) => s.name === SIEVE_SCRIPT_NAME);
  const activeScript = active ? { activeScript: active.name } : {};
  if (!ours) return { state: 'absent', ...activeScript, ...base };
  const current = (await c.getScript(SIEVE_SCRIPT_NAME)).replace(/\r\n/g, '\n') === expected.replace(/\r\n/g, '\n');
  if (active?.name === SIEVE_SCRIPT_NAME) return { state: current ? 'active' : 'outdated', ...activeScript, ...base };
  if (active && includesPeerdial(await c.getScript(active.name))) return { state: current ? 'included' : 'outdated', ...activeScript, ...base };
  return { state: 'not-included', ...activeScript, ...base };
}

export interface SieveLogin extends ManageSieveOptions {
  user: string;
  password: string;
}

async function session<T>(login: SieveLogin, f: (c: ManageSieveClient) => Promise<T>): Promise<T> {
  const c = await ManageSieveClient.connect(login);
  try {
    await c.authenticate(login.user, login.password);
    return await f(c);
  } finally {
    await c.logout();
  }
}

/** Where the rule stands on the server (for `peerdial doctor`). */
export async function checkSieveRule(login: SieveLogin, folder: string): Promise<SieveRuleStatus> {
  return session(login, async (c) => {
    const { expected: _expected, ...status } = await inspect(c, folder);
    return status;
  });
}

export interface SieveInstallResult extends SieveRuleStatus {
  /** What was done: the script written and made active; written only (the user's own script stays active); nothing (it was already on). */
  did: 'activated' | 'uploaded' | 'nothing';
  /** When state is 'not-included': what the user has to add to their active script. */
  instructions?: string;
}

/** Installs (or updates) the rule without ever replacing a user's own active script. */
export async function installSieveRule(login: SieveLogin, folder: string): Promise<SieveInstallResult> {
  return session(login, async (c) => {
    const before = await inspect(c, folder);
    if (before.state === 'active' || before.state === 'included') {
      const { expected: _e, ...status } = before;
      return { ...status, did: 'nothing' };
    }
    if (!before.extensions.includes('fileinto')) {
      throw new PeerdialError('SIEVE_FAILED', `the Sieve server (${before.implementation || 'unknown'}) has no "fileinto" extension: it cannot file mail into a folder`);
    }
    const space = await c.haveSpace(SIEVE_SCRIPT_NAME, Buffer.byteLength(before.expected));
    if (!space.ok) {
      throw new PeerdialError('SIEVE_FAILED', `the Sieve server has no room for peerdial's script: ${space.why}`, { hint: 'Delete an unused Sieve script in your provider\'s web mail, then try again.' });
    }
    await c.putScript(SIEVE_SCRIPT_NAME, before.expected);
    const otherActive = before.activeScript && before.activeScript !== SIEVE_SCRIPT_NAME ? before.activeScript : undefined;
    if (!otherActive) {
      await c.setActive(SIEVE_SCRIPT_NAME);
      const { expected: _e, ...after } = await inspect(c, folder);
      return { ...after, did: 'activated' };
    }
    const { expected: _e, ...after } = await inspect(c, folder);
    return {
      ...after,
      did: 'uploaded',
      ...(after.state === 'not-included'
        ? { instructions: `Your own Sieve script "${otherActive}" is active; peerdial did not replace it. Put these two lines at its top (the require line beside its other require lines), in your provider's filter settings:\n${INCLUDE_LINES}` }
        : {}),
    };
  });
}

/** The standard ManageSieve port (RFC 5804). */
export const MANAGESIEVE_PORT = 4190;

/** The ManageSieve login for an account's IMAP login: same host, user and password, STARTTLS on `port`. */
export async function sieveLoginFor(t: ImapTarget, port: number, opts: { timeoutMs?: number } = {}): Promise<SieveLogin> {
  if (t.password === undefined) {
    throw new PeerdialError('SIEVE_FAILED', 'the server-side rule is installed with the account password; this account logs in with OAuth2', {
      hint: `Add the rule in your provider's filter settings: mail with the header ${HEADER_VERSION} goes into peerdial's folder.`,
    });
  }
  const ca = t.server.caFile ? await fs.readFile(t.server.caFile, 'utf8') : undefined;
  return {
    host: t.server.host,
    port,
    tls: t.server.tls === 'none' ? 'none' : 'starttls',
    user: t.server.user,
    password: t.password,
    ...(ca ? { ca } : {}),
    ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
  };
}

/** What a rule's state means for the user, and what to do about it. */
export function describeSieveRule(s: SieveRuleStatus, folder: string): { ok: boolean; detail: string; hint?: string } {
  switch (s.state) {
    case 'active':
      return { ok: true, detail: `the rule is active: mail with ${HEADER_VERSION} is filed into ${folder} at delivery (script "${SIEVE_SCRIPT_NAME}")` };
    case 'included':
      return { ok: true, detail: `the rule is active: your script "${s.activeScript}" includes "${SIEVE_SCRIPT_NAME}", which files mail with ${HEADER_VERSION} into ${folder} at delivery` };
    case 'not-included':
      return { ok: false, detail: `peerdial's script "${SIEVE_SCRIPT_NAME}" is on the server, but your own script "${s.activeScript}" is the active one and does not include it`, hint: `Put these lines at the top of "${s.activeScript}":\n${INCLUDE_LINES}` };
    case 'outdated':
      return { ok: false, detail: `the rule on the server files peerdial mail elsewhere than ${folder} (an older or changed script "${SIEVE_SCRIPT_NAME}")`, hint: 'Install it again: peerdial init --sieve --force (with your usual init options)' };
    case 'absent':
      return { ok: false, detail: 'the server offers ManageSieve, but peerdial\'s rule is not there: peerdial mail lands in the INBOX, where other mail clients can delete it', hint: 'Install it: peerdial init --sieve --force (with your usual init options)' };
  }
}
