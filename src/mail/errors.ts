/**
 * Sorting network failures from the mail libraries into peerdial errors
 * that say which layer failed (DNS, TCP, TLS, auth) and what to do.
 */
import { PeerdialError } from '../errors.js';

const TLS_CODES = /CERT|SELF_SIGNED|TLS|SSL|UNABLE_TO_VERIFY|ALTNAME|EPROTO/i;

/**
 * What providers answer when they no longer take the account password
 * itself (captured responses: Gmail, Yahoo/AOL, iCloud, Microsoft 365).
 */
const BASIC_AUTH_REFUSED: RegExp[] = [
  /web login required/i,
  /please log ?in (via|with|through) your web browser/i,
  /application-specific password required/i,
  /app(lication)?[- ]specific password/i,
  /\b534[- ]5\.7\.9\b/,
  /\b534[- ]5\.7\.14\b/,
  /\b535[- ]5\.7\.8\b.*username and password not accepted/i,
  /username and password not accepted/i,
  /basicauthblocked/i,
  /basic auth(entication)? (is )?(disabled|blocked|not (allowed|supported))/i,
  /SmtpClientAuthentication is disabled/i,
  /\b5\.7\.139\b/,
  /LOGIN failed.*(oauth|modern authentication)/i,
];

/** True when the server's words say: not with a password, use an app password or OAuth2. */
export function refusesBasicAuth(text: string): boolean {
  return BASIC_AUTH_REFUSED.some((re) => re.test(text));
}

/** All the server's words an error from imapflow or nodemailer carries. */
function serverText(e: { message?: string; response?: unknown; responseText?: unknown; serverResponseCode?: unknown } | undefined): string {
  if (!e) return '';
  return [e.message, e.response, e.responseText, e.serverResponseCode].filter((x): x is string => typeof x === 'string').join(' | ');
}

export function classifyNetError(err: unknown, what: string, host: string, port: number): PeerdialError {
  if (err instanceof PeerdialError) return err;
  const e = err as { code?: string; message?: string; responseCode?: number; authenticationFailed?: boolean; serverResponseCode?: string; response?: string; responseText?: string };
  const code = String(e?.code ?? '');
  const msg = String(e?.message ?? err);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EDNS') {
    return new PeerdialError('DNS_FAILED', `${what}: the name ${host} could not be resolved (${code}).`, {
      hint: 'Check the host name in the config and that this machine has working DNS.',
      cause: err,
    });
  }
  const words = serverText(e);
  if ((e?.authenticationFailed || code === 'EAUTH' || e?.responseCode === 534 || e?.responseCode === 535 || e?.serverResponseCode === 'AUTHENTICATIONFAILED' || /AUTHENTICATE failed|NO \[AUTH/i.test(words)) && refusesBasicAuth(words)) {
    const detail = (typeof e.response === 'string' && e.response) || (typeof e.responseText === 'string' && e.responseText) || msg;
    return new PeerdialError('AUTH_FAILED', `${what}: ${host} does not take the account password here: ${detail.trim().slice(0, 300)}`, {
      hint: 'Create an app password in the provider\'s account security settings and use it as the password, or set auth = "oauth2" for this server (oauth2_provider, oauth2_client_id) and run: peerdial login (see README, "Accounts that need OAuth2").',
      cause: err,
    });
  }
  if (e?.authenticationFailed || code === 'EAUTH' || e?.serverResponseCode === 'AUTHENTICATIONFAILED' || e?.responseCode === 535) {
    return new PeerdialError('AUTH_FAILED', `${what}: ${host} refused the login.`, {
      hint: 'Check user name and password (many providers want an app password; see README, "Accounts").',
      cause: err,
    });
  }
  if (TLS_CODES.test(code) || code === 'ETLS' || /certificate|tls|ssl/i.test(msg)) {
    return new PeerdialError('TLS_FAILED', `${what}: TLS with ${host}:${port} failed: ${msg}`, {
      hint: 'Check the port and tls setting ("tls" for 993/465, "starttls" for 143/587); for a self-hosted server set ca_file.',
      cause: err,
    });
  }
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNECTION', 'ESOCKET', 'EPIPE', 'NoConnection', 'ClosedAfterConnectTLS', 'ClosedAfterConnectText', 'EConnectionClosed'].includes(code) || /connect|socket|closed/i.test(msg)) {
    return new PeerdialError('TCP_FAILED', `${what}: could not talk to ${host}:${port} (${code || msg}).`, {
      hint: 'Check host and port, and that no firewall blocks the connection.',
      cause: err,
    });
  }
  return new PeerdialError(what.startsWith('SMTP') ? 'SMTP_TRANSIENT' : 'IMAP_FAILED', `${what}: ${msg}`, { cause: err });
}
