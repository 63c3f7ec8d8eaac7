/**
 * The configuration file (TOML). Read and validated into typed settings;
 * every mistake is reported with the key that is wrong.
 *
 *   [defaults]              ring_seconds, who_may_call, answer, download_dir, state_dir, account
 *   [ice]                   servers, bind_address, port_range_begin, port_range_end, port_mapping
 *   [forward]               allow = ["127.0.0.1:8554"]  targets callers may reach with --forward
 *   [link]                  up, down, timeout_seconds, idle_down_seconds, poll_minutes  (dial-up style links)
 *   [[wake]]                email, mac, address, port, config  (machines `peerdial wake-relay` wakes)
 *   [[accounts]]            email, name, folder, [accounts.imap], [accounts.smtp]
 *     imap/smtp: host, port, tls ("tls" | "starttls" | "none"), user, ca_file,
 *                auth = "password" (default): password_command | password_env | password_prompt | password
 *                auth = "oauth2": token_command, or oauth2_provider ("google" | "microsoft" | "custom"),
 *                  oauth2_client_id, oauth2_client_secret, oauth2_scope,
 *                  oauth2_token_url + oauth2_device_url (custom); refresh token from `peerdial login`
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { PeerdialError } from '../errors.js';
import { writeFileAtomic } from '../store/files.js';
import { defaultStateDir, expandHome } from '../store/paths.js';
import type { AnswerMode } from '../store/contacts.js';
import type { SecretSource } from './secret.js';
import { parseMac } from '../address/wol.js';

export type WhoMayCall = 'everybody' | 'contacts' | 'nobody';

export type OAuth2Provider = 'google' | 'microsoft' | 'custom';

/** How an access token is obtained when auth = "oauth2". */
export interface OAuth2Settings {
  /** Prints an access token (like msmtp passwordeval); the token is used as printed. */
  tokenCommand?: string;
  /** Built-in refresh: the refresh token comes from `peerdial login` and lives in the state dir. */
  provider?: OAuth2Provider;
  clientId?: string;
  /** Only for providers that want one with installed apps (Google). */
  clientSecret?: string;
  /** Required for "custom"; the built-in providers have theirs. */
  tokenUrl?: string;
  /** RFC 8628 device_authorization_endpoint; required for "custom". */
  deviceUrl?: string;
  scope?: string;
}

export interface ServerConfig extends SecretSource {
  host: string;
  port: number;
  tls: 'tls' | 'starttls' | 'none';
  user: string;
  /** Extra CA certificate (PEM file) to trust, e.g. a self-hosted server's. */
  caFile?: string;
  /** Absent means "password". */
  auth?: 'password' | 'oauth2';
  /** Present exactly when auth = "oauth2". */
  oauth2?: OAuth2Settings;
}

export interface AccountConfig {
  email: string;
  name?: string;
  /** IMAP folder peerdial files its own verified mail into. */
  folder: string;
  imap: ServerConfig;
  smtp: ServerConfig;
}

export interface IceSettings {
  servers: string[];
  bindAddress?: string;
  portRangeBegin?: number;
  portRangeEnd?: number;
  /** Ask the router (NAT-PMP / UPnP) to forward the call's UDP port; 'off' by default. */
  portMapping?: 'auto' | 'upnp' | 'natpmp' | 'off';
}

/** Commands that bring a link (modem, VPN, LTE) up and down around calls and mailbox checks. */
export interface LinkSettings {
  /** Run via /bin/sh before a call or a mailbox check, e.g. "pon provider". */
  up?: string;
  /** Run after hang-up or idle time, e.g. "poff". */
  down?: string;
  /** Each command is killed after this long. */
  timeoutSeconds: number;
  /** In poll mode, how long the link stays up after a call ended before `down`. */
  idleDownSeconds: number;
  /** Poll mode: bring the link up every N minutes, check mail, bring it down; 0 = off. */
  pollMinutes: number;
}

/** A sleeping machine that `peerdial wake-relay` wakes when an offer for it arrives. */
export interface WakeTarget {
  email: string;
  mac: string;
  /** Where the magic packet goes (broadcast address). */
  address: string;
  port: number;
  /** The sleeping machine's peerdial config (its IMAP settings and contacts), read-only. */
  config?: string;
}

