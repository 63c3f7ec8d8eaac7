/**
 * `peerdial login`: the one-time OAuth2 device-code login for an account
 * whose servers use oauth2_provider. Stores the refresh token (0600) in
 * the account's state dir; later runs redeem it for access tokens.
 */
import { PeerdialError } from '../errors.js';
import { loadConfig, pickAccount } from '../config/config.js';
import { accountStateDir, defaultConfigPath } from '../store/paths.js';
import { TokenProvider, tokenKey, type DevicePrompt, type Fetch } from '../mail/oauth2.js';

export interface LoginOptions {
  config?: string;
  account?: string;
  onPrompt: (p: DevicePrompt & { servers: string[] }) => void;
  fetch?: Fetch;
  maxPolls?: number;
}

export interface LoginResult {
  email: string;
  tokenFile: string;
  logins: { servers: string[]; user: string; scope?: string; expiresAt: string }[];
}

export async function login(opts: LoginOptions): Promise<LoginResult> {
  const cfg = await loadConfig(defaultConfigPath(opts.config));
  const acc = pickAccount(cfg, opts.account);
  const tokens = new TokenProvider(accountStateDir(cfg.stateDir, acc.email), opts.fetch ? { fetch: opts.fetch } : {});
  // IMAP and SMTP usually share one login: one device flow per distinct login
  const groups = new Map<string, { server: typeof acc.imap; names: string[] }>();
  for (const [name, server] of [['IMAP', acc.imap], ['SMTP', acc.smtp]] as const) {
    if (server.auth !== 'oauth2' || !server.oauth2?.provider) continue;
    const key = tokenKey(server);
    const g = groups.get(key);
    if (g) g.names.push(name);
    else groups.set(key, { server, names: [name] });
  }
  if (!groups.size) {
    throw new PeerdialError('USAGE', `${acc.email} has no server with auth = "oauth2" and oauth2_provider in ${cfg.file}.`, {
      hint: 'Set auth = "oauth2", oauth2_provider and oauth2_client_id under [accounts.imap] / [accounts.smtp] (README, "Accounts that need OAuth2"). With token_command no login is needed.',
    });
  }
  const result: LoginResult = { email: acc.email, tokenFile: tokens.store.file, logins: [] };
  for (const { server, names } of groups.values()) {
    const t = await tokens.login(server, {
      onPrompt: (p) => opts.onPrompt({ ...p, servers: names }),
      ...(opts.maxPolls ? { maxPolls: opts.maxPolls } : {}),
    });
    result.logins.push({ servers: names, user: server.user, ...(t.scope ? { scope: t.scope } : {}), expiresAt: new Date(t.expiresAt).toISOString() });
  }
  return result;
}
