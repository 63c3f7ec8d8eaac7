/** Where peerdial keeps its files (XDG base directories, overridable). */
import os from 'node:os';
import path from 'node:path';

export function configHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
}

export function stateHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
}

/** The config file: --config, then $PEERDIAL_CONFIG, then $XDG_CONFIG_HOME/peerdial/config.toml. */
export function defaultConfigPath(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit) return path.resolve(explicit);
  if (env.PEERDIAL_CONFIG) return path.resolve(env.PEERDIAL_CONFIG);
  return path.join(configHome(env), 'peerdial', 'config.toml');
}

export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(stateHome(env), 'peerdial');
}

/** Per-account state lives in its own folder, named after the address. */
export function accountStateDir(stateDir: string, email: string): string {
  return path.join(stateDir, 'accounts', email.toLowerCase().replace(/[^a-z0-9@._+-]/g, '_'));
}

export function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

/** The account's identity key (armored OpenPGP private key). */
export function identityFile(accountStateDir: string): string {
  return path.join(accountStateDir, 'identity.asc');
}