export interface Config {
  file: string;
  stateDir: string;
  defaultAccount?: string;
  ringSeconds: number;
  whoMayCall: WhoMayCall;
  answer: AnswerMode;
  downloadDir: string;
  /** Poll interval when the server has no IDLE, seconds. */
  pollSeconds: number;
  /** Re-issue IDLE this often, seconds (servers drop IDLE after 29-30 min). */
  idleSeconds: number;
  /** The agent takes one call at a time and answers others "busy". */
  singleCall: boolean;
  ice: IceSettings;
  /** Targets that callers may reach through `--forward` ("HOST:PORT" or "HOST:*"). Default: none. */
  forwardAllow: string[];
  /** [link]: absent when the section is absent. */
  link?: LinkSettings;
  /** [[wake]]: machines this one wakes (as a relay). */
  wake?: WakeTarget[];
  accounts: AccountConfig[];
}

const fail = (file: string, key: string, what: string): never => {
  throw new PeerdialError('CONFIG_INVALID', `${file}: ${key} ${what}`, { hint: `Fix ${key} in ${file}.` });
};

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(t: Table, key: string, file: string, where: string, fallback?: string): string {
  const v = t[key];
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    return fail(file, `${where}${key}`, 'is missing');
  }
  if (typeof v !== 'string' || v === '') return fail(file, `${where}${key}`, 'must be a non-empty string');
  return v;
}

function optStr(t: Table, key: string, file: string, where: string): string | undefined {
  return t[key] === undefined ? undefined : str(t, key, file, where);
}

function int(t: Table, key: string, file: string, where: string, fallback: number, min: number, max: number): number {
  const v = t[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    return fail(file, `${where}${key}`, `must be a whole number from ${min} to ${max}`);
  }
  return v;
}

function oneOf<T extends string>(t: Table, key: string, file: string, where: string, allowed: readonly T[], fallback: T): T {
  const v = t[key];
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    return fail(file, `${where}${key}`, `must be one of: ${allowed.join(', ')}`);
  }
  return v as T;
}

function server(t: unknown, file: string, where: string, email: string): ServerConfig {
  if (!isTable(t)) return fail(file, where.slice(0, -1), 'must be a table');
  const s: ServerConfig = {
    host: str(t, 'host', file, where),
    port: int(t, 'port', file, where, 0, 1, 65535),
    tls: oneOf(t, 'tls', file, where, ['tls', 'starttls', 'none'] as const, 'tls'),
    user: str(t, 'user', file, where, email),
  };
  if (s.port === 0) fail(file, `${where}port`, 'is missing');
  const caFile = optStr(t, 'ca_file', file, where);
  if (caFile) s.caFile = path.resolve(path.dirname(file), expandHome(caFile));
  const auth = oneOf(t, 'auth', file, where, ['password', 'oauth2'] as const, 'password');
  if (auth === 'oauth2') {
    for (const k of PASSWORD_KEYS) {
      if (t[k] !== undefined) fail(file, `${where}${k}`, 'does not go with auth = "oauth2" (use token_command or oauth2_provider)');
    }
    s.auth = 'oauth2';
    s.oauth2 = oauth2Settings(t, file, where);
    return s;
  }
  for (const k of OAUTH2_KEYS) {
    if (t[k] !== undefined) fail(file, `${where}${k}`, 'needs auth = "oauth2" in the same table');
  }
  const command = optStr(t, 'password_command', file, where);
  const env = optStr(t, 'password_env', file, where);
  if (command) s.command = command;
  if (env) s.env = env;
  if (t.password_prompt === true) s.prompt = true;
  if (typeof t.password === 'string') s.password = t.password;
  return s;
}

const PASSWORD_KEYS = ['password_command', 'password_env', 'password_prompt', 'password'] as const;
const OAUTH2_KEYS = ['token_command', 'oauth2_provider', 'oauth2_client_id', 'oauth2_client_secret', 'oauth2_token_url', 'oauth2_device_url', 'oauth2_scope'] as const;

