/**
 * `peerdial init`: write (or extend) the config with one mail account,
 * create the identity key, and test both logins, saying which layer failed.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PeerdialError } from '../errors.js';
import { loadConfig, saveConfig, type AccountConfig, type Config, type OAuth2Settings, type ServerConfig, type WhoMayCall } from '../config/config.js';
import type { ServerSettings } from '../config/providers.js';
import { discover, type DiscoverOptions, type Discovered } from '../config/autoconfig.js';
import { resolveSecret, type SecretSource } from '../config/secret.js';
import { parseTurnUrl, redact } from '../config/turn.js';
import { accountStateDir, defaultConfigPath, defaultStateDir } from '../store/paths.js';
import { TokenProvider, tokenKey } from '../mail/oauth2.js';
import { requireMailAddress } from '../wire/address.js';
import type { AnswerMode } from '../store/contacts.js';
import { Account } from '../agent/account.js';
import { probeImap } from '../mail/imap.js';
import { probeSmtp } from '../mail/smtp.js';
import { checkSieveRule, describeSieveRule, installSieveRule, MANAGESIEVE_PORT, sieveLoginFor } from '../mail/sieve-rule.js';
import { formatFingerprint } from '../wire/identity.js';

export interface InitOptions {
  config?: string;
  email: string;
  name?: string;
  imap?: Partial<ServerSettings>;
  smtp?: Partial<ServerSettings>;
  user?: string;
  secret: SecretSource;
  /** Default "password". With "oauth2", `oauth2` says how tokens are obtained and `secret` is not used. */
  auth?: 'password' | 'oauth2';
  oauth2?: OAuth2Settings;
  /** How servers are looked up when the table has no entry (tests inject loopback DNS and HTTP). */
  discovery?: DiscoverOptions;
  caFile?: string;
  folder?: string;
  stateDir?: string;
  whoMayCall?: WhoMayCall;
  answer?: AnswerMode;
  ringSeconds?: number;
  iceServers?: string[];
  /** TURN relays the user chose (`--turn`), turn:USER[:PASS]@HOST:PORT, UDP only. */
  turn?: string[];
  /** Where the TURN password comes from when a `turn` URL has none. */
  turnSecret?: { command?: string; env?: string; file?: string };
  bindAddress?: string;
  downloadDir?: string;
  /**
   * Install peerdial's server-side rule through ManageSieve on the IMAP host
   * (true: port 4190, a number: that port): peerdial mail is then filed into
   * the folder at delivery, away from other mail clients.
   */
  sieve?: boolean | number;
  /** Asked (interactive init, `sieve` not given) when the IMAP host answers on the ManageSieve port. */
  askSieve?: (text: string) => Promise<boolean>;
  /** Save even when a login test fails. */
  skipCheck?: boolean;
  /** Replace an existing account of the same address. */
  force?: boolean;
  /** Servers found in DNS (SRV records, autoconfig document) are taken without asking. */
  yes?: boolean;
  /**
   * Asked before a password or token goes to servers that DNS named (DNS is
   * not authenticated: whoever answers it chooses where the password goes).
   * Without it and without `yes`, init stops before sending anything.
   */
  confirm?: (servers: ServersToConfirm) => Promise<boolean>;
  onProgress?: (e: { step: string; ok?: boolean; detail?: string }) => void;
}

export interface InitResult {
  configFile: string;
  email: string;
  fingerprint: string;
  checks: { what: 'IMAP' | 'SMTP' | 'Sieve'; ok: boolean; detail: string; idle?: boolean; skipped?: boolean; hint?: string }[];
  /** Where host, port and TLS came from when not all were given. */
  settingsFrom?: { source: Discovered['source']; detail: string; note?: string };
}

/** Defaults for a new config; no STUN server is contacted by tests (they pass their own). */
export const DEFAULT_ICE_SERVERS = ['stun:stun.l.google.com:19302'];

function serverFrom(what: 'imap' | 'smtp', given: Partial<ServerSettings> | undefined, email: string, opts: InitOptions, found?: Discovered): ServerConfig {
  const known = found?.[what];
  const host = given?.host ?? known?.host;
  if (!host) {
    throw new PeerdialError('USAGE', `peerdial does not know the ${what.toUpperCase()} server of ${email.split('@')[1]} (not in its table, no SRV records, no autoconfig document).`, {
      hint: `Give it with --${what}-host HOST --${what}-port PORT --${what}-tls tls|starttls.`,
    });
  }
  const tls = given?.tls ?? known?.tls ?? 'tls';
  const port = given?.port ?? known?.port ?? (what === 'imap' ? (tls === 'tls' ? 993 : 143) : tls === 'tls' ? 465 : 587);
  const docUser = given?.host ? undefined : what === 'imap' ? found?.imapUser : found?.smtpUser;
  return {
    host,
    port,
    tls,
    user: opts.user ?? docUser ?? email,
    ...(opts.caFile ? { caFile: path.resolve(opts.caFile) } : {}),
    ...(opts.auth === 'oauth2' ? { auth: 'oauth2' as const, oauth2: { ...opts.oauth2 } } : opts.secret),
  };
}

