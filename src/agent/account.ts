/**
 * One mail account at run time: its config, identity, address book,
 * ledger, outbox and call log, and the few operations everything else
 * builds on (compose and queue a mail, sort a received mail). Components
 * are passed in or built here once; nothing reads globals.
 */
import { newId } from '../wire/ids.js';
import type * as openpgp from 'openpgp';
import { PeerdialError } from '../errors.js';
import { pickAccount, type AccountConfig, type Config } from '../config/config.js';
import { resolveSecret } from '../config/secret.js';
import { accountStateDir, identityFile } from '../store/paths.js';
import { ContactStore, type Contact } from '../store/contacts.js';
import { Ledger } from '../store/ledger.js';
import { Outbox, type OutboxEntry } from '../store/outbox.js';
import { CallLog } from '../store/calllog.js';
import { MessageStore } from '../store/messages.js';
import { StrangerLog } from '../store/strangers.js';
import { buildMail } from '../wire/build.js';
import { readPublicKey, fingerprintOf, type Identity } from '../wire/identity.js';
import { screenHeaders, type MailOutline, type ParseResult } from '../wire/parse.js';
import { sanitizeText } from '../wire/sanitize.js';
import { Examiner } from '../mail/examiner.js';
import type { AddressEntry, MessageKind, PeerdialMessage } from '../wire/message.js';
import type { SmtpTarget } from '../mail/smtp.js';
import type { ImapTarget } from '../mail/imap.js';
import type { Verdict } from '../mail/inbox.js';
import { TokenProvider } from '../mail/oauth2.js';
import { InviteStore } from '../store/invites.js';
import { KeptStore } from '../store/kept.js';
import { StandingStore } from '../store/standing.js';
import type { StandingAnswer } from '../wire/standing.js';
import { trustGate } from './introduction.js';
import { openIdentity } from './account-identity.js';
import { classifyDeltaChat, composeDeltaChatCall, isDeltaChatMail } from './deltachat-call.js';
import { isDeltaChatCallKind } from '../wire/deltachat-call.js';

export type Clock = () => Date;

/** A received mail after sorting: a verified message or a typed rejection. */
export type Received = Verdict & {
  /** The parser's full result; absent when the watcher decided alone (a replayed Message-ID). */
  parsed?: ParseResult;
  /** Rejected, and the sender is not a contact (or a blocked one): counted in `strangers`, never logged one by one. */
  stranger?: true;
};

export class Account {
  readonly contacts: ContactStore;
  readonly ledger: Ledger;
  readonly outbox: Outbox;
  readonly calls: CallLog;
  readonly messages: MessageStore;
  readonly invites: InviteStore;
  readonly kept: KeptStore;
  /** Standing answers held from contacts (one-mail calls). */
  readonly standing: StandingStore;
  /** Rejected mail from strangers, counted (the call log holds calls only). */
  readonly strangers: StrangerLog;
  private keyCache = new Map<string, openpgp.PublicKey>();
  /** Keys that signed verified mail from senders who are not (yet) pinned contacts: their answers go encrypted. */
  private senderKeys = new Map<string, openpgp.PublicKey>();
  private passwords = new Map<string, string>();
  private tokenProvider?: TokenProvider;
  private examinerOf?: Examiner;

  private constructor(
    readonly config: Config,
    readonly account: AccountConfig,
    readonly stateDir: string,
    readonly identity: Identity,
    readonly clock: Clock,
  ) {
    this.contacts = new ContactStore(stateDir);
    this.ledger = new Ledger(stateDir);
    this.outbox = new Outbox(stateDir);
    this.calls = new CallLog(stateDir);
    this.messages = new MessageStore(stateDir);
    this.invites = new InviteStore(stateDir);
    this.kept = new KeptStore(stateDir);
    this.standing = new StandingStore(stateDir);
    this.strangers = new StrangerLog(stateDir);
  }

  get email(): string {
    return this.account.email;
  }

  static identityFile(stateDir: string): string {
    return identityFile(stateDir);
  }