function httpUrl(t: Table, key: string, file: string, where: string): string | undefined {
  const v = optStr(t, key, file, where);
  if (v === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return fail(file, `${where}${key}`, 'must be an http(s) URL');
  }
  const loopback = u.hostname === '127.0.0.1' || u.hostname === 'localhost' || u.hostname === '[::1]';
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) {
    return fail(file, `${where}${key}`, 'must be an https URL (plain http only to 127.0.0.1 / localhost)');
  }
  return v;
}

function oauth2Settings(t: Table, file: string, where: string): OAuth2Settings {
  const tokenCommand = optStr(t, 'token_command', file, where);
  const o: OAuth2Settings = {};
  if (tokenCommand) {
    for (const k of OAUTH2_KEYS.filter((k) => k !== 'token_command')) {
      if (t[k] !== undefined) fail(file, `${where}${k}`, 'does not go with token_command (choose one way to get the token)');
    }
    o.tokenCommand = tokenCommand;
    return o;
  }
  if (t.oauth2_provider === undefined) {
    return fail(file, `${where}token_command`, 'or oauth2_provider is needed with auth = "oauth2"');
  }
  o.provider = oneOf(t, 'oauth2_provider', file, where, ['google', 'microsoft', 'custom'] as const, 'custom');
  o.clientId = str(t, 'oauth2_client_id', file, where);
  const secret = optStr(t, 'oauth2_client_secret', file, where);
  const scope = optStr(t, 'oauth2_scope', file, where);
  const tokenUrl = httpUrl(t, 'oauth2_token_url', file, where);
  const deviceUrl = httpUrl(t, 'oauth2_device_url', file, where);
  if (o.provider === 'custom') {
    if (!tokenUrl) fail(file, `${where}oauth2_token_url`, 'is missing (needed with oauth2_provider = "custom")');
    if (!deviceUrl) fail(file, `${where}oauth2_device_url`, 'is missing (needed with oauth2_provider = "custom")');
  }
  if (secret) o.clientSecret = secret;
  if (scope) o.scope = scope;
  if (tokenUrl) o.tokenUrl = tokenUrl;
  if (deviceUrl) o.deviceUrl = deviceUrl;
  return o;
}

function knownKeys(t: Table, file: string, where: string, known: readonly string[]): void {
  for (const k of Object.keys(t)) {
    if (!known.includes(k)) fail(file, `${where}${k}`, `is not a known key (known: ${known.join(', ')})`);
  }
}

function parseLink(v: unknown, file: string): LinkSettings | undefined {
  if (v === undefined) return undefined;
  if (!isTable(v)) return fail(file, 'link', 'must be a table ([link])');
  knownKeys(v, file, 'link.', ['up', 'down', 'timeout_seconds', 'idle_down_seconds', 'poll_minutes']);
  const link: LinkSettings = {
    timeoutSeconds: int(v, 'timeout_seconds', file, 'link.', 60, 1, 3600),
    idleDownSeconds: int(v, 'idle_down_seconds', file, 'link.', 300, 0, 86400),
    pollMinutes: int(v, 'poll_minutes', file, 'link.', 0, 0, 1440),
  };
  const up = optStr(v, 'up', file, 'link.');
  const down = optStr(v, 'down', file, 'link.');
  if (up) link.up = up;
  if (down) link.down = down;
  return link;
}

