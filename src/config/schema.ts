/**
 * The config file's schema: one table of sections and keys. The parser
 * (`parseConfig`), the writer (`configToToml`) and the validation (unknown
 * keys, types, ranges, the nearest valid key) all read this table; a key
 * exists when it is here and nowhere else.
 *
 * Each key says its TOML name, its type, its default, how its value goes
 * into the typed settings (`read`) and how it comes out again (`write`).
 * Rules that tie keys together (password vs. OAuth2 keys) live in
 * config.ts next to the parser.
 */
import path from 'node:path';
import type { AccountConfig, CallSettings, Config, IceSettings, LinkSettings, ServerConfig, WakeTarget, WebSettings } from './types.js';
import { defaultStateDir, expandHome } from '../store/paths.js';

export type TomlValue = string | number | boolean | string[];

export type KeyType =
  | { kind: 'string'; empty?: boolean }
  | { kind: 'int'; min: number; max: number }
  | { kind: 'bool' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'strings'; item?: RegExp; itemText?: string }
  | { kind: 'url' }
  | { kind: 'mac' };

/** What a key's default or reading may depend on. */
export interface SchemaContext {
  /** Directory of the config file: relative paths are relative to it. */
  dir: string;
  env: NodeJS.ProcessEnv;
  /** The account being read (servers' `user` defaults to it). */
  email?: string;
}

export interface KeySpec<T> {
  key: string;
  type: KeyType;
  /** One line for `peerdial help config` and the README. */
  doc: string;
  required?: boolean;
  /** Used when the key is absent; none: the setting stays absent. */
  fallback?: TomlValue | ((ctx: SchemaContext) => TomlValue);
  read: (into: T, v: TomlValue, ctx: SchemaContext) => void;
  /** The value written for these settings; undefined leaves the key out. */
  write: (from: T) => TomlValue | undefined;
}

export interface SectionSpec<T> {
  /** As the user writes the header: `defaults`, `accounts.imap`. */
  name: string;
  /** `[[name]]`: an array of tables. */
  array?: boolean;
  keys: KeySpec<T>[];
  /** Tables nested inside (their own sections). */
  tables?: string[];
}

const str = { kind: 'string' } as const;
const int = (min: number, max: number) => ({ kind: 'int', min, max }) as const;
const bool = { kind: 'bool' } as const;
const oneOf = (...values: string[]) => ({ kind: 'enum', values }) as const;

/** A key that maps one-to-one onto a property, written when set. */
function prop<T, K extends keyof T & string>(key: string, type: KeyType, field: K, doc: string, extra: Partial<KeySpec<T>> = {}): KeySpec<T> {
  return {
    key,
    type,
    doc,
    read: (into, v) => {
      (into as Record<string, unknown>)[field] = v;
    },
    write: (from) => from[field] as TomlValue | undefined,
    ...extra,
  };
}

const resolvePath = (ctx: SchemaContext, v: string): string => path.resolve(ctx.dir, expandHome(v));

export const DEFAULTS: SectionSpec<Config> = {
  name: 'defaults',
  keys: [
    prop('ring_seconds', int(5, 3600), 'ringSeconds', 'how long a call rings before it counts as missed', { fallback: 120 }),
    prop('who_may_call', oneOf('everybody', 'contacts', 'nobody'), 'whoMayCall', 'whose offers are considered at all', { fallback: 'contacts' }),
    prop('answer', oneOf('auto-answer', 'ring', 'deny'), 'answer', 'what happens to an allowed call', { fallback: 'ring' }),
    {
      key: 'download_dir',
      type: str,
      doc: 'where received files go',
      fallback: '~/Downloads/peerdial',
      read: (c, v) => (c.downloadDir = expandHome(v as string)),
      write: (c) => c.downloadDir,
    },
    {
      key: 'state_dir',
      type: str,
      doc: 'keys, contacts, ledger, outbox, call log',
      fallback: (ctx) => defaultStateDir(ctx.env),
      read: (c, v, ctx) => (c.stateDir = resolvePath(ctx, v as string)),
      write: (c) => c.stateDir,
    },
    prop('poll_seconds', int(1, 86400), 'pollSeconds', 'mailbox poll interval when the server has no IDLE', { fallback: 60 }),
    prop('idle_seconds', int(10, 1740), 'idleSeconds', 'IDLE is re-issued this often', { fallback: 1500 }),
    prop('single_call', bool, 'singleCall', 'one call at a time; others are answered "busy"', { fallback: false }),
    {
      key: 'account',
      type: str,
      doc: 'the account used when --account is not given',
      read: (c, v) => (c.defaultAccount = (v as string).toLowerCase()),
      write: (c) => c.defaultAccount,
    },
  ],
};