  /** Opens an account; creates its identity key when `create` and none exists. */
  static async open(config: Config, opts: { email?: string; clock?: Clock; create?: boolean } = {}): Promise<Account> {
    const account = pickAccount(config, opts.email);
    const stateDir = accountStateDir(config.stateDir, account.email);
    const identity = await openIdentity(Account.identityFile(stateDir), account, opts.create === true);
    return new Account(config, account, stateDir, identity, opts.clock ?? (() => new Date()));
  }

  async secret(which: 'imap' | 'smtp'): Promise<string> {
    const cached = this.passwords.get(which);
    if (cached !== undefined) return cached;
    const server = this.account[which];
    const pw = await resolveSecret(server, `${which.toUpperCase()} ${server.user}@${server.host}`);
    this.passwords.set(which, pw);
    return pw;
  }

  /** OAuth2 access tokens of this account (token_command or the stored refresh token). */
  get tokens(): TokenProvider {
    this.tokenProvider ??= new TokenProvider(this.stateDir);
    return this.tokenProvider;
  }

  /** A fresh-enough access token when the server uses auth = "oauth2" (cached until shortly before it expires). */
  async accessToken(which: 'imap' | 'smtp'): Promise<string> {
    const server = this.account[which];
    return this.tokens.accessToken(server, `${which.toUpperCase()} ${server.user}@${server.host}`);
  }

  async smtpTarget(): Promise<SmtpTarget> {
    const server = this.account.smtp;
    if (server.auth === 'oauth2') return { server, accessToken: await this.accessToken('smtp') };
    return { server, password: await this.secret('smtp') };
  }

  async imapTarget(): Promise<ImapTarget> {
    const server = this.account.imap;
    if (server.auth === 'oauth2') return { server, accessToken: await this.accessToken('imap') };
    return { server, password: await this.secret('imap') };
  }

  /** What reading a Delta Chat mail needs of this account (agent/deltachat-call.ts). */
  private deltaChatReading(contacts: Contact[]): Parameters<typeof classifyDeltaChat>[1] {
    return { self: this.identity, now: this.clock(), contact: (email) => contacts.find((c) => c.email === email), key: (c) => this.keyOf(c) };
  }

  private async keyOf(c: Contact): Promise<openpgp.PublicKey | undefined> {
    if (!c.publicKey || !c.fingerprint) return undefined;
    let k = this.keyCache.get(c.fingerprint);
    if (!k) {
      k = await readPublicKey(c.publicKey);
      this.keyCache.set(c.fingerprint, k);
    }
    return k;
  }