function parseWake(v: unknown, file: string): WakeTarget[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) return fail(file, 'wake', 'must be an array of tables ([[wake]])');
  return v.map((w, i): WakeTarget => {
    const where = `wake[${i}].`;
    if (!isTable(w)) return fail(file, `wake[${i}]`, 'must be a table');
    knownKeys(w, file, where, ['email', 'mac', 'address', 'port', 'config']);
    const mac = str(w, 'mac', file, where);
    try {
      parseMac(mac);
    } catch {
      fail(file, `${where}mac`, 'must be a MAC address like aa:bb:cc:dd:ee:ff');
    }
    const t: WakeTarget = {
      email: str(w, 'email', file, where).toLowerCase(),
      mac,
      address: str(w, 'address', file, where, '255.255.255.255'),
      port: int(w, 'port', file, where, 9, 1, 65535),
    };
    const config = optStr(w, 'config', file, where);
    if (config) t.config = path.resolve(path.dirname(file), expandHome(config));
    return t;
  });
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let doc: Table;
  try {
    doc = parseToml(text) as Table;
  } catch (err) {
    throw new PeerdialError('CONFIG_INVALID', `${file} is not valid TOML: ${(err as Error).message}`, {
      hint: `Fix the line named above in ${file}.`,
      cause: err,
    });
  }
  const d = isTable(doc.defaults) ? doc.defaults : {};
  const ice = isTable(doc.ice) ? doc.ice : {};
  const accountsRaw = doc.accounts === undefined ? [] : doc.accounts;
  if (!Array.isArray(accountsRaw)) fail(file, 'accounts', 'must be an array of tables ([[accounts]])');
  const accounts = (accountsRaw as unknown[]).map((a, i): AccountConfig => {
    const where = `accounts[${i}].`;
    if (!isTable(a)) return fail(file, `accounts[${i}]`, 'must be a table');
    const email = str(a, 'email', file, where).toLowerCase();
    const acc: AccountConfig = {
      email,
      folder: str(a, 'folder', file, where, 'Peerdial'),
      imap: server(a.imap, file, `${where}imap.`, email),
      smtp: server(a.smtp, file, `${where}smtp.`, email),
    };
    const name = optStr(a, 'name', file, where);
    if (name) acc.name = name;
    return acc;
  });
  const servers = ice.servers === undefined ? [] : ice.servers;
  if (!Array.isArray(servers) || servers.some((s) => typeof s !== 'string')) fail(file, 'ice.servers', 'must be a list of strings');
  const fwd = isTable(doc.forward) ? doc.forward : {};
  const forwardAllow = fwd.allow === undefined ? [] : fwd.allow;
  if (!Array.isArray(forwardAllow) || forwardAllow.some((s) => typeof s !== 'string' || !/^[^\s:]+:(\d+|\*)$|^\[[0-9a-fA-F:.]+\]:(\d+|\*)$/.test(s))) {
    fail(file, 'forward.allow', 'must be a list of "HOST:PORT" or "HOST:*" strings');
  }
  const cfg: Config = {
    file,
    stateDir: path.resolve(path.dirname(file), expandHome(str(d, 'state_dir', file, 'defaults.', defaultStateDir(env)))),
    ringSeconds: int(d, 'ring_seconds', file, 'defaults.', 120, 5, 3600),
    whoMayCall: oneOf(d, 'who_may_call', file, 'defaults.', ['everybody', 'contacts', 'nobody'] as const, 'contacts'),
    answer: oneOf(d, 'answer', file, 'defaults.', ['auto-answer', 'ring', 'deny'] as const, 'ring'),
    downloadDir: expandHome(str(d, 'download_dir', file, 'defaults.', '~/Downloads/peerdial')),
    pollSeconds: int(d, 'poll_seconds', file, 'defaults.', 60, 1, 86400),
    idleSeconds: int(d, 'idle_seconds', file, 'defaults.', 300, 10, 1740),
    singleCall: d.single_call === true,
    ice: { servers: servers as string[] },
    forwardAllow: forwardAllow as string[],
    accounts,
  };
  const link = parseLink(doc.link, file);
  if (link) cfg.link = link;
  const wake = parseWake(doc.wake, file);
  if (wake) cfg.wake = wake;
  const defAcc = optStr(d, 'account', file, 'defaults.');
  if (defAcc) cfg.defaultAccount = defAcc.toLowerCase();
  const bind = optStr(ice, 'bind_address', file, 'ice.');
  if (bind) cfg.ice.bindAddress = bind;
  if (ice.port_range_begin !== undefined) cfg.ice.portRangeBegin = int(ice, 'port_range_begin', file, 'ice.', 0, 1024, 65535);
  if (ice.port_range_end !== undefined) cfg.ice.portRangeEnd = int(ice, 'port_range_end', file, 'ice.', 0, 1024, 65535);
  if (ice.port_mapping !== undefined) cfg.ice.portMapping = oneOf(ice, 'port_mapping', file, 'ice.', ['auto', 'upnp', 'natpmp', 'off'] as const, 'off');
  return cfg;
}

export async function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new PeerdialError('CONFIG_MISSING', `No configuration at ${file}.`, {
        hint: 'Create one with: peerdial init --email you@example.org   (or try everything first with: peerdial demo)',
      });
    }
    throw err;
  }
  return parseConfig(text, file, env);
}