const turnSecret = (i: IceSettings) => (i.turnSecret ??= {});

export const ICE: SectionSpec<IceSettings> = {
  name: 'ice',
  keys: [
    prop('servers', { kind: 'strings' }, 'servers', 'STUN servers (stun:HOST:PORT); TURN relays go in turn', { fallback: [] }),
    {
      key: 'turn',
      type: { kind: 'strings', item: /^turns?:/i, itemText: '"turn:USER:PASS@HOST:PORT"' },
      doc: 'TURN relays you run or chose (turn:USER:PASS@HOST:PORT; UDP only); none by default',
      read: (i, v) => {
        if ((v as string[]).length > 0) i.turn = v as string[];
      },
      write: (i) => (i.turn?.length ? i.turn : undefined),
    },
    { key: 'turn_password_command', type: str, doc: 'prints the TURN password (for turn URLs without one)', read: (i, v) => (turnSecret(i).command = v as string), write: (i) => i.turnSecret?.command },
    { key: 'turn_password_env', type: str, doc: 'environment variable holding the TURN password', read: (i, v) => (turnSecret(i).env = v as string), write: (i) => i.turnSecret?.env },
    {
      key: 'turn_password_file',
      type: str,
      doc: 'file (mode 0600) whose first line is the TURN password',
      read: (i, v, ctx) => (turnSecret(i).file = resolvePath(ctx, v as string)),
      write: (i) => i.turnSecret?.file,
    },
    prop('bind_address', str, 'bindAddress', 'the local address sessions bind to'),
    prop('port_range_begin', int(1024, 65535), 'portRangeBegin', 'lowest UDP port for sessions'),
    prop('port_range_end', int(1024, 65535), 'portRangeEnd', 'highest UDP port for sessions'),
    prop('port_mapping', oneOf('auto', 'upnp', 'natpmp', 'off'), 'portMapping', 'ask the router to forward the call\'s port'),
  ],
};

export const FORWARD: SectionSpec<{ allow: string[] }> = {
  name: 'forward',
  keys: [
    prop('allow', { kind: 'strings', item: /^[^\s:]+:(\d+|\*)$|^\[[0-9a-fA-F:.]+\]:(\d+|\*)$/, itemText: '"HOST:PORT" or "HOST:*"' }, 'allow', 'targets callers may reach with --forward', {
      fallback: [],
    }),
  ],
};

export const CALL: SectionSpec<CallSettings> = {
  name: 'call',
  keys: [
    prop('mail_fallback_max_kib', int(0, 3072), 'mailFallbackMaxKib', 'when a call finds no path, the chat goes on by mail: files under this many KiB go too (default 256; 0: none)'),
  ],
};

export const LINK: SectionSpec<LinkSettings> = {
  name: 'link',
  keys: [
    prop('up', str, 'up', 'run via /bin/sh before a call or a mailbox check'),
    prop('down', str, 'down', 'run after hang-up or idle time'),
    prop('timeout_seconds', int(1, 3600), 'timeoutSeconds', 'each command is killed after this long', { fallback: 60 }),
    prop('idle_down_seconds', int(0, 86400), 'idleDownSeconds', 'poll mode: how long the link stays up after a call', { fallback: 300 }),
    prop('poll_minutes', int(0, 1440), 'pollMinutes', 'poll mode: bring the link up every N minutes; 0 = off', { fallback: 0 }),
  ],
};

export const WEB: SectionSpec<WebSettings> = {
  name: 'web',
  keys: [
    prop('enable', bool, 'enable', 'the agent serves the local web page (peerdial web prints its address)', { fallback: false }),
    prop('port', int(0, 65535), 'port', 'port of the web page on 127.0.0.1; 0 = any free port', { fallback: 0 }),
  ],
};