  /** Builds a message of `kind` for `to` and queues it in the outbox. */
  async queue(input: {
    kind: MessageKind;
    to: string;
    callId?: string;
    addresses?: AddressEntry[];
    sdp?: string;
    text?: string;
    purpose?: string;
    attachment?: PeerdialMessage['attachment'];
    ttlSeconds?: number;
    inReplyTo?: string;
    mac?: string;
    /** The user asked for it: addresses may go in clear text to a contact without a key. */
    plain?: boolean;
    /** An announce: the recipient's standing answer (wire/standing.ts); sent only encrypted. */
    standing?: StandingAnswer;
    /** An offer made against the callee's standing answer: its id. */
    standingId?: string;
    /** An offer of a group call: the group's id and members (agent/group.ts). */
    group?: PeerdialMessage['group'];
    /** An `update` (wire/update.ts): which restart of the call, and the update's own nonce (the same whichever way it goes). */
    restart?: { generation: number; role: 'offer' | 'answer' };
    nonce?: string;
  }): Promise<{ entry: OutboxEntry; message: PeerdialMessage; messageId: string }> {
    const now = this.clock();
    const contact = await this.contacts.byEmail(input.to);
    if (contact?.blocked) {
      throw new PeerdialError('CONTACT_BLOCKED', `${input.to} is blocked.`, { hint: `Unblock with: peerdial contacts unblock ${contact.name}` });
    }
    const message: PeerdialMessage = {
      v: 1,
      kind: input.kind,
      from: this.email,
      to: input.to.toLowerCase(),
      callId: input.callId ?? newId(),
      created: now.toISOString(),
      expires: new Date(now.getTime() + (input.ttlSeconds ?? this.config.ringSeconds) * 1000).toISOString(),
      nonce: input.nonce ?? newId(16),
      addresses: input.addresses ?? [],
      ...(input.sdp !== undefined ? { sdp: input.sdp } : {}),
      ...(input.text !== undefined ? { text: input.text } : {}),
      ...(input.purpose !== undefined ? { purpose: input.purpose } : {}),
      ...(input.attachment !== undefined ? { attachment: input.attachment } : {}),
      ...(input.mac !== undefined ? { mac: input.mac } : {}),
      ...(input.standingId !== undefined ? { standing: input.standingId } : {}),
      ...(input.group !== undefined ? { group: input.group } : {}),
      ...(input.restart !== undefined ? { restart: input.restart } : {}),
    };
    const recipientKey = (contact ? await this.keyOf(contact) : undefined) ?? this.senderKeys.get(message.to);
    if (!recipientKey && !input.plain && revealsAddresses(message)) throw noKeyError(message.to, message.kind, contact);
    // a Delta Chat user's calls go in Delta Chat's dialect (agent/deltachat-call.ts)
    const built = contact?.deltaChat && recipientKey && isDeltaChatCallKind(message.kind)
      ? await composeDeltaChatCall(message, { sender: this.identity, ...(this.account.name ? { senderName: this.account.name } : {}), contact, key: recipientKey, date: now, ...(input.inReplyTo ? { inReplyTo: input.inReplyTo } : {}) })
      : await buildMail(message, {
      sender: this.identity,
      date: now,
      ...(recipientKey ? { recipientKey } : {}),
      ...(input.inReplyTo ? { inReplyTo: input.inReplyTo, references: [input.inReplyTo] } : {}),
      ...(this.account.name ? { fromName: this.account.name } : {}),
      // a standing answer carries ICE credentials: without the recipient's key it is left out
      ...(input.standing && recipientKey ? { standing: input.standing } : {}),
        });
    const entry = await this.outbox.enqueue({
      raw: built.raw,
      messageId: built.messageId,
      from: this.email,
      to: [message.to],
      kind: message.kind,
      callId: message.callId,
      now,
    });
    return { entry, message, messageId: built.messageId };
  }

  /** The capped worker that decrypts and parses this account's mail (started on first use, kept warm). */
  get examiner(): Examiner {
    if (!this.examinerOf) {
      this.examinerOf = new Examiner(this.identity.armoredPrivateKey);
      this.examinerOf.warm();
    }
    return this.examinerOf;
  }

  /** Starts the examiner now (the watcher does, so that the first mail does not wait for a worker). */
  warmExaminer(): void {
    void this.examiner;
  }

  /** Is an invite of ours out (so that strangers' introductions must be read)? */
  private async inviting(): Promise<boolean> {
    // only peerdial's own invites open the door to strangers' introductions; a Delta Chat invite is for SecureJoin
    return (await this.invites.pending(this.clock()).catch(() => [])).some((i) => !i.deltaChat);
  }

