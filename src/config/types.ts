/**
 * The typed settings the configuration file is read into (config.ts reads
 * and writes the file, schema.ts holds the table of its keys).
 */
import type { AnswerMode } from '../store/contacts.js';
import type { SecretSource } from './secret.js';

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
  /**
   * Set when peerdial's Sieve rule is on the server (src/mail/sieve-rule.ts):
   * the ManageSieve port of the IMAP host. Mail is then delivered into
   * `folder`, and the watcher idles there (and still checks the INBOX).
   */
  sievePort?: number;
  imap: ServerConfig;
  smtp: ServerConfig;
}

export interface IceSettings {
  /** STUN servers (stun:HOST:PORT); TURN relays go in `turn`. */
  servers: string[];
  /** TURN relays the user chose (turn:USER[:PASS]@HOST:PORT, UDP only); none by default. */
  turn?: string[];
  /** Where the TURN password comes from when a `turn` URL has none. */
  turnSecret?: { command?: string; env?: string; file?: string };
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

/** [web]: the local web page (src/web/), served by the agent on 127.0.0.1 only. */
export interface WebSettings {
  /** The agent serves the page when it starts. */
  enable: boolean;
  /** TCP port on 127.0.0.1; 0: any free port. */
  port: number;
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

/** [call]: how calls behave. */
export interface CallSettings {
  /** When a call finds no path and the chat goes on by mail: files under this many KiB go too (default 256, at most 3072; 0: none). */
  mailFallbackMaxKib?: number;
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
  /** [call]: absent when the section is absent. */
  call?: CallSettings;
  /** [link]: absent when the section is absent. */
  link?: LinkSettings;
  /** [web]: absent when the section is absent (no page unless `peerdial web` asks). */
  web?: WebSettings;
  /** [[wake]]: machines this one wakes (as a relay). */
  wake?: WakeTarget[];
  accounts: AccountConfig[];
}