/** Servers named by DNS, shown to the user before the password goes there. */
export interface ServersToConfirm {
  source: 'srv' | 'autoconfig';
  /** The SRV names or the document's URL. */
  detail: string;
  imap: { host: string; port: number; tls: string; user: string };
  smtp: { host: string; port: number; tls: string; user: string };
  /** One paragraph for a terminal. */
  text: string;
}

/**
 * Whether the servers need the user's word: yes when DNS (SRV records or the
 * autoconfig document) chose a host the user did not give; never for the
 * built-in provider table.
 */
export function serversToConfirm(found: Discovered | undefined, given: { imap?: Partial<ServerSettings>; smtp?: Partial<ServerSettings> }, account: AccountConfig): ServersToConfirm | undefined {
  if (!found || found.source === 'table') return undefined;
  if (given.imap?.host && given.smtp?.host) return undefined;
  const side = (s: ServerConfig) => ({ host: s.host, port: s.port, tls: s.tls, user: s.user });
  // the login name may come from the document: no control or bidi characters reach the terminal
  const clean = (t: string) => t.replace(/[\p{Cc}\p{Cf}]/gu, '?');
  const line = (what: string, s: ServerConfig) => clean(`  ${what} ${s.host} port ${s.port} (${s.tls === 'none' ? 'no TLS' : s.tls}), login ${s.user}`);
  return {
    source: found.source,
    detail: found.detail,
    imap: side(account.imap),
    smtp: side(account.smtp),
    text: `The mail servers of ${account.email.split('@')[1]} come from ${SOURCE_NAMES[found.source]} (${found.detail}), which anybody who answers DNS for you can forge:\n${line('IMAP', account.imap)}\n${line('SMTP', account.smtp)}`,
  };
}

const SOURCE_NAMES: Record<Discovered['source'], string> = {
  table: 'the provider table',
  srv: 'DNS SRV records',
  autoconfig: 'the autoconfig document',
};