  /**
   * The first look at a received mail, from its size and outer headers
   * only: a rejection here means its body is never fetched (a stranger's
   * mail costs a header fetch). Undefined: fetch and classify it.
   */
  async screen(outline: MailOutline): Promise<Received | undefined> {
    const contacts = await this.contacts.list();
    const byEmail = new Map(contacts.map((c) => [c.email, c]));
    // while an invite is out, strangers' mail is read far enough to find an introduction (as classify does)
    const inviting = await this.inviting();
    const r = screenHeaders(outline, {
      contact: (email) => {
        const c = byEmail.get(email.toLowerCase());
        if (!c) return inviting ? {} : undefined;
        const hide = inviting && c.trust === 'learned';
        return { blocked: c.blocked, ...(c.fingerprint && !hide ? { fingerprint: c.fingerprint } : {}) };
      },
      policy: this.config.whoMayCall,
    });
    if (!r) return undefined;
    if (r.reason === 'unknown-sender' && r.from && outline.messageId && this.config.whoMayCall !== 'nobody') {
      // kept for a second look when this sender becomes a contact (the mail stays in INBOX)
      await this.kept.keep({ messageId: outline.messageId, from: r.from, at: this.clock().toISOString() }, this.clock()).catch(() => undefined);
    }
    const parsed: ParseResult = { ok: false, reason: r.reason, detail: r.detail, ...(r.from ? { from: r.from } : {}) };
    // counted like classify's rejections: a stranger's (or a blocked contact's) mail is tallied, not listed
    const stranger = r.reason !== 'not-ours' && !contacts.some((c) => c.email === r.from && !c.blocked);
    if (stranger) await this.strangers.note(this.clock(), r.from, r.reason);
    return { ok: false, messageId: '', reason: r.reason, detail: r.detail, parsed, ...(stranger ? { stranger: true as const } : {}) };
  }

  /**
   * Whether mail with addresses may go to `to` now: encrypted to a pinned
   * key, or in clear text because the user asked (`plain`). Throws
   * CONTACT_KEY_MISSING otherwise (before a call is placed, say).
   */
  async requireKeyFor(to: string, kind: MessageKind, plain = false): Promise<void> {
    if (plain) return;
    const contact = await this.contacts.byEmail(to);
    if ((contact && (await this.keyOf(contact))) || this.senderKeys.has(to.toLowerCase())) return;
    throw noKeyError(to.toLowerCase(), kind, contact);
  }

  /**
   * A Delta Chat chat mail that is a call signal from a Delta Chat contact
   * (agent/deltachat-call.ts), sorted like classify() sorts peerdial mail;
   * undefined when it is no call (a SecureJoin step, a message: the
   * chat-mail reader's business).
   */
  async classifyDeltaChatCall(raw: Buffer): Promise<Received | undefined> {
    const contacts = await this.contacts.list();
    const parsed = await classifyDeltaChat(raw, this.deltaChatReading(contacts));
    if (!parsed.ok && parsed.reason !== 'expired' && parsed.reason !== 'key-mismatch') return undefined;
    return this.classify(raw, { parsed, contacts });
  }

