/**
 * Opening the config and an account. Light on purpose: the CLI loads this
 * for every command, so OpenPGP and the mail clients (through Account) are
 * loaded only by `openAccount`, and `openAddressBook` reads the contacts
 * without them.
 */
import { promises as fs } from 'node:fs';
import { loadConfig, pickAccount, type AccountConfig, type Config } from '../config/config.js';
import { accountStateDir, defaultConfigPath, identityFile } from '../store/paths.js';
import { ContactStore } from '../store/contacts.js';
import { PeerdialError } from '../errors.js';
import type { Account, Clock } from '../agent/account.js';

export interface AccountRef {
  /** Config file; default: $PEERDIAL_CONFIG or the XDG config dir. */
  config?: string;
  /** Which account (e-mail address); default: the config's default or only one. */
  account?: string;
  clock?: Clock;
}

export async function openConfig(ref: AccountRef): Promise<Config> {
  return loadConfig(defaultConfigPath(ref.config));
}

export async function openAccount(ref: AccountRef): Promise<Account> {
  const cfg = await openConfig(ref);
  const { Account } = await import('../agent/account.js');
  return Account.open(cfg, { ...(ref.account ? { email: ref.account } : {}), ...(ref.clock ? { clock: ref.clock } : {}) });
}

/** An account's address book, for reading it: the identity key must exist (as for openAccount) but is not parsed. */
export interface AddressBook {
  config: Config;
  account: AccountConfig;
  email: string;
  stateDir: string;
  contacts: ContactStore;
}

export async function openAddressBook(ref: AccountRef): Promise<AddressBook> {
  const config = await openConfig(ref);
  const account = pickAccount(config, ref.account);
  const stateDir = accountStateDir(config.stateDir, account.email);
  const file = identityFile(stateDir);
  try {
    await fs.access(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // the same error as Account.open's
    throw new PeerdialError('KEY_MISSING', `No identity key for ${account.email} (${file}).`, { hint: `Run: peerdial init --email ${account.email}` });
  }
  return { config, account, email: account.email, stateDir, contacts: new ContactStore(stateDir) };
}