export const WAKE: SectionSpec<WakeTarget> = {
  name: 'wake',
  array: true,
  keys: [
    { key: 'email', type: str, doc: 'the sleeping machine\'s address', required: true, read: (w, v) => (w.email = (v as string).toLowerCase()), write: (w) => w.email },
    prop('mac', { kind: 'mac' }, 'mac', 'its MAC address', { required: true }),
    prop('address', str, 'address', 'where the magic packet goes', { fallback: '255.255.255.255' }),
    prop('port', int(1, 65535), 'port', 'UDP port of the magic packet', { fallback: 9 }),
    { key: 'config', type: str, doc: 'its peerdial config (read-only)', read: (w, v, ctx) => (w.config = resolvePath(ctx, v as string)), write: (w) => w.config },
  ],
};

export const ACCOUNTS: SectionSpec<AccountConfig> = {
  name: 'accounts',
  array: true,
  tables: ['imap', 'smtp'],
  keys: [
    { key: 'email', type: str, doc: 'the account\'s address', required: true, read: (a, v) => (a.email = (v as string).toLowerCase()), write: (a) => a.email },
    prop('name', str, 'name', 'display name in From'),
    prop('folder', str, 'folder', 'IMAP folder for peerdial\'s own verified mail', { fallback: 'Peerdial' }),
    prop('sieve_port', int(1, 65535), 'sievePort', 'ManageSieve port of the IMAP host, set by init --sieve: a server-side rule files peerdial mail into the folder at delivery, and the agent watches that folder (and the INBOX)'),
  ],
};

const oauth = (s: ServerConfig) => (s.oauth2 ??= {});

/** [accounts.imap] and [accounts.smtp]. */
export const SERVER: SectionSpec<ServerConfig> = {
  name: 'server',
  keys: [
    prop('host', str, 'host', 'server name', { required: true }),
    prop('port', int(1, 65535), 'port', 'server port', { required: true }),
    prop('tls', oneOf('tls', 'starttls', 'none'), 'tls', 'TLS from the start, STARTTLS, or none', { fallback: 'tls' }),
    { key: 'user', type: str, doc: 'login name (default: the address)', fallback: (ctx) => ctx.email ?? '', read: (s, v) => (s.user = v as string), write: (s) => s.user },
    { key: 'ca_file', type: str, doc: 'extra CA certificate (PEM) to trust', read: (s, v, ctx) => (s.caFile = resolvePath(ctx, v as string)), write: (s) => s.caFile },
    {
      key: 'auth',
      type: oneOf('password', 'oauth2'),
      doc: 'password (default) or oauth2',
      read: (s, v) => {
        if (v === 'oauth2') s.auth = 'oauth2';
      },
      write: (s) => (s.auth === 'oauth2' ? 'oauth2' : undefined),
    },
    prop('password_command', str, 'command', 'prints the password'),
    prop('password_env', str, 'env', 'environment variable holding the password'),
    {
      key: 'password_prompt',
      type: bool,
      doc: 'ask on the terminal',
      read: (s, v) => {
        if (v === true) s.prompt = true;
      },
      write: (s) => (s.prompt ? true : undefined),
    },
    prop('password', { kind: 'string', empty: true }, 'password', 'the password itself (discouraged)'),
    { key: 'token_command', type: str, doc: 'prints an OAuth2 access token', read: (s, v) => (oauth(s).tokenCommand = v as string), write: (s) => s.oauth2?.tokenCommand },
    { key: 'oauth2_provider', type: oneOf('google', 'microsoft', 'custom'), doc: 'built-in token refresh', read: (s, v) => (oauth(s).provider = v as 'custom'), write: (s) => s.oauth2?.provider },
    { key: 'oauth2_client_id', type: str, doc: 'OAuth2 client id', read: (s, v) => (oauth(s).clientId = v as string), write: (s) => s.oauth2?.clientId },
    { key: 'oauth2_client_secret', type: str, doc: 'OAuth2 client secret', read: (s, v) => (oauth(s).clientSecret = v as string), write: (s) => s.oauth2?.clientSecret },
    { key: 'oauth2_token_url', type: { kind: 'url' }, doc: 'token endpoint (custom)', read: (s, v) => (oauth(s).tokenUrl = v as string), write: (s) => s.oauth2?.tokenUrl },
    { key: 'oauth2_device_url', type: { kind: 'url' }, doc: 'device authorization endpoint (custom)', read: (s, v) => (oauth(s).deviceUrl = v as string), write: (s) => s.oauth2?.deviceUrl },
    { key: 'oauth2_scope', type: str, doc: 'OAuth2 scope', read: (s, v) => (oauth(s).scope = v as string), write: (s) => s.oauth2?.scope },
  ],
};

