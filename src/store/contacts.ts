/**
 * The address book: who may call, their pinned keys, aliases and short
 * numbers, policy and last known presence. One JSON file, written
 * atomically.
 */
import path from 'node:path';
import { PeerdialError } from '../errors.js';
import type { AddressEntry } from '../wire/message.js';
import { StoreLock, readJson, writeJsonAtomic } from './files.js';
import { checkMailAddress, normalMailAddress } from '../wire/address.js';

export type AnswerMode = 'auto-answer' | 'ring' | 'deny';

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
  fingerprint?: string;
  keySource?: 'autocrypt' | 'manual';
  /** Set by `contacts verify --confirm` after an out-of-band check. */
  verified: boolean;
  blocked: boolean;
  /** Per-contact answer policy; the account default applies when unset. */
  answer?: AnswerMode;
  /** Send this contact an announce whenever our address changes. */
  announce: boolean;
  presence?: Presence;
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
    return readJson<ContactsFile>(this.file, { version: 1, contacts: [] });
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
   * Pins a key learned from a verified mail. Refuses to replace a pinned key
   * with a different one: that is reported as a key mismatch elsewhere.
   */
  async pinKey(email: string, armored: string, fingerprint: string, source: 'autocrypt' | 'manual'): Promise<Contact> {
    return this.update(email, (c) => {
      if (c.fingerprint && c.fingerprint !== fingerprint) {
        throw new PeerdialError('KEY_MISSING', `Contact ${c.email} already has a different pinned key.`, {
          hint: `Check with them out of band; then run: peerdial contacts remove ${c.name} and add them again.`,
        });
      }
      c.publicKey = armored;
      c.fingerprint = fingerprint;
      c.keySource = source;
    });
  }
}
