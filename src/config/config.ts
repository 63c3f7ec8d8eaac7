/**
 * The configuration file (TOML). Read and validated into typed settings by
 * the table in schema.ts; every mistake (a wrong type, an unknown key) is
 * an error naming the file, the line and the nearest valid key.
 *
 *   [defaults]              ring_seconds, who_may_call, answer, download_dir, state_dir, account
 *   [ice]                   servers (STUN), turn (relays, UDP only) + turn_password_command | _env | _file,
 *                           bind_address, port_range_begin, port_range_end, port_mapping
 *   [forward]               allow = ["127.0.0.1:8554"]  targets callers may reach with --forward
 *   [call]                  mail_fallback_max_kib  (files that go by mail when a call finds no path)
 *   [link]                  up, down, timeout_seconds, idle_down_seconds, poll_minutes  (dial-up style links)
 *   [web]                   enable, port  (the local web page, src/web/)
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
import type { AccountConfig, CallSettings, Config, IceSettings, LinkSettings, ServerConfig, WakeTarget, WebSettings } from './types.js';
import { parseMac } from '../address/wol.js';
import { parseTurnUrl, redact } from './turn.js';
import { ACCOUNTS, CALL, DEFAULTS, FORWARD, ICE, keyLines, LINK, WEB, nearest, OAUTH2_KEYS, PASSWORD_KEYS, SECTIONS, SERVER, TOP, WAKE, type KeyType, type SchemaContext, type SectionSpec, type TomlValue } from './schema.js';

export type { WhoMayCall, OAuth2Provider, OAuth2Settings, ServerConfig, AccountConfig, CallSettings, IceSettings, LinkSettings, WakeTarget, Config } from './types.js';

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** Reads one file: its name, where its keys are, and the context for defaults. */
class Reader {
  readonly lines: Map<string, number>;
  constructor(
    readonly file: string,
    text: string,
    readonly ctx: SchemaContext,
  ) {
    this.lines = keyLines(text);
  }

  /** The line of a key, else of the nearest table around it. */
  lineOf(where: string): number | undefined {
    for (let p = where; p; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
      const n = this.lines.get(p);
      if (n !== undefined) return n;
    }
    return undefined;
  }

  fail(where: string, what: string, at: string = where): never {
    const line = this.lineOf(at);
    const loc = line === undefined ? this.file : `${this.file} line ${line}`;
    throw new PeerdialError('CONFIG_INVALID', `${loc}: ${where} ${what}`, { hint: `Fix ${where} in ${this.file}${line === undefined ? '' : ` (line ${line})`}.` });
  }

  /** An unknown key or table: named with its line and the nearest valid name. */
  unknown(section: string, where: string, key: string, known: readonly string[]): never {
    const at = where ? `${where}.${key}` : key;
    const line = this.lineOf(at);
    const loc = line === undefined ? this.file : `${this.file} line ${line}`;
    const near = nearest(key, known);
    const home = near ? undefined : Object.entries(SECTIONS).find(([, s]) => s.keys.some((k) => k.key === key))?.[0];
    const suggestion = near ? `; did you mean ${near}?` : home ? `; it belongs in [${home}]` : `; known here: ${known.join(', ')}`;
    const what = section ? `unknown key ${key} in [${section}]` : `unknown table or key ${key}`;
    throw new PeerdialError('CONFIG_INVALID', `${loc}: ${what}${suggestion}`, {
      hint: near ? `Write ${near} instead of ${key} in ${this.file}${line === undefined ? '' : ` (line ${line})`}.` : `Remove or move ${key} in ${this.file}; the keys are listed in README.md, section "Configuration".`,
    });
  }

