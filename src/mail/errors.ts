/**
 * Sorting network failures from the mail libraries into peerdial errors
 * that say which layer failed (DNS, TCP, TLS, auth) and what to do.
 */
import { PeerdialError } from '../errors.js';

const TLS_CODES = /CERT|SELF_SIGNED|TLS|SSL|UNABLE_TO_VERIFY|ALTNAME|EPROTO/i;

export function classifyNetError(err: unknown, what: string, host: string, port: number): PeerdialError {
  if (err instanceof PeerdialError) return err;
  const e = err as { code?: string; message?: string; responseCode?: number; authenticationFailed?: boolean; serverResponseCode?: string; response?: string };
  const code = String(e?.code ?? '');
  const msg = String(e?.message ?? err);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EDNS') {
    return new PeerdialError('DNS_FAILED', `${what}: the name ${host} could not be resolved (${code}).`, {
      hint: 'Check the host name in the config and that this machine has working DNS.',
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
