/**
 * The SMTP edge: sends one raw mail through the account's submission
 * server. No retries here: the outbox sender owns them.
 */
import { promises as fs } from 'node:fs';
import nodemailer, { type Transporter } from 'nodemailer';
import { PeerdialError } from '../errors.js';
import type { ServerConfig } from '../config/config.js';
import { classifyNetError } from './errors.js';

export interface SmtpTarget {
  server: ServerConfig;
  /** For auth = "password". */
  password?: string;
  /** For auth = "oauth2": AUTH XOAUTH2 with this token. */
  accessToken?: string;
}

export async function smtpTransport(t: SmtpTarget): Promise<Transporter> {
  const ca = t.server.caFile ? await fs.readFile(t.server.caFile, 'utf8') : undefined;
  return nodemailer.createTransport({
    host: t.server.host,
    port: t.server.port,
    secure: t.server.tls === 'tls',
    requireTLS: t.server.tls === 'starttls',
    ignoreTLS: t.server.tls === 'none',
    auth: t.accessToken !== undefined ? { type: 'OAuth2', user: t.server.user, accessToken: t.accessToken } : { user: t.server.user, pass: t.password ?? '' },
    ...(ca ? { tls: { ca } } : {}),
    connectionTimeout: 20_000,
    greetingTimeout: 20_000,
    socketTimeout: 60_000,
    // One kept-open connection: a call sends several mails in a row, and
    // TLS + AUTH for each would add to every mail leg. Closed by its owner.
    pool: true,
    maxConnections: 1,
    maxMessages: 1000,
  });
}

/** Sends raw bytes. Throws SMTP_PERMANENT for 5xx refusals, SMTP_TRANSIENT / TCP / TLS / DNS / AUTH otherwise. */
export async function sendRaw(transport: Transporter, t: SmtpTarget, envelope: { from: string; to: string[] }, raw: Buffer): Promise<void> {
  try {
    await transport.sendMail({ envelope, raw });
  } catch (err) {
    const e = err as { responseCode?: number; response?: string; code?: string };
    if (typeof e.responseCode === 'number' && e.responseCode >= 500 && e.responseCode !== 535 && e.code !== 'EAUTH') {
      throw new PeerdialError('SMTP_PERMANENT', `The mail server refused the mail: ${e.response ?? e.responseCode}`, {
        hint: 'Check the recipient address; the mail stays in the outbox as failed (peerdial outbox).',
        cause: err,
      });
    }
    if (typeof e.responseCode === 'number' && e.responseCode >= 400 && e.responseCode < 500) {
      throw new PeerdialError('SMTP_TRANSIENT', `The mail server deferred the mail: ${e.response ?? e.responseCode}`, { cause: err });
    }
    throw classifyNetError(err, 'SMTP', t.server.host, t.server.port);
  }
}

/** Checks that the server answers and accepts the login (for init and doctor). */
export async function probeSmtp(t: SmtpTarget): Promise<void> {
  const transport = await smtpTransport(t);
  try {
    await transport.verify();
  } catch (err) {
    throw classifyNetError(err, 'SMTP', t.server.host, t.server.port);
  } finally {
    transport.close();
  }
}