export const PASSWORD_KEYS = ['password_command', 'password_env', 'password_prompt', 'password'] as const;
export const OAUTH2_KEYS = ['token_command', 'oauth2_provider', 'oauth2_client_id', 'oauth2_client_secret', 'oauth2_token_url', 'oauth2_device_url', 'oauth2_scope'] as const;

/** The top-level tables, in the order the writer puts them. */
export const TOP: SectionSpec<never>[] = [DEFAULTS, ICE, FORWARD, CALL, LINK, WEB, WAKE, ACCOUNTS] as unknown as SectionSpec<never>[];

/** Every section by the name its header has: the top-level ones, then an account's two servers. */
export const SECTIONS: Record<string, SectionSpec<never>> = Object.fromEntries([
  ...TOP.map((s) => [s.name, s] as const),
  ...ACCOUNTS.tables!.map((side) => [`${ACCOUNTS.name}.${side}`, SERVER as unknown as SectionSpec<never>] as const),
]);

/** Edit distance (Levenshtein), for "did you mean". */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** The candidate closest to `word`, when it is close enough to be a typo of it. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c);
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  if (best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3))) return best;
  // a key written short (timeout for timeout_seconds)
  const w = word.toLowerCase();
  return w.length >= 4 ? candidates.filter((c) => c.startsWith(w) || w.startsWith(c)).sort((a, b) => a.length - b.length)[0] : undefined;
}

/**
 * Where each key and table header is in the text: "defaults.who_may_call"
 * -> 7, "accounts[0].imap" -> 12. smol-toml reports lines only for syntax
 * errors, so the lines of keys are found here. Inline tables give the line
 * of their key.
 */
export function keyLines(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  const arrays = new Map<string, number>();
  let table = '';
  let inMultiline: string | undefined;
  const bare = (k: string) => k.trim().replace(/^"(.*)"$|^'(.*)'$/, '$1$2');
  const splitKey = (k: string) => k.split('.').map(bare);
  /** "accounts.imap" -> "accounts[0].imap" when accounts is an array of tables. */
  const withIndexes = (parts: string[]): string => {
    let out = '';
    for (const p of parts) {
      out = out ? `${out}.${p}` : p;
      const n = arrays.get(out);
      if (n !== undefined) out = `${out}[${n}]`;
    }
    return out;
  };
  text.split(/\r?\n/).forEach((line, i) => {
    const no = i + 1;
    if (inMultiline) {
      if (line.includes(inMultiline)) inMultiline = undefined;
      return;
    }
    const arr = /^\s*\[\[\s*([^\]]+?)\s*\]\]/.exec(line);
    if (arr) {
      const parts = splitKey(arr[1]!);
      const parent = withIndexes(parts.slice(0, -1));
      const name = parent ? `${parent}.${parts.at(-1)}` : parts.at(-1)!;
      arrays.set(name, (arrays.get(name) ?? -1) + 1);
      table = `${name}[${arrays.get(name)}]`;
      if (!lines.has(table)) lines.set(table, no);
      return;
    }
    const tab = /^\s*\[\s*([^\]]+?)\s*\]/.exec(line);
    if (tab) {
      table = withIndexes(splitKey(tab[1]!));
      if (!lines.has(table)) lines.set(table, no);
      return;
    }
    const kv = /^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=(.*)$/.exec(line);
    if (kv) {
      const full = [table, ...splitKey(kv[1]!)].filter(Boolean).join('.');
      if (!lines.has(full)) lines.set(full, no);
      const rest = kv[2]!;
      for (const q of ['"""', "'''"]) {
        const at = rest.indexOf(q);
        if (at >= 0 && rest.indexOf(q, at + 3) < 0) inMultiline = q;
      }
    }
  });
  return lines;
}
