/**
 * `peerdial init`: write (or extend) the config with one mail account,
 * create the identity key, and test both logins, saying which layer failed.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PeerdialError } from '../errors.js';
import { loadConfig, saveConfig, type AccountConfig, type Config, type ServerConfig, type WhoMayCall } from '../config/config.js';
import { providerFor, type ServerSettings } from '../config/providers.js';
import { resolveSecret, type SecretSource } from '../config/secret.js';
import { defaultConfigPath, defaultStateDir } from '../store/paths.js';
import { isValidEmail } from '../store/contacts.js';
import type { AnswerMode } from '../store/contacts.js';
import { Account } from '../agent/account.js';
import { probeImap } from '../mail/imap.js';
import { probeSmtp } from '../mail/smtp.js';
import { formatFingerprint } from '../wire/identity.js';

export interface InitOptions {
  config?: string;
  email: string;
  name?: string;
  imap?: Partial<ServerSettings>;
  smtp?: Partial<ServerSettings>;
  user?: string;
  secret: SecretSource;
  caFile?: string;
  folder?: string;
  stateDir?: string;
  whoMayCall?: WhoMayCall;
  answer?: AnswerMode;
  ringSeconds?: number;
  iceServers?: string[];
  bindAddress?: string;
  downloadDir?: string;
  /** Save even when a login test fails. */
  skipCheck?: boolean;
  /** Replace an existing account of the same address. */
  force?: boolean;
  onProgress?: (e: { step: string; ok?: boolean; detail?: string }) => void;
}

export interface InitResult {
  configFile: string;
  email: string;
  fingerprint: string;
  checks: { what: 'IMAP' | 'SMTP'; ok: boolean; detail: string; idle?: boolean }[];
}

/** Defaults for a new config; no STUN server is contacted by tests (they pass their own). */
export const DEFAULT_ICE_SERVERS = ['stun:stun.l.google.com:19302'];

function serverFrom(what: 'imap' | 'smtp', given: Partial<ServerSettings> | undefined, email: string, opts: InitOptions): ServerConfig {
  const known = providerFor(email)?.[what];
  const host = given?.host ?? known?.host;
  if (!host) {
    throw new PeerdialError('USAGE', `peerdial does not know the ${what.toUpperCase()} server of ${email.split('@')[1]}.`, {
      hint: `Give it with --${what}-host HOST --${what}-port PORT --${what}-tls tls|starttls.`,
    });
  }
  const tls = given?.tls ?? known?.tls ?? 'tls';
  const port = given?.port ?? known?.port ?? (what === 'imap' ? (tls === 'tls' ? 993 : 143) : tls === 'tls' ? 465 : 587);
  return {
    host,
    port,
    tls,
    user: opts.user ?? email,
    ...(opts.caFile ? { caFile: path.resolve(opts.caFile) } : {}),
    ...opts.secret,
  };
}

export async function init(opts: InitOptions): Promise<InitResult> {
  const email = opts.email.trim().toLowerCase();
  if (!isValidEmail(email)) throw new PeerdialError('USAGE', `"${opts.email}" is not an e-mail address.`);
  const src = opts.secret;
  if (!src.command && !src.env && !src.prompt && src.password === undefined) {
    throw new PeerdialError('USAGE', 'Say where the mail password comes from.', {
      hint: 'Use --password-command "pass show mail", --password-env VAR, or --password-prompt.',
    });
  }
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
  const account: AccountConfig = {
    email,
    folder: opts.folder ?? 'Peerdial',
    imap: serverFrom('imap', opts.imap, email, opts),
    smtp: serverFrom('smtp', opts.smtp, email, opts),
    ...(opts.name ? { name: opts.name } : {}),
  };
  const base: Omit<Config, 'file'> = existing ?? {
    stateDir: opts.stateDir ? path.resolve(opts.stateDir) : defaultStateDir(),
    ringSeconds: 120,
    whoMayCall: 'contacts',
    answer: 'ring',
    downloadDir: '~/Downloads/peerdial',
    pollSeconds: 60,
    idleSeconds: 300,
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
      ...(opts.bindAddress ? { bindAddress: opts.bindAddress } : {}),
    },
    accounts: [...base.accounts.filter((a) => a.email !== email), account],
    defaultAccount: base.defaultAccount ?? email,
  };
  // Check the logins with the settings as they will be written, before writing them.
  const result: InitResult = { configFile: file, email, fingerprint: '', checks: [] };
  for (const what of ['IMAP', 'SMTP'] as const) {
    opts.onProgress?.({ step: `checking ${what} login at ${account[what === 'IMAP' ? 'imap' : 'smtp'].host}` });
    try {
      const server = what === 'IMAP' ? account.imap : account.smtp;
      const password = await resolveSecret(server, `${what} ${server.user}@${server.host}`);
      if (what === 'IMAP') {
        const { idle } = await probeImap({ server, password });
        result.checks.push({ what, ok: true, idle, detail: idle ? 'login ok, IDLE supported' : 'login ok, no IDLE (peerdial will poll)' });
      } else {
        await probeSmtp({ server, password });
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
      failed[0]!.detail.startsWith('AUTH_FAILED') ? 'AUTH_FAILED' : 'TCP_FAILED',
      `Nothing was saved: ${failed.map((f) => `${f.what} ${f.detail}`).join('; ')}`,
      { hint: 'Fix the settings and run init again, or add --skip-check to save them anyway.' },
    );
  }
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await saveConfig(file, cfg);
  const acc = await Account.open({ ...cfg, file }, { email, create: true });
  result.fingerprint = formatFingerprint(acc.identity.fingerprint);
  return result;
}