  /** Checks a value against its key's type; returns it as the settings want it. */
  value(v: unknown, type: KeyType, where: string): TomlValue {
    switch (type.kind) {
      case 'string':
        if (typeof v !== 'string' || (v === '' && !type.empty)) return this.fail(where, type.empty ? 'must be a string' : 'must be a non-empty string');
        return v;
      case 'int':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < type.min || v > type.max) return this.fail(where, `must be a whole number from ${type.min} to ${type.max}`);
        return v;
      case 'bool':
        if (typeof v !== 'boolean') return this.fail(where, 'must be true or false');
        return v;
      case 'enum':
        if (typeof v !== 'string' || !type.values.includes(v)) {
          const near = typeof v === 'string' ? nearest(v, type.values) : undefined;
          return this.fail(where, `must be one of: ${type.values.join(', ')}${near ? `; did you mean "${near}"?` : ''}`);
        }
        return v;
      case 'strings':
        if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || (type.item !== undefined && !type.item.test(s)))) {
          return this.fail(where, `must be a list of ${type.itemText ? `${type.itemText} ` : ''}strings`);
        }
        return v as string[];
      case 'mac':
        if (typeof v !== 'string') return this.fail(where, 'must be a MAC address like aa:bb:cc:dd:ee:ff');
        try {
          parseMac(v);
        } catch {
          return this.fail(where, 'must be a MAC address like aa:bb:cc:dd:ee:ff');
        }
        return v;
      case 'url': {
        if (typeof v !== 'string') return this.fail(where, 'must be an http(s) URL');
        let u: URL;
        try {
          u = new URL(v);
        } catch {
          return this.fail(where, 'must be an http(s) URL');
        }
        const loopback = u.hostname === '127.0.0.1' || u.hostname === 'localhost' || u.hostname === '[::1]';
        if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) return this.fail(where, 'must be an https URL (plain http only to 127.0.0.1 / localhost)');
        return v;
      }
    }
  }

  /** One table of a section: unknown keys, types, defaults, then into the settings. */
  section<T>(spec: SectionSpec<T>, raw: unknown, where: string, into: T, display = spec.name): T {
    if (!isTable(raw)) return this.fail(where, `must be a table ([${spec.array ? `[${spec.name}]` : spec.name}])`);
    const known = [...spec.keys.map((k) => k.key), ...(spec.tables ?? [])];
    for (const k of Object.keys(raw)) if (!known.includes(k)) this.unknown(display, where, k, known);
    for (const k of spec.keys) {
      const v = raw[k.key];
      const at = `${where}.${k.key}`;
      let value: TomlValue | undefined;
      if (v === undefined) {
        if (k.required) this.fail(at, 'is missing', where);
        value = typeof k.fallback === 'function' ? k.fallback(this.ctx) : k.fallback;
        if (value === undefined) continue;
      } else {
        value = this.value(v, k.type, at);
      }
      k.read(into, value, this.ctx);
    }
    return into;
  }

  /** `[[name]]`: absent, or a list of tables. */
  list(spec: SectionSpec<unknown>, raw: unknown): unknown[] {
    if (raw === undefined) return [];
    if (!Array.isArray(raw)) return this.fail(spec.name, `must be an array of tables ([[${spec.name}]])`);
    return raw;
  }

  server(raw: unknown, where: string, display: string): ServerConfig {
    const s = this.section(SERVER, raw, where, {} as ServerConfig, display);
    const t = raw as Table;
    if (s.auth === 'oauth2') {
      for (const k of PASSWORD_KEYS) if (t[k] !== undefined) this.fail(`${where}.${k}`, 'does not go with auth = "oauth2" (use token_command or oauth2_provider)');
      const o = s.oauth2 ?? {};
      if (o.tokenCommand) {
        for (const k of OAUTH2_KEYS) if (k !== 'token_command' && t[k] !== undefined) this.fail(`${where}.${k}`, 'does not go with token_command (choose one way to get the token)');
      } else if (!o.provider) {
        this.fail(`${where}.token_command`, 'or oauth2_provider is needed with auth = "oauth2"', where);
      } else {
        if (!o.clientId) this.fail(`${where}.oauth2_client_id`, 'is missing', where);
        if (o.provider === 'custom') {
          if (!o.tokenUrl) this.fail(`${where}.oauth2_token_url`, 'is missing (needed with oauth2_provider = "custom")', where);
          if (!o.deviceUrl) this.fail(`${where}.oauth2_device_url`, 'is missing (needed with oauth2_provider = "custom")', where);
        }
      }
      s.oauth2 = o;
    } else {
      for (const k of OAUTH2_KEYS) if (t[k] !== undefined) this.fail(`${where}.${k}`, 'needs auth = "oauth2" in the same table');
    }
    return s;
  }
}

