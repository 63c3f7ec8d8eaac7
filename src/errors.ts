/**
 * The one root error of peerdial. Every error that reaches a user carries a
 * stable `code` (for scripts and tests) and a message that says what to do
 * next.
 */
export type ErrorCode =
  | 'CONFIG_MISSING'
  | 'CONFIG_INVALID'
  | 'ACCOUNT_UNKNOWN'
  | 'SECRET_UNAVAILABLE'
  | 'DNS_FAILED'
  | 'TCP_FAILED'
  | 'TLS_FAILED'
  | 'AUTH_FAILED'
  | 'IMAP_FAILED'
  /** A ManageSieve server (RFC 5804) refused a command or broke the protocol (src/mail/managesieve.ts). */
  | 'SIEVE_FAILED'
  | 'SMTP_TRANSIENT'
  | 'SMTP_PERMANENT'
  | 'CONTACT_UNKNOWN'
  | 'CONTACT_EXISTS'
  | 'CONTACT_BLOCKED'
  | 'KEY_MISSING'
  | 'KEY_MISMATCH'
  | 'INVITE_INVALID'
  | 'CONTACT_KEY_MISSING'
  | 'WIRE_BUILD'
  | 'STORE_CORRUPT'
  | 'STORE_LOCKED'
  | 'SESSION_FAILED'
  | 'SESSION_CLOSED'
  | 'FINGERPRINT_MISMATCH'
  | 'CALL_TIMEOUT'
  | 'CALL_DECLINED'
  | 'CALL_BUSY'
  | 'CALL_CANCELLED'
  | 'TRANSFER_FAILED'
  | 'INTEGRITY_FAILED'
  | 'ABORTED'
  | 'NOT_ROOT'
  | 'MISSING_PACKAGE'
  | 'MEDIA_FAILED'
  | 'SERVICE_FAILED'
  | 'AGENT_NOT_RUNNING'
  /** The agent cannot serve its control socket (agent/control-path.ts). */
  | 'CONTROL_SOCKET_FAILED'
  | 'LINK_FAILED'
  | 'PORTMAP_FAILED'
  /**
   * A standing answer (one-mail call, wire/standing.ts) that may not serve
   * this call: it served one already, it expired, the contact is not
   * introduced or verified, or it is not known (withdrawn, made before the
   * agent restarted, for somebody else). The call goes with two mails.
   */
  | 'STANDING_ANSWER_USED'
  | 'STANDING_ANSWER_EXPIRED'
  | 'STANDING_ANSWER_UNTRUSTED'
  | 'STANDING_ANSWER_UNKNOWN'
  /** A message over one of the limits of the address mail (src/wire/limits.ts). */
  | 'LIMIT_EXCEEDED'
  | 'USAGE';

export class PeerdialError extends Error {
  readonly code: ErrorCode;
  /** What the user should do next, when there is something to do. */
  readonly hint?: string;

  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PeerdialError';
    this.code = code;
    if (options.hint !== undefined) this.hint = options.hint;
  }
}

export function isPeerdialError(err: unknown, code?: ErrorCode): err is PeerdialError {
  return err instanceof PeerdialError && (code === undefined || err.code === code);
}

/** Stable exit codes for the CLI, documented in the README. */
export function exitCodeFor(err: unknown): number {
  if (!(err instanceof PeerdialError)) return 70;
  switch (err.code) {
    case 'USAGE':
    case 'LIMIT_EXCEEDED':
      return 64;
    case 'CONFIG_MISSING':
    case 'CONFIG_INVALID':
    case 'ACCOUNT_UNKNOWN':
    case 'SECRET_UNAVAILABLE':
      return 78;
    case 'DNS_FAILED':
    case 'TCP_FAILED':
    case 'TLS_FAILED':
    case 'IMAP_FAILED':
    case 'SIEVE_FAILED':
    case 'SMTP_TRANSIENT':
    case 'LINK_FAILED':
    case 'PORTMAP_FAILED':
      return 69;
    case 'AUTH_FAILED':
      return 77;
    case 'CALL_TIMEOUT':
    case 'CALL_DECLINED':
    case 'CALL_BUSY':
    case 'CALL_CANCELLED':
      return 2;
    case 'AGENT_NOT_RUNNING':
      return 3;
    default:
      return 1;
  }
}
