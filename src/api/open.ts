import { loadConfig, type Config } from '../config/config.js';
import { defaultConfigPath } from '../store/paths.js';
import { Account, type Clock } from '../agent/account.js';

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
  return Account.open(cfg, { ...(ref.account ? { email: ref.account } : {}), ...(ref.clock ? { clock: ref.clock } : {}) });
}