export async function init(opts: InitOptions): Promise<InitResult> {
  const email = requireMailAddress(opts.email);
  const src = opts.secret;
  if (opts.auth === 'oauth2') {
    const o = opts.oauth2 ?? {};
    if (!o.tokenCommand && !o.provider) {
      throw new PeerdialError('USAGE', 'Say where the OAuth2 token comes from.', {
        hint: 'Use --token-command "CMD", or --oauth2-provider google|microsoft|custom with --oauth2-client-id ID (then: peerdial login).',
      });
    }
    if (o.provider && !o.clientId) throw new PeerdialError('USAGE', '--oauth2-provider needs --oauth2-client-id.');
    if (o.provider === 'custom' && (!o.tokenUrl || !o.deviceUrl)) {
      throw new PeerdialError('USAGE', '--oauth2-provider custom needs --oauth2-token-url and --oauth2-device-url.');
    }
  } else if (!src.command && !src.env && !src.prompt && src.password === undefined) {
    throw new PeerdialError('USAGE', 'Say where the mail password comes from.', {
      hint: 'Use --password-command "pass show mail", --password-env VAR, or --password-prompt.',
    });
  }
  for (const url of opts.turn ?? []) {
    try {
      parseTurnUrl(url);
    } catch (err) {
      throw new PeerdialError('USAGE', `--turn: ${(err as Error).message}`, { hint: (err as PeerdialError).hint ?? 'Write it as turn:USER:PASSWORD@HOST:PORT.' });
    }
  }
  const misplaced = opts.iceServers?.find((u) => /^turns?:/i.test(u));
  if (misplaced) throw new PeerdialError('USAGE', `--stun takes STUN servers: give "${redact(misplaced)}" with --turn instead.`);
  const file = defaultConfigPath(opts.config);
  let existing: Config | undefined;
  try {
    existing = await loadConfig(file);
  } catch (err) {
    if (!(err instanceof PeerdialError && err.code === 'CONFIG_MISSING')) throw err;
  }
  if (existing?.accounts.some((a) => a.email === email) && !opts.force) {
    throw new PeerdialError('USAGE', `${file} already has the account ${email}.`, { hint: 'Use --force to replace it.' });
  }
  // Table, then SRV records, then the autoconfig document; no lookups when both hosts are given.
  const bothGiven = Boolean(opts.imap?.host && opts.smtp?.host);
  if (!bothGiven) opts.onProgress?.({ step: `looking up the mail servers of ${email.split('@')[1]}` });
  const found = await discover(email, bothGiven ? { srv: false, document: false } : (opts.discovery ?? {}));
  const account: AccountConfig = {
    email,
    folder: opts.folder ?? 'Peerdial',
    imap: serverFrom('imap', opts.imap, email, opts, found),
    smtp: serverFrom('smtp', opts.smtp, email, opts, found),
    ...(opts.name ? { name: opts.name } : {}),
  };
  const base: Omit<Config, 'file'> = existing ?? {
    stateDir: opts.stateDir ? path.resolve(opts.stateDir) : defaultStateDir(),
    ringSeconds: 120,
    whoMayCall: 'contacts',
    answer: 'ring',
    downloadDir: '~/Downloads/peerdial',
    pollSeconds: 60,
    idleSeconds: 1500,
    singleCall: false,
    ice: { servers: DEFAULT_ICE_SERVERS },
    forwardAllow: [],
    accounts: [],
  };
  const cfg: Omit<Config, 'file'> = {
    ...base,
    ...(opts.stateDir ? { stateDir: path.resolve(opts.stateDir) } : {}),
    ...(opts.whoMayCall ? { whoMayCall: opts.whoMayCall } : {}),
    ...(opts.answer ? { answer: opts.answer } : {}),
    ...(opts.ringSeconds ? { ringSeconds: opts.ringSeconds } : {}),
    ...(opts.downloadDir ? { downloadDir: path.resolve(opts.downloadDir) } : {}),
    ice: {
      ...base.ice,
      ...(opts.iceServers ? { servers: opts.iceServers } : {}),
      ...(opts.turn?.length ? { turn: opts.turn } : {}),
      ...(opts.turnSecret && Object.keys(opts.turnSecret).length ? { turnSecret: { ...opts.turnSecret, ...(opts.turnSecret.file ? { file: path.resolve(opts.turnSecret.file) } : {}) } } : {}),
      ...(opts.bindAddress ? { bindAddress: opts.bindAddress } : {}),
    },
    accounts: [...base.accounts.filter((a) => a.email !== email), account],
    defaultAccount: base.defaultAccount ?? email,
  };
  // Check the logins with the settings as they will be written, before writing them.
  const result: InitResult = { configFile: file, email, fingerprint: '', checks: [] };
  if (found && !bothGiven) {
    result.settingsFrom = { source: found.source, detail: found.detail, ...(found.note ? { note: found.note } : {}) };
    if (found.oauth2 && opts.auth !== 'oauth2') result.settingsFrom.note = `${found.note ? `${found.note}; ` : ''}the provider offers OAuth2 logins (auth = "oauth2")`;
    opts.onProgress?.({ step: `server settings from ${SOURCE_NAMES[found.source]} (${found.detail})`, ok: true, detail: result.settingsFrom.note ?? `${account.imap.host}:${account.imap.port}, ${account.smtp.host}:${account.smtp.port}` });
  }
  // DNS chose the servers: the user sees them and says yes before any password or token goes there.
  const toConfirm = serversToConfirm(bothGiven ? undefined : found, { ...(opts.imap ? { imap: opts.imap } : {}), ...(opts.smtp ? { smtp: opts.smtp } : {}) }, account);
  if (toConfirm && !opts.yes) {
    if (!opts.confirm) {
      throw new PeerdialError('USAGE', `${toConfirm.text}\nNothing was sent or saved.`, {
        hint: 'Check that these are your provider\'s servers, then run init again with --yes (or give them yourself with --imap-host and --smtp-host).',
      });
    }
    if (!(await opts.confirm(toConfirm))) {
      throw new PeerdialError('ABORTED', 'Nothing was sent or saved: the servers were not confirmed.', {
        hint: 'Give the servers yourself: --imap-host HOST --imap-port PORT --smtp-host HOST --smtp-port PORT.',
      });
    }
  }
  const tokens = new TokenProvider(accountStateDir(cfg.stateDir, email));
  for (const what of ['IMAP', 'SMTP'] as const) {
    const server = what === 'IMAP' ? account.imap : account.smtp;
    const label = `${what} ${server.user}@${server.host}`;
    if (server.auth === 'oauth2' && !server.oauth2?.tokenCommand && !(await tokens.store.get(tokenKey(server)))) {
      result.checks.push({ what, ok: true, skipped: true, detail: `not checked yet: log in with peerdial login ${email}` });
      opts.onProgress?.({ step: what, ok: true, detail: result.checks[result.checks.length - 1]!.detail });
      continue;
    }
    opts.onProgress?.({ step: `checking ${what} login at ${server.host}` });
    try {
      const secret = server.auth === 'oauth2' ? { accessToken: await tokens.accessToken(server, label) } : { password: await resolveSecret(server, label) };
      if (what === 'IMAP') {
        const { idle } = await probeImap({ server, ...secret });
        result.checks.push({ what, ok: true, idle, detail: idle ? 'login ok, IDLE supported' : 'login ok, no IDLE (peerdial will poll)' });
      } else {
        await probeSmtp({ server, ...secret });
        result.checks.push({ what, ok: true, detail: 'login ok' });
      }
    } catch (err) {
      const e = err as PeerdialError;
      result.checks.push({ what, ok: false, detail: `${e.code ?? 'ERROR'}: ${e.message}${e.hint ? ` (${e.hint})` : ''}` });
    }
    const last = result.checks[result.checks.length - 1]!;
    opts.onProgress?.({ step: what, ok: last.ok, detail: last.detail });
  }
  const failed = result.checks.filter((c) => !c.ok);
  if (failed.length && !opts.skipCheck) {
    throw new PeerdialError(
      // the layer that failed first names the whole failure (a TLS failure is TLS_FAILED, not TCP_FAILED)
      (/^(DNS|TCP|TLS|AUTH)_FAILED\b/.exec(failed[0]!.detail)?.[0] as 'DNS_FAILED' | 'TCP_FAILED' | 'TLS_FAILED' | 'AUTH_FAILED' | undefined) ?? 'TCP_FAILED',
      `Nothing was saved: ${failed.map((f) => `${f.what} ${f.detail}`).join('; ')}`,
      { hint: 'Fix the settings and run init again, or add --skip-check to save them anyway.' },
    );
  }
  if (opts.sieve !== false && account.imap.auth !== 'oauth2' && (opts.sieve !== undefined || opts.askSieve)) {
    await offerSieveRule(account, opts, result);
  }
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await saveConfig(file, cfg);
  const acc = await Account.open({ ...cfg, file }, { email, create: true });
  result.fingerprint = formatFingerprint(acc.identity.fingerprint);
  return result;
}

