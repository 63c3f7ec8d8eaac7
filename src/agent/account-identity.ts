/**
 * An account's identity key: read from its file, or made (and written)
 * when the caller is creating the account (`peerdial init`).
 */
import { promises as fs } from 'node:fs';
import { PeerdialError } from '../errors.js';
import { writeFileAtomic } from '../store/files.js';
import { generateIdentity, loadIdentity, type Identity } from '../wire/identity.js';

export async function openIdentity(file: string, account: { email: string; name?: string }, create: boolean): Promise<Identity> {
  try {
    return await loadIdentity(await fs.readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (!create) {
      throw new PeerdialError('KEY_MISSING', `No identity key for ${account.email} (${file}).`, {
        hint: `Run: peerdial init --email ${account.email}`,
      });
    }
    const identity = await generateIdentity(account.email, account.name);
    await writeFileAtomic(file, identity.armoredPrivateKey);
    return identity;
  }
}
