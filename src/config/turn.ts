/**
 * TURN relays the user chose (`[ice] turn`): reading their URLs and their
 * credentials. peerdial runs no relay and names none by default; relay
 * candidates are gathered only when this list is set.
 *
 * libjuice (under node-datachannel) speaks TURN over UDP only: no TURN over
 * TCP or TLS (`turns:`, `?transport=tcp`) and no ICE-TCP, so those URLs are
 * refused here with a message that says so, instead of being ignored.
 *
 * The password is in the URL (`turn:USER:PASS@HOST:PORT`), or, for URLs
 * that name only the user, comes from `turn_password_command`,
 * `turn_password_env` or `turn_password_file` (a file of mode 0600), like
 * the mail password.
 */
import { promises as fs } from 'node:fs';
import { PeerdialError } from '../errors.js';
import { runSecretCommand } from './secret.js';
import type { IceSettings } from './types.js';

export const TURN_DEFAULT_PORT = 3478;

/** One relay as written in the config, the password possibly still to be fetched. */
export interface TurnUrl {
  host: string;
  port: number;
  username: string;
  /** Absent when the URL names only the user. */
  password?: string;
  /** The URL without its password, for messages and logs. */
  display: string;
}

/** A relay with its credentials, ready for ICE. */
export interface TurnServer {
  host: string;
  port: number;
  username: string;
  password: string;
  display: string;
}

const UDP_ONLY =
  'peerdial (libjuice) relays over UDP only: TURN over TCP or TLS (turns:, ?transport=tcp) and ICE-TCP are not supported';

function bad(url: string, why: string, hint?: string): PeerdialError {
  return new PeerdialError('CONFIG_INVALID', `TURN server "${redact(url)}": ${why}`, {
    hint: hint ?? 'Write it as turn:USER:PASSWORD@HOST:PORT (or turn:USER@HOST:PORT with turn_password_command, turn_password_env or turn_password_file).',
  });
}

/** The URL with any password replaced by "***", safe to print. */
export function redact(url: string): string {
  return url.replace(/^(turns?:(?:\/\/)?[^:@/]*):.*@/i, '$1:***@');
}

function decode(s: string, url: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw bad(url, `the ${what} is not valid percent-encoding`);
  }
}

/**
 * Reads `turn:USER[:PASS]@HOST[:PORT][?transport=udp]`. Pure. Throws
 * CONFIG_INVALID for anything else, and for the TCP/TLS forms libjuice
 * cannot use.
 */
export function parseTurnUrl(url: string): TurnUrl {
  const scheme = /^([a-z]+):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'turns') throw bad(url, `TURN over TLS is not supported: ${UDP_ONLY}`, 'Use the server\'s plain turn: URL on a UDP port, or no relay.');
  if (scheme !== 'turn') throw bad(url, 'is not a turn: URL');
  let rest = url.slice(5).replace(/^\/\//, '');
  const q = rest.indexOf('?');
  if (q >= 0) {
    const query = new URLSearchParams(rest.slice(q + 1));
    rest = rest.slice(0, q);
    for (const key of query.keys()) if (key !== 'transport') throw bad(url, `unknown parameter "${key}" (only transport=udp is understood)`);
    const transport = query.get('transport');
    if (transport !== null && transport.toLowerCase() !== 'udp') {
      throw bad(url, `transport=${transport} is not supported: ${UDP_ONLY}`, 'Remove ?transport=... or write ?transport=udp; the relay must accept TURN over UDP.');
    }
  }
  const at = rest.lastIndexOf('@');
  if (at < 0) throw bad(url, 'names no user (turn:USER@HOST:PORT)');
  const userinfo = rest.slice(0, at);
  const hostport = rest.slice(at + 1);
  const colon = userinfo.indexOf(':');
  const username = decode(colon < 0 ? userinfo : userinfo.slice(0, colon), url, 'user name');
  const password = colon < 0 ? undefined : decode(userinfo.slice(colon + 1), url, 'password');
  if (!username) throw bad(url, 'names no user (turn:USER@HOST:PORT)');
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s[\]:/@]+)(?::(\d{1,5}))?$/.exec(hostport);
  if (!m) throw bad(url, `"${hostport}" is not HOST or HOST:PORT`);
  const host = m[1]!.replace(/^\[(.*)\]$/, '$1');
  const port = m[2] === undefined ? TURN_DEFAULT_PORT : Number(m[2]);
  if (port < 1 || port > 65535) throw bad(url, `port ${port} is out of range`);
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    host,
    port,
    username,
    ...(password === undefined ? {} : { password }),
    display: `turn:${encodeURIComponent(username)}@${shownHost}:${port}`,
  };
}

/** The settings' TURN URLs, parsed; throws for the first bad one. */
export function turnUrls(ice: Pick<IceSettings, 'turn'>): TurnUrl[] {
  return (ice.turn ?? []).map(parseTurnUrl);
}

/** The first line of a secret file, which must be readable by its owner only. */
export async function readSecretFile(file: string, what: string): Promise<string> {
  let st;
  try {
    st = await fs.stat(file);
  } catch (err) {
    throw new PeerdialError('SECRET_UNAVAILABLE', `The password file for ${what} (${file}) cannot be read: ${(err as Error).message}`, {
      hint: `Create it with the password on its first line, mode 0600: install -m 600 /dev/null ${file}`,
      cause: err,
    });
  }
  if (!st.isFile()) throw new PeerdialError('SECRET_UNAVAILABLE', `The password file for ${what} (${file}) is not a regular file.`);
  if ((st.mode & 0o077) !== 0) {
    throw new PeerdialError('SECRET_UNAVAILABLE', `The password file for ${what} (${file}) is readable by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}).`, {
      hint: `Make it private: chmod 600 ${file}`,
    });
  }
  const line = (await fs.readFile(file, 'utf8')).split('\n')[0]!.replace(/\r$/, '');
  if (!line) throw new PeerdialError('SECRET_UNAVAILABLE', `The password file for ${what} (${file}) is empty.`, { hint: 'Put the password on its first line.' });
  return line;
}

/**
 * The configured relays with their passwords: from the URL, else from the
 * one password source of `[ice]` (command, environment variable or 0600
 * file). An empty list when no relay is configured.
 */
export async function resolveTurnServers(ice: IceSettings, env: NodeJS.ProcessEnv = process.env): Promise<TurnServer[]> {
  const urls = turnUrls(ice);
  let fetched: string | undefined;
  const out: TurnServer[] = [];
  for (const u of urls) {
    let password = u.password;
    if (password === undefined) {
      const what = `the TURN server ${u.display}`;
      if (fetched === undefined) {
        const src = ice.turnSecret ?? {};
        if (src.command) fetched = await runSecretCommand(src.command, what, env, 'turn_password_command');
        else if (src.env) {
          fetched = env[src.env];
          if (!fetched) {
            throw new PeerdialError('SECRET_UNAVAILABLE', `The environment variable ${src.env} (password for ${what}) is not set.`, {
              hint: `Set it, e.g.: export ${src.env}=...`,
            });
          }
        } else if (src.file) fetched = await readSecretFile(src.file, what);
        else {
          throw new PeerdialError('SECRET_UNAVAILABLE', `No password for ${what}.`, {
            hint: 'Write it into the URL (turn:USER:PASSWORD@HOST:PORT) or set turn_password_command, turn_password_env or turn_password_file in [ice].',
          });
        }
      }
      password = fetched;
    }
    out.push({ host: u.host, port: u.port, username: u.username, password, display: u.display });
  }
  return out;
}