/**
 * The server-side rule: installed (or, interactive, offered when the IMAP
 * host answers on the ManageSieve port). It never replaces the user's own
 * active script; `sieve_port` is saved only when the rule runs, so the
 * watcher idles on the folder only when mail is delivered there.
 */
async function offerSieveRule(account: AccountConfig, opts: InitOptions, result: InitResult): Promise<void> {
  const port = typeof opts.sieve === 'number' ? opts.sieve : MANAGESIEVE_PORT;
  const server = account.imap;
  const check = (ok: boolean, detail: string, hint?: string) => {
    result.checks.push({ what: 'Sieve', ok, detail, ...(hint ? { hint } : {}) });
    opts.onProgress?.({ step: 'Sieve', ok, detail: hint ? `${detail}\n${hint}` : detail });
  };
  try {
    const login = await sieveLoginFor({ server, password: await resolveSecret(server, `IMAP ${server.user}@${server.host}`) }, port, { timeoutMs: 10_000 });
    if (opts.sieve === undefined) {
      // asked only where the server has ManageSieve at all
      const status = await checkSieveRule(login, account.folder).catch(() => undefined);
      if (!status || status.state === 'active' || status.state === 'included') {
        if (status) {
          account.sievePort = port;
          check(true, describeSieveRule(status, account.folder).detail);
        }
        return;
      }
      const yes = await opts.askSieve!(
        `${server.host} offers server-side filters (ManageSieve). peerdial can add a rule that files its own mail into ${account.folder} at delivery, so other mail programs on this address (Delta Chat, phones) never delete it. Your own filters are not replaced. Add it? [y/N] `,
      );
      if (!yes) return;
    }
    opts.onProgress?.({ step: `installing peerdial's Sieve rule at ${server.host}:${port}` });
    const r = await installSieveRule(login, account.folder);
    const d = describeSieveRule(r, account.folder);
    if (d.ok) account.sievePort = port;
    check(d.ok, d.detail, r.instructions ?? d.hint);
  } catch (err) {
    const e = err as PeerdialError;
    check(false, `${e.code ?? 'ERROR'}: ${e.message}`, e.hint ?? 'peerdial works without the rule; another mail client that deletes mail from the server can then lose calls (see README, "Using peerdial beside Delta Chat").');
  }
}