/** Picks the account: by address, else the default, else the only one. */
export function pickAccount(cfg: Config, email?: string): AccountConfig {
  const want = (email ?? cfg.defaultAccount)?.toLowerCase();
  const acc = want ? cfg.accounts.find((a) => a.email === want) : cfg.accounts.length === 1 ? cfg.accounts[0] : undefined;
  if (!acc) {
    throw new PeerdialError('ACCOUNT_UNKNOWN', want ? `No account ${want} in ${cfg.file}.` : `${cfg.file} has ${cfg.accounts.length} accounts and no default.`, {
      hint: cfg.accounts.length ? `Choose one with --account (${cfg.accounts.map((a) => a.email).join(', ')}).` : 'Add one with: peerdial init --email you@example.org',
    });
  }
  return acc;
}

function serverToToml(s: ServerConfig): Table {
  const t: Table = { host: s.host, port: s.port, tls: s.tls, user: s.user };
  if (s.caFile) t.ca_file = s.caFile;
  if (s.auth === 'oauth2') {
    const o = s.oauth2 ?? {};
    t.auth = 'oauth2';
    if (o.tokenCommand) t.token_command = o.tokenCommand;
    if (o.provider) t.oauth2_provider = o.provider;
    if (o.clientId) t.oauth2_client_id = o.clientId;
    if (o.clientSecret) t.oauth2_client_secret = o.clientSecret;
    if (o.tokenUrl) t.oauth2_token_url = o.tokenUrl;
    if (o.deviceUrl) t.oauth2_device_url = o.deviceUrl;
    if (o.scope) t.oauth2_scope = o.scope;
    return t;
  }
  if (s.command) t.password_command = s.command;
  if (s.env) t.password_env = s.env;
  if (s.prompt) t.password_prompt = true;
  if (s.password !== undefined) t.password = s.password;
  return t;
}

export function configToToml(cfg: Omit<Config, 'file'>): string {
  const defaults: Table = {
    ring_seconds: cfg.ringSeconds,
    who_may_call: cfg.whoMayCall,
    answer: cfg.answer,
    download_dir: cfg.downloadDir,
    state_dir: cfg.stateDir,
    poll_seconds: cfg.pollSeconds,
    idle_seconds: cfg.idleSeconds,
    single_call: cfg.singleCall,
  };
  if (cfg.defaultAccount) defaults.account = cfg.defaultAccount;
  const ice: Table = { servers: cfg.ice.servers };
  if (cfg.ice.bindAddress) ice.bind_address = cfg.ice.bindAddress;
  if (cfg.ice.portRangeBegin) ice.port_range_begin = cfg.ice.portRangeBegin;
  if (cfg.ice.portRangeEnd) ice.port_range_end = cfg.ice.portRangeEnd;
  if (cfg.ice.portMapping && cfg.ice.portMapping !== 'off') ice.port_mapping = cfg.ice.portMapping;
  const accounts = cfg.accounts.map((a) => {
    const t: Table = { email: a.email, folder: a.folder, imap: serverToToml(a.imap), smtp: serverToToml(a.smtp) };
    if (a.name) t.name = a.name;
    return t;
  });
  const doc: Table = { defaults, ice, forward: { allow: cfg.forwardAllow } };
  if (cfg.link) {
    const l = cfg.link;
    doc.link = {
      ...(l.up ? { up: l.up } : {}),
      ...(l.down ? { down: l.down } : {}),
      timeout_seconds: l.timeoutSeconds,
      idle_down_seconds: l.idleDownSeconds,
      poll_minutes: l.pollMinutes,
    };
  }
  if (cfg.wake?.length) doc.wake = cfg.wake.map((w) => ({ email: w.email, mac: w.mac, address: w.address, port: w.port, ...(w.config ? { config: w.config } : {}) }));
  doc.accounts = accounts;
  return '# peerdial configuration. Reference: README.md, section "Configuration".\n' + stringifyToml(doc) + '\n';
}

export async function saveConfig(file: string, cfg: Omit<Config, 'file'>): Promise<void> {
  await writeFileAtomic(file, configToToml(cfg));
}
