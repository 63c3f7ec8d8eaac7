/**
 * OAuth2 refresh tokens, kept with the same care as the identity key: one
 * private file (0600, written atomically) in the account's state dir. Only
 * refresh tokens are stored; access tokens live in memory until they expire.
 */
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { StoreLock, readJson, writeJsonAtomic } from './files.js';

export interface StoredToken {
  refreshToken: string;
  /** Where it is redeemed (token endpoint) and for whom: shown by `peerdial login`. */
  tokenUrl: string;
  user: string;
  scope?: string;
  obtained: string;
}

interface TokenFile {
  v: 1;
  tokens: Record<string, StoredToken>;
}

export class TokenStore {
  readonly file: string;
  /** Across processes: the agent and a command may change this file at once. */
  private readonly mutex: StoreLock;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'oauth2-tokens.json');
    this.mutex = new StoreLock(this.file);
  }

  private async read(): Promise<TokenFile> {
    const f = await readJson<TokenFile>(this.file, { v: 1, tokens: {} });
    return f && typeof f.tokens === 'object' && f.tokens ? f : { v: 1, tokens: {} };
  }

  async get(key: string): Promise<StoredToken | undefined> {
    return (await this.read()).tokens[key];
  }

  async set(key: string, token: StoredToken): Promise<void> {
    await this.mutex.run(async () => {
      const f = await this.read();
      f.tokens[key] = token;
      await writeJsonAtomic(this.file, f);
      // writeFileAtomic creates 0600; make sure an older, wider file is narrowed too
      await fs.chmod(this.file, 0o600);
    });
  }

  async remove(key: string): Promise<void> {
    await this.mutex.run(async () => {
      const f = await this.read();
      if (!(key in f.tokens)) return;
      delete f.tokens[key];
      await writeJsonAtomic(this.file, f);
    });
  }
}
