/**
 * The IMAP edge: builds a fresh imapflow client for an account. Clients
 * never reconnect by themselves; whoever owns one builds a new one.
 */
import { promises as fs } from 'node:fs';
import { ImapFlow } from 'imapflow';
import type { ServerConfig } from '../config/config.js';
import { classifyNetError } from './errors.js';

export interface ImapTarget {
  server: ServerConfig;
  /** For auth = "password". */
  password?: string;
  /** For auth = "oauth2": logs in with OAUTHBEARER or XOAUTH2 instead of the password. */
  accessToken?: string;
}

export interface ImapClientOptions {
  /** End and re-issue IDLE after this long: servers drop IDLE at ~29-30 min. Default 5 min. */
  maxIdleMs?: number;
}

/** How long a watching connection may stay silent before imapflow asks with a NOOP (and, silent again, gives it up). */
export const LIVENESS_MARGIN_MS = 60_000;

/**
 * The liveness check of a connection that idles: imapflow's socket
 * timeout, an inactivity timer (it fires only after that much silence, not
 * on a schedule). A minute longer than the re-IDLE, so a quiet but healthy
 * server (one that sends no "* OK Still here") is answered by the re-IDLE's
 * own traffic and never gets a NOOP; a dead one is given up by the second
 * silence. Beneath it the kernel's TCP keepalive (imapflow turns it on)
 * probes the path without waking the process.
 */
export function livenessTimeoutMs(maxIdleMs: number): number {
  return maxIdleMs + LIVENESS_MARGIN_MS;
}

export async function imapClient(t: ImapTarget, opts: ImapClientOptions = {}): Promise<ImapFlow> {
  const ca = t.server.caFile ? await fs.readFile(t.server.caFile, 'utf8') : undefined;
  const client = new ImapFlow({
    host: t.server.host,
    port: t.server.port,
    secure: t.server.tls === 'tls',
    doSTARTTLS: t.server.tls === 'starttls' ? true : t.server.tls === 'none' ? false : undefined,
    auth: t.accessToken !== undefined ? { user: t.server.user, accessToken: t.accessToken } : { user: t.server.user, pass: t.password ?? '' },
    logger: false,
    disableAutoIdle: true,
    maxIdleTime: opts.maxIdleMs ?? 300_000,
    // a client that idles: its liveness check; others keep imapflow's 5 min
    ...(opts.maxIdleMs !== undefined ? { socketTimeout: livenessTimeoutMs(opts.maxIdleMs) } : {}),
    emitLogs: false,
    connectionTimeout: 20_000,
    greetingTimeout: 20_000,
    ...(ca ? { tls: { ca } } : {}),
  });
  // imapflow emits 'error' on socket failures; without a listener Node would throw.
  client.on('error', () => undefined);
  return client;
}

export async function connectImap(t: ImapTarget, opts: ImapClientOptions = {}): Promise<ImapFlow> {
  const client = await imapClient(t, opts);
  try {
    await client.connect();
  } catch (err) {
    client.close();
    throw classifyNetError(err, 'IMAP', t.server.host, t.server.port);
  }
  return client;
}

/** Checks login and reports whether the server offers IDLE (for init and doctor). */
export async function probeImap(t: ImapTarget): Promise<{ idle: boolean }> {
  const client = await connectImap(t);
  try {
    return { idle: client.capabilities.has('IDLE') };
  } finally {
    await client.logout().catch(() => client.close());
  }
}
