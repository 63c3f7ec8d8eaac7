/**
 * The address book: who may call, their pinned keys and how far each key is
 * trusted, what each contact may make this machine do (capabilities),
 * aliases and short numbers, policy and last known presence. One JSON file,
 * written atomically.
 *
 * Trust of a contact's key:
 *   introduced  the key (or its fingerprint) came out of band: an invite
 *               code (`peerdial join`), `contacts add/key ... FINGERPRINT`,
 *               or a vCard with the key (`contacts import-vcard`; keySource
 *               'vcard' says so)
 *   verified    the two people compared fingerprints (`contacts verify --confirm`)
 *   learned     taken from the contact's first mail (trust on first use)
 * A learned key may at most ring; see src/agent/policy.ts.
 */
import path from 'node:path';
import { PeerdialError } from '../errors.js';
import type { AddressEntry } from '../wire/message.js';
import { StoreLock, readJson, writeJsonAtomic } from './files.js';
import { checkMailAddress, normalMailAddress } from '../wire/address.js';

export type AnswerMode = 'auto-answer' | 'ring' | 'deny';

export const TRUST_LEVELS = ['introduced', 'verified', 'learned'] as const;
export type TrustLevel = (typeof TRUST_LEVELS)[number];

/** What a call may be for (the offer's `purpose`). */
export const PURPOSES = ['chat', 'pipe', 'file', 'forward', 'view', 'media'] as const;
export type CallPurpose = (typeof PURPOSES)[number];

/**
 * What a contact may make this machine do. `forward` is its own allow-list
 * of targets ("HOST:PORT" or "HOST:LOW-HIGH"); empty means no forward.
 */
export interface Capabilities {
  chat: boolean;
  pipe: boolean;
  file: boolean;
  view: boolean;
  media: boolean;
  forward: string[];
  /** Largest file (bytes) accepted when nobody sits at the terminal. */
  fileMaxBytes: number;
}

/** Safe defaults: talk, send files up to 100 MiB, watch, a voice/video call; no port forwarding. */
export const DEFAULT_CAPABILITIES: Readonly<Capabilities> = Object.freeze({
  chat: true,
  pipe: true,
  file: true,
  view: true,
  media: true,
  forward: [] as string[],
  fileMaxBytes: 100 * 1024 * 1024,
});

export function capabilitiesOf(c: Pick<Contact, 'capabilities'> | undefined): Capabilities {
  return { ...DEFAULT_CAPABILITIES, forward: [...DEFAULT_CAPABILITIES.forward], ...(c?.capabilities ?? {}) };
}

/** Upper-case hex, no spaces: a full 40-digit (v4) or 64-digit (v6) OpenPGP fingerprint, or undefined. */
export function parseFingerprint(text: string): string | undefined {
  const hex = text.replace(/[\s:]/g, '').toUpperCase();
  return /^([0-9A-F]{40}|[0-9A-F]{64})$/.test(hex) ? hex : undefined;
}

/** One forward target a contact may reach: "HOST:PORT" or "HOST:LOW-HIGH" (no "HOST:*": ranges are explicit). */
export function parseForwardTarget(spec: string): { host: string; low: number; high: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})(?:-(\d{1,5}))?$/.exec(spec.trim());
  if (!m) return undefined;
  const host = m[1]!.replace(/^\[|\]$/g, '').toLowerCase();
  const low = Number(m[2]);
  const high = m[3] === undefined ? low : Number(m[3]);
  if (low < 1 || high > 65535 || high < low) return undefined;
  return { host, low, high };
}

export interface Presence {
  addresses: AddressEntry[];
  /** When the last announce (or offer/answer) from this contact was verified. */
  updated: string;
  validUntil?: string;
}

export interface Contact {
  name: string;
  email: string;
  aliases: string[];
  /** Armored OpenPGP public key, pinned the first time it was seen. */
  publicKey?: string;
  /**
   * The key's fingerprint. With no `publicKey` yet, the fingerprint given out
   * of band (invite, --key): the first mail must carry exactly this key.
   */
  fingerprint?: string;
  /**
   * 'autocrypt': taken from a mail's key header (Peerdial-Key, or an old peer's Autocrypt; the stored name predates Peerdial-Key).
   * 'manual': given by the user (`--key`, an invite). 'vcard': from a vCard file the user imported (`contacts import-vcard`).
   */
  keySource?: 'autocrypt' | 'manual' | 'vcard';
  /** How far the key is trusted; absent while no key or fingerprint is known. */
  trust?: TrustLevel;
  /** Same as trust === 'verified' (kept for older readers of the file). */
  verified: boolean;
  /** What this contact may make this machine do; defaults when absent (DEFAULT_CAPABILITIES). */
  capabilities?: Partial<Capabilities>;
  blocked: boolean;
  /** Per-contact answer policy; the account default applies when unset. */
  answer?: AnswerMode;
  /** Send this contact an announce whenever our address changes. */
  announce: boolean;
  presence?: Presence;
  /**
   * A Delta Chat user (introduced by SecureJoin, or by a vCard Delta Chat
   * made): mail to them goes in Delta Chat's format (wire/deltachat.ts),
   * with peerdial's key in the standard `Autocrypt` header, which is how
   * Delta Chat learns keys; calls to and from them in Delta Chat's call
   * dialect (`Chat-Content: call`, agent/deltachat-call.ts).
   */
  deltaChat?: boolean;
  added: string;
}