  /**
   * Sorts one received mail: parse and verify it (in the capped examiner)
   * against the address book and the ledger, and pin the sender's key when a known contact's key is
   * seen for the first time (as learned, or as introduced when it matches
   * a fingerprint given out of band). While an invite is out, strangers'
   * mail is read far enough to find an introduction. A stranger's mail is
   * kept (src/store/kept.ts) for a second look when they become a contact.
   * `recheck`: the Message-ID of a kept mail looked at again (the ledger
   * knows it already). Never throws for bad input.
   */
  async classify(raw: Buffer, opts: { recheck?: string; parsed?: ParseResult; contacts?: Contact[] } = {}): Promise<Received> {
    await this.ledger.ready();
    const contacts = opts.contacts ?? (await this.contacts.list());
    const inviting = await this.inviting();
    const recheck = opts.recheck;
    let parsed: ParseResult;
    try {
      parsed = opts.parsed ?? (isDeltaChatMail(raw.subarray(0, 64 * 1024))
        ? await classifyDeltaChat(raw, this.deltaChatReading(contacts))
        : await this.examiner.examine(raw, {
        selfEmail: this.email,
        now: this.clock(),
        policy: this.config.whoMayCall,
        // while an invite is out, a key that was only learned does not stand in the way of the introduction that replaces it
        contacts: contacts.map((c) => ({
          email: c.email,
          blocked: c.blocked,
          ...(c.publicKey && c.fingerprint && !(inviting && c.trust === 'learned') ? { publicKey: c.publicKey } : {}),
        })),
        ...(inviting ? { inviting } : {}),
        seen: (nonce, messageId) => this.ledger.seen(nonce, messageId === recheck ? '' : messageId),
      }));
    } catch (err) {
      parsed = { ok: false, reason: 'malformed', detail: sanitizeText(`parser failed: ${(err as Error).message}`) };
    }
    if (parsed.ok && !(await this.ledger.claim(parsed.message.nonce, { expires: parsed.message.expires, now: this.clock() }))) {
      // another process of this account took this mail between our replay check and now
      const m = parsed.message;
      parsed = { ok: false, reason: 'replayed', detail: `nonce ${m.nonce} was claimed by another process`, messageId: parsed.messageId, from: m.from, message: m };
    }
    if (parsed.ok) {
      const m = parsed.message;
      const contact = contacts.find((c) => c.email === m.from);
      const refused = await trustGate(this, parsed, contact);
      if (refused) parsed = { ok: false, ...refused, messageId: parsed.messageId, from: m.from };
    }
    if (parsed.ok) {
      const m = parsed.message;
      const contact = await this.contacts.byEmail(m.from);
      if (!contact?.publicKey) this.senderKeys.set(m.from, parsed.senderKey);
      if (contact && !contact.publicKey && parsed.learnedKey) {
        await this.contacts.pinKey(contact.email, parsed.senderKey.armor(), fingerprintOf(parsed.senderKey), 'autocrypt');
      }
      if (m.kind === 'message') await this.messages.save(m, this.clock());
      if (contact && m.kind === 'announce') {
        await this.contacts.update(contact.email, (c) => {
          c.presence = { addresses: m.addresses, updated: m.created, validUntil: m.expires };
        });
        // a one-mail call to this contact becomes possible (agent/one-mail.ts decides when it is used)
        if (parsed.standing) await this.standing.keep(parsed.standing, this.clock()).catch(() => undefined);
      }
      return { ok: true, messageId: parsed.messageId, nonce: m.nonce, expires: m.expires, parsed };
    }
    const v = parsed as ParseResult & { ok: false; message?: PeerdialMessage };
    if (v.reason === 'expired' && v.message?.kind === 'offer') {
      // verified, but too late: a missed call, never a connection
      await this.calls.append({ at: this.clock().toISOString(), direction: 'in', peer: v.message.from, callId: v.message.callId, outcome: 'missed', detail: 'the offer had expired when it arrived' });
    }
    if (v.reason === 'unknown-sender' && v.from && v.messageId && this.config.whoMayCall !== 'nobody') {
      // kept for a second look when this sender becomes a contact (the mail stays in INBOX)
      await this.kept.keep({ messageId: v.messageId, from: v.from, at: this.clock().toISOString() }, this.clock()).catch(() => undefined);
    }
    const stranger = parsed.reason !== 'not-ours' && !contacts.some((c) => c.email === parsed.from && !c.blocked);
    if (stranger) await this.strangers.note(this.clock(), parsed.from, parsed.reason);
    return {
      ok: false,
      messageId: parsed.messageId ?? '',
      reason: parsed.reason,
      detail: parsed.detail,
      ...(v.message ? { nonce: v.message.nonce, expires: v.message.expires } : {}),
      parsed,
      ...(stranger ? { stranger: true as const } : {}),
    };
  }
}

/** A mail that carries this machine's addresses, host candidates or ICE credentials. */
export function revealsAddresses(m: Pick<PeerdialMessage, 'addresses' | 'sdp'>): boolean {
  return m.addresses.length > 0 || m.sdp !== undefined;
}

function noKeyError(to: string, kind: MessageKind, contact?: Contact): PeerdialError {
  const name = contact?.name ?? to;
  return new PeerdialError(
    'CONTACT_KEY_MISSING',
    `No key of ${to} here: the ${kind} would carry this machine's addresses${kind === 'announce' ? '' : ' and ICE credentials'} in clear text, readable by both mail providers. Nothing was sent.`,
    {
      hint: `Exchange keys first: peerdial invite (they run peerdial join), or peerdial contacts add ${name} ${to} --key THEIR-KEY.asc; or send it in clear text anyway with --plain.`,
    },
  );
}