/** `[ice]`: STUN in servers, TURN in turn, and every TURN URL one peerdial can use. */
function checkTurn(r: Reader, ice: IceSettings): void {
  const misplaced = ice.servers.find((u) => /^turns?:/i.test(u));
  if (misplaced !== undefined) r.fail('ice.servers', `holds STUN servers only: move "${redact(misplaced)}" to ice.turn`);
  for (const [i, url] of (ice.turn ?? []).entries()) {
    try {
      parseTurnUrl(url);
    } catch (err) {
      r.fail(`ice.turn[${i}]`, (err as Error).message.replace(/^TURN server /, ''), 'ice.turn');
    }
  }
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let doc: Table;
  try {
    doc = parseToml(text) as Table;
  } catch (err) {
    const line = (err as { line?: number }).line;
    throw new PeerdialError('CONFIG_INVALID', `${file} is not valid TOML${line ? ` (line ${line})` : ''}: ${(err as Error).message}`, {
      hint: `Fix the line named above in ${file}.`,
      cause: err,
    });
  }
  const r = new Reader(file, text, { dir: path.dirname(file), env });
  const top = TOP.map((s) => s.name);
  for (const k of Object.keys(doc)) if (!top.includes(k)) r.unknown('', '', k, top);
  const cfg = r.section(DEFAULTS, doc.defaults ?? {}, 'defaults', { file, ice: { servers: [] }, forwardAllow: [], accounts: [] } as unknown as Config);
  cfg.ice = r.section(ICE, doc.ice ?? {}, 'ice', {} as IceSettings);
  checkTurn(r, cfg.ice);
  cfg.forwardAllow = r.section(FORWARD, doc.forward ?? {}, 'forward', { allow: [] as string[] }).allow;
  if (doc.call !== undefined) cfg.call = r.section(CALL, doc.call, 'call', {} as CallSettings);
  if (doc.link !== undefined) cfg.link = r.section(LINK, doc.link, 'link', {} as LinkSettings);
  if (doc.web !== undefined) cfg.web = r.section(WEB, doc.web, 'web', {} as WebSettings);
  const wake = r.list(WAKE as SectionSpec<unknown>, doc.wake).map((w, i) => r.section(WAKE, w, `wake[${i}]`, {} as WakeTarget, 'wake'));
  if (doc.wake !== undefined) cfg.wake = wake;
  cfg.accounts = r.list(ACCOUNTS as SectionSpec<unknown>, doc.accounts).map((a, i): AccountConfig => {
    const where = `accounts[${i}]`;
    const acc = r.section(ACCOUNTS, a, where, {} as AccountConfig);
    const ctx = { ...r.ctx, email: acc.email };
    const sub = new Reader(file, text, ctx);
    for (const side of ['imap', 'smtp'] as const) {
      const raw = (a as Table)[side];
      if (raw === undefined) sub.fail(`${where}.${side}`, `is missing (a [accounts.${side}] table)`, where);
      acc[side] = sub.server(raw, `${where}.${side}`, `accounts.${side}`);
    }
    return acc;
  });
  return cfg;
}

function tableOf<T>(spec: SectionSpec<T>, from: T): Table {
  const t: Table = {};
  for (const k of spec.keys) {
    const v = k.write(from);
    if (v !== undefined) t[k.key] = v;
  }
  return t;
}

/** The file for these settings; `parseConfig` reads back the same settings. */
export function configToToml(cfg: Omit<Config, 'file'>): string {
  const doc: Table = {
    defaults: tableOf(DEFAULTS, cfg as Config),
    ice: tableOf(ICE, cfg.ice),
    forward: tableOf(FORWARD, { allow: cfg.forwardAllow }),
  };
  if (cfg.call) doc.call = tableOf(CALL, cfg.call);
  if (cfg.link) doc.link = tableOf(LINK, cfg.link);
  if (cfg.web) doc.web = tableOf(WEB, cfg.web);
  if (cfg.wake?.length) doc.wake = cfg.wake.map((w) => tableOf(WAKE, w));
  doc.accounts = cfg.accounts.map((a) => ({ ...tableOf(ACCOUNTS, a), imap: tableOf(SERVER, a.imap), smtp: tableOf(SERVER, a.smtp) }));
  return '# peerdial configuration. Reference: README.md, section "Configuration".\n' + stringifyToml(doc) + '\n';
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

export async function saveConfig(file: string, cfg: Omit<Config, 'file'>): Promise<void> {
  await writeFileAtomic(file, configToToml(cfg));
}
