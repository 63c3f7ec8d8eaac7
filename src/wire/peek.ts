/**
 * The cheap looks at a mail, from its outer headers alone (no body parsing,
 * no crypto): `peekHeaders` for the watcher's bookkeeping, `screenHeaders`
 * to turn a mail away before its body is fetched. Pure; never throws.
 * parse.ts does the full check.
 */
import { addressparser } from './nodemailer.js';
import { HEADER_SIGNER, HEADER_VERSION, PROTOCOL_VERSION, headerValues, splitHeaderSection, type HeaderSource } from './headers.js';
import { LIMITS } from './limits.js';
import type { RejectReason } from './message.js';
import { sanitizeText } from './sanitize.js';

/** Who may send us signals. */
export type SenderPolicy = 'everybody' | 'contacts' | 'nobody';

export interface PeekedHeaders {
  /** With angle brackets, when present. */
  messageId?: string;
  /** Lower-case address of the outer From, when it names exactly one. */
  from?: string;
  /** Lower-case addresses of the outer To. */
  to: string[];
  inReplyTo?: string;
  /** Value of Peerdial-Version, when present. */
  version?: string;
  /** Carries our header (any version): decided from headers alone. */
  isOurs: boolean;
}

export function singleAddress(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    const list = addressparser(value, { flatten: true });
    if (list.length !== 1 || !list[0]?.address) return undefined;
    return list[0].address.trim().toLowerCase();
  } catch {
    return undefined;
  }
}

export function addressList(values: string[]): string[] {
  const out: string[] = [];
  for (const v of values) {
    try {
      for (const a of addressparser(v, { flatten: true })) if (a.address) out.push(a.address.trim().toLowerCase());
    } catch {
      /* unparsable: contributes nothing */
    }
  }
  return out;
}

export function firstMessageIdIn(value: string | undefined): string | undefined {
  const m = value ? /<[^<>\s]{1,900}>/.exec(value) : null;
  return m ? m[0] : undefined;
}

/** Read the outer headers cheaply (no body parsing, no crypto). Never throws. */
export function peekHeaders(raw: Buffer | Uint8Array | string): PeekedHeaders {
  try {
    const { fields } = splitHeaderSection(raw);
    const get = (name: string): string[] => fields.filter((f) => f.name === name).map((f) => f.value);
    const version = get(HEADER_VERSION.toLowerCase())[0];
    const peeked: PeekedHeaders = { to: addressList(get('to')), isOurs: version !== undefined };
    const messageId = firstMessageIdIn(get('message-id')[0]);
    const from = singleAddress(get('from')[0]);
    const inReplyTo = firstMessageIdIn(get('in-reply-to')[0]);
    if (messageId) peeked.messageId = messageId;
    if (from) peeked.from = from;
    if (inReplyTo) peeked.inReplyTo = inReplyTo;
    if (version !== undefined) peeked.version = version;
    return peeked;
  } catch {
    return { to: [], isOurs: false };
  }
}

/** What the watcher knows of a mail before fetching its body: size, outer From, a few outer headers. */
export interface MailOutline {
  /** RFC822.SIZE as the server says. */
  size: number;
  /** Addresses of the outer From (the server's envelope). */
  from: string[];
  /** The fetched outer header fields (at least Peerdial-Version and Peerdial-Signer). */
  headers: HeaderSource;
  /** Message-ID from the server's envelope, when it has one. */
  messageId?: string;
}

export interface ScreenContext {
  /** The contact at this address: pinned key fingerprint (upper-case hex) when one is pinned. */
  contact(email: string): { fingerprint?: string; blocked?: boolean } | undefined;
  policy: SenderPolicy;
}

/**
 * The first look at a mail, from its outline alone (no body, no crypto):
 * too large, not from someone who may send us signals, or signed (by its
 * own account) by a key that is not the pinned one. A rejection here costs
 * a header fetch; `undefined` means the body may be fetched and examined.
 * Never throws.
 */
export function screenHeaders(outline: MailOutline, ctx: ScreenContext): { reason: RejectReason; detail: string; from?: string } | undefined {
  const froms = outline.from.map((f) => f.trim().toLowerCase()).filter((f) => f !== '');
  const from = froms.length === 1 ? froms[0]! : undefined;
  // Details and the sender come from hostile headers: sanitised here, as parseMail's are.
  const no = (reason: RejectReason, detail: string) => ({ reason, detail: sanitizeText(detail), ...(from ? { from: sanitizeText(from, { max: 320 }) } : {}) });
  if (!Number.isFinite(outline.size) || outline.size > LIMITS.mailBytes) {
    return no('too-large', `mail is ${outline.size} bytes, more than ${LIMITS.mailBytes} (LIMITS.mailBytes)`);
  }
  const versions = headerValues(outline.headers, HEADER_VERSION);
  if (versions.length === 0) return no('not-ours', `no ${HEADER_VERSION} header`);
  if (versions.length > 1) return no('malformed', `${versions.length} ${HEADER_VERSION} headers`);
  if (versions[0] !== String(PROTOCOL_VERSION)) return no('unsupported-version', `${HEADER_VERSION} is "${versions[0]!.slice(0, 40)}", this peerdial reads ${PROTOCOL_VERSION}`);
  if (!from) return no('malformed', 'From does not name exactly one address');
  const contact = ctx.contact(from);
  if (contact?.blocked) return no('blocked-sender', `${from} is blocked`);
  if (ctx.policy === 'nobody') return no('unknown-sender', 'policy accepts signals from nobody');
  if (!contact && ctx.policy === 'contacts') return no('unknown-sender', `${from} is not a contact`);
  const signers = headerValues(outline.headers, HEADER_SIGNER);
  if (signers.length > 1) return no('malformed', `${signers.length} ${HEADER_SIGNER} headers`);
  const pinned = contact?.fingerprint?.toUpperCase();
  if (pinned && signers.length === 1 && signers[0]!.toUpperCase() !== pinned) {
    return no('key-mismatch', `${HEADER_SIGNER} names ${signers[0]!.slice(0, 60)}, not the pinned key ${pinned} of ${from}`);
  }
  return undefined;
}
