/**
 * Sorting network failures from the mail libraries into peerdial errors
 * that say which layer failed (DNS, TCP, TLS, auth) and what to do.
 */
import { PeerdialError } from '../errors.js';

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

const CA_HINT =
  'If the server uses its own certificate authority (a self-hosted server), give its CA certificate: ' +
  'peerdial init --ca-file FILE (or ca_file in the config; see README, "Configuration").';
const PORT_HINT =
  'Check the port and the tls setting: --imap-tls/--smtp-tls "tls" for 993/465, "starttls" for 143/587 ' +
  '(tls in the config; see README, "Configuration").';

/** Every code and message along an error's cause chain (the TLS error is often the cause of a socket error). */
function chain(err: unknown): Array<{ code: string; message: string }> {
  const out: Array<{ code: string; message: string }> = [];
  let e: unknown = err;
  for (let i = 0; i < 5 && e && typeof e === 'object'; i++) {
    const x = e as { code?: unknown; message?: unknown; cause?: unknown };
    out.push({ code: String(x.code ?? ''), message: String(x.message ?? '') });
    e = x.cause;
  }
  return out;
}

/**
 * A TLS failure in plain words (no OpenSSL strings): what went wrong and
 * which flag helps. Undefined when the error is not about TLS.
 */
export function tlsProblem(err: unknown): { what: string; hint: string } | undefined {
  const links = chain(err);
  const text = links.map((l) => `${l.code} ${l.message}`).join(' | ');
  const has = (re: RegExp) => re.test(text);
  if (has(/SELF_SIGNED|self[- ]signed|UNABLE_TO_GET_ISSUER|unable to get (local )?issuer|UNABLE_TO_VERIFY|unable to verify|unknown ca|certificate verify failed/i)) {
    return { what: "the server's certificate is not signed by an authority this machine trusts", hint: CA_HINT };
  }
  if (has(/ALTNAME|does not match certificate|Hostname\/IP does not match|hostname mismatch/i)) {
    return { what: "the server's certificate is for another name", hint: 'Use the host name the certificate names (the provider\'s documented server name), not an alias or an IP address.' };
  }
  if (has(/CERT_HAS_EXPIRED|certificate has expired|CERT_NOT_YET_VALID|not yet valid/i)) {
    return { what: "the server's certificate has expired or is not valid yet", hint: "Check this machine's clock; if it is right, the server's certificate must be renewed by its operator." };
  }
  if (has(/wrong version number|packet length too long|unknown protocol|http request|record layer failure|ERR_SSL_/i)) {
    return { what: 'the server does not speak TLS on this port, or speaks it differently', hint: PORT_HINT };
  }
  if (has(/ClosedAfterConnectTLS|ETLS|STARTTLS|handshake|TLS|SSL|EPROTO|certificate/i)) {
    return { what: 'the secure connection could not be set up', hint: `${PORT_HINT} ${CA_HINT}` };
  }
  return undefined;
}

/** A connection failure in plain words (no library codes such as ESOCKET). */
function tcpWords(err: unknown): string {
  const text = chain(err).map((l) => `${l.code} ${l.message}`).join(' | ');
  if (/ECONNREFUSED|refused/i.test(text)) return 'the connection was refused (nothing listens on that port)';
  if (/ETIMEDOUT|timed? ?out|timeout/i.test(text)) return 'no answer (timed out)';
  if (/EHOSTUNREACH|ENETUNREACH|unreachable/i.test(text)) return 'the host cannot be reached from this network';
  if (/ECONNRESET|EPIPE|reset|closed/i.test(text)) return 'the server closed the connection';
  return 'the connection failed';
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
      hint: 'Check user name and password (many providers want an app password; see README, "Quick start with your own account").',
      cause: err,
    });
  }
  const tls = tlsProblem(err);
  if (tls) {
    return new PeerdialError('TLS_FAILED', `${what}: the TCP connection to ${host}:${port} worked, but TLS failed: ${tls.what}.`, {
      hint: tls.hint,
      cause: err,
    });
  }
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNECTION', 'ESOCKET', 'EPIPE', 'NoConnection', 'ClosedAfterConnectText', 'EConnectionClosed'].includes(code) || /connect|socket|closed/i.test(msg)) {
    return new PeerdialError('TCP_FAILED', `${what}: could not talk to ${host}:${port}: ${tcpWords(err)}.`, {
      hint: 'Check host and port, and that no firewall blocks the connection.',
      cause: err,
    });
  }
  return new PeerdialError(what.startsWith('SMTP') ? 'SMTP_TRANSIENT' : 'IMAP_FAILED', `${what}: ${msg}`, { cause: err });
}