interface ContactsFile {
  version: 1;
  contacts: Contact[];
}

/** The normal form (wire/address.ts); input that is no address is only trimmed and lower-cased. */
export function normaliseEmail(email: string): string {
  return normalMailAddress(email.trim()) ?? email.trim().toLowerCase();
}

/** The one address grammar (wire/address.ts), surrounding spaces allowed. */
export function isValidEmail(email: string): boolean {
  return checkMailAddress(email.trim()).ok;
}

export class ContactStore {
  private readonly file: string;
  /** Across processes: the agent and a command may change this file at once. */
  private readonly mutex: StoreLock;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'contacts.json');
    this.mutex = new StoreLock(this.file);
  }

  private async load(): Promise<ContactsFile> {
    const data = await readJson<ContactsFile>(this.file, { version: 1, contacts: [] });
    for (const c of data.contacts) migrate(c);
    return data;
  }

  async list(): Promise<Contact[]> {
    return (await this.load()).contacts;
  }

  /** Finds a contact by e-mail address, name or alias / short number. */
  async resolve(who: string): Promise<Contact | undefined> {
    const key = who.trim().toLowerCase();
    const contacts = await this.list();
    return (
      contacts.find((c) => c.email === (normalMailAddress(who.trim()) ?? key)) ??
      contacts.find((c) => c.name.toLowerCase() === key) ??
      contacts.find((c) => c.aliases.some((a) => a.toLowerCase() === key))
    );
  }

  async byEmail(email: string): Promise<Contact | undefined> {
    const key = normaliseEmail(email);
    return (await this.list()).find((c) => c.email === key);
  }

  /** Like resolve(), but a clear error when nobody matches. */
  async require(who: string): Promise<Contact> {
    const c = await this.resolve(who);
    if (!c) {
      throw new PeerdialError('CONTACT_UNKNOWN', `No contact named "${who}".`, {
        hint: `Add one with: peerdial contacts add NAME EMAIL  (or call the e-mail address directly)`,
      });
    }
    return c;
  }

  async add(input: { name: string; email: string; aliases?: string[] }): Promise<Contact> {
    const checked = checkMailAddress(input.email.trim());
    if (!checked.ok) {
      throw new PeerdialError('USAGE', `"${input.email}" is not an e-mail address peerdial accepts: ${checked.reason}.`, {
        hint: 'Give the contact\'s internet mail address, like name@example.org.',
      });
    }
    const email = checked.address;
    const name = input.name.trim();
    if (!name || /[\s@]/.test(name)) {
      throw new PeerdialError('USAGE', `"${input.name}" cannot be a contact name (no spaces, no @).`);
    }
    return this.mutex.run(async () => {
      const data = await this.load();
      const clash = data.contacts.find(
        (c) => c.email === email || c.name.toLowerCase() === name.toLowerCase() ||
          c.aliases.some((a) => (input.aliases ?? []).includes(a)),
      );
      if (clash) {
        throw new PeerdialError('CONTACT_EXISTS', `A contact "${clash.name}" <${clash.email}> already exists.`, {
          hint: 'Choose another name, or remove the old contact first.',
        });
      }
      const contact: Contact = {
        name,
        email,
        aliases: input.aliases ?? [],
        verified: false,
        blocked: false,
        announce: true,
        added: new Date().toISOString(),
      };
      data.contacts.push(contact);
      await writeJsonAtomic(this.file, data);
      return contact;
    });
  }

  /** Applies `change` to one contact and saves; returns the new record. */
  async update(email: string, change: (c: Contact) => void): Promise<Contact> {
    const key = normaliseEmail(email);
    return this.mutex.run(async () => {
      const data = await this.load();
      const c = data.contacts.find((x) => x.email === key);
      if (!c) throw new PeerdialError('CONTACT_UNKNOWN', `No contact with address ${email}.`);
      change(c);
      await writeJsonAtomic(this.file, data);
      return c;
    });
  }

  async remove(who: string): Promise<Contact> {
    const c = await this.require(who);
    await this.mutex.run(async () => {
      const data = await this.load();
      data.contacts = data.contacts.filter((x) => x.email !== c.email);
      await writeJsonAtomic(this.file, data);
    });
    return c;
  }

  /**
   * Pins a key from a verified mail (source 'autocrypt') or given by the user
   * (source 'manual'). Refuses to replace a pinned key with a different one:
   * that is reported as a key mismatch elsewhere. A key that matches a
   * fingerprint introduced out of band keeps the level 'introduced'; a key
   * nobody vouched for is 'learned'.
   */
  async pinKey(email: string, armored: string, fingerprint: string, source: 'autocrypt' | 'manual'): Promise<Contact> {
    return this.update(email, (c) => {
      if (c.fingerprint && c.fingerprint !== fingerprint) {
        throw new PeerdialError('KEY_MISMATCH', `Contact ${c.email} already has a different key (${c.fingerprint}).`, {
          hint: `Compare fingerprints with them out of band; then run: peerdial contacts key ${c.name} FINGERPRINT`,
        });
      }
      const vouched = source === 'manual' || (c.fingerprint === fingerprint && (c.trust === 'introduced' || c.trust === 'verified'));
      c.publicKey = armored;
      c.fingerprint = fingerprint;
      c.keySource = source;
      c.trust = c.trust === 'verified' ? 'verified' : vouched ? 'introduced' : 'learned';
      c.verified = c.trust === 'verified';
    });
  }

  /**
   * Introduces a contact's key out of band (invite, `contacts key`): the
   * fingerprint, and the key itself when it is at hand. A learned key that
   * differs is replaced (and returned as `replaced`, for the user to see);
   * an introduced or verified key that differs is replaced only with
   * `replace`.
   */
  async introduceKey(email: string, input: { fingerprint: string; armored?: string; replace?: boolean; source?: 'manual' | 'vcard' }): Promise<{ contact: Contact; replaced?: { fingerprint: string; trust: TrustLevel | undefined } }> {
    let replaced: { fingerprint: string; trust: TrustLevel | undefined } | undefined;
    const contact = await this.update(email, (c) => {
      if (c.fingerprint && c.fingerprint !== input.fingerprint) {
        if (c.trust !== 'learned' && c.trust !== undefined && !input.replace) {
          throw new PeerdialError('KEY_MISMATCH', `${c.name} <${c.email}> already has a ${c.trust} key ${c.fingerprint}, not ${input.fingerprint}.`, {
            hint: `If they really have a new key, run again with --replace.`,
          });
        }
        replaced = { fingerprint: c.fingerprint, trust: c.trust };
        delete c.publicKey;
        delete c.keySource;
      }
      const same = c.fingerprint === input.fingerprint;
      c.fingerprint = input.fingerprint;
      if (input.armored) {
        c.publicKey = input.armored;
        c.keySource = input.source ?? 'manual';
      } else if (!same) {
        delete c.publicKey;
      }
      if (c.trust !== 'verified' || !same) c.trust = 'introduced';
      c.verified = c.trust === 'verified';
    });
    return { contact, ...(replaced ? { replaced } : {}) };
  }

  /** Marks a contact's key verified (fingerprints compared). */
  async verify(email: string): Promise<Contact> {
    return this.update(email, (c) => {
      if (!c.fingerprint) {
        throw new PeerdialError('KEY_MISSING', `No key for ${c.name} yet.`, { hint: `It arrives with their first mail; or introduce it: peerdial contacts key ${c.name} FINGERPRINT` });
      }
      c.trust = 'verified';
      c.verified = true;
    });
  }

  /** Changes what a contact may do; returns the new record. */
  async setCapabilities(email: string, change: (caps: Capabilities) => void): Promise<Contact> {
    return this.update(email, (c) => {
      const caps = capabilitiesOf(c);
      change(caps);
      for (const t of caps.forward) {
        if (!parseForwardTarget(t)) {
          throw new PeerdialError('USAGE', `"${t}" is not a forward target.`, { hint: 'Write HOST:PORT or HOST:LOW-HIGH, e.g. 127.0.0.1:22 (no HOST:*).' });
        }
      }
      if (!Number.isSafeInteger(caps.fileMaxBytes) || caps.fileMaxBytes < 0) throw new PeerdialError('USAGE', 'The file size limit must be a whole number of bytes.');
      c.capabilities = caps;
    });
  }
}

/** Records written before trust levels existed get one from what they say. */
function migrate(c: Contact): void {
  if (c.trust === undefined && c.fingerprint) {
    c.trust = c.verified ? 'verified' : c.keySource === 'manual' || c.keySource === 'vcard' ? 'introduced' : 'learned';
  }
  c.verified = c.trust === 'verified';
}
