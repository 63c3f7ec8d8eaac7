/**
 * Small file helpers for the store: every write is atomic (write a
 * temporary file, fsync, rename) and private (0600), so a crash never
 * leaves a half-written contact list, ledger or outbox entry behind.
 *
 * Two processes of one account (the agent and a command beside it, or two
 * commands) may touch the same store: every read-modify-write runs under a
 * StoreLock, a lock directory beside the file (proper-lockfile: mkdir is
 * atomic, the holder refreshes its mtime, and a lock whose mtime is older
 * than LOCK_STALE_MS, left by a process that was killed, is taken over),
 * and re-reads the file under it before changing it.
 */
import { promises as fs } from 'node:fs';
// Imported statically on purpose, though a command that only reads needs no lock: proper-lockfile
// loads signal-exit, whose SIGTERM/SIGINT listener re-raises the signal when it finds itself the
// only listener. Loaded after a command's own process.once('SIGTERM') (the agent's, a ringing
// call's), it runs last and kills the process before that command's clean stop (measured: the
// agent exited by signal instead of 0, a cancelled call was never logged).
import lockfile from 'proper-lockfile';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { PeerdialError } from '../errors.js';

export async function ensurePrivateDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
}

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await ensurePrivateDir(path.dirname(file));
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await fs.open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

/** Reads a JSON file; `fallback` when it does not exist; STORE_CORRUPT when it cannot be parsed. */
export async function readJson<T>(file: string, fallback: T): Promise<T> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new PeerdialError('STORE_CORRUPT', `${file} is not valid JSON`, {
      hint: `Move the file aside (it is kept for you) and run the command again.`,
      cause: err,
    });
  }
}

/** Every `*.json` record in a folder, in name order; none when the folder does not exist yet. */
export async function readJsonDir<T>(dir: string): Promise<T[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: T[] = [];
  for (const n of names.filter((x) => x.endsWith('.json')).sort()) {
    const v = await readJson<T | null>(path.join(dir, n), null);
    if (v) out.push(v);
  }
  return out;
}

/** A lock not refreshed for this long belongs to a dead process and is taken over. */
export const LOCK_STALE_MS = 10_000;
/** How long a writer waits for a live holder before it gives up (STORE_LOCKED). */
export const LOCK_WAIT_MS = 60_000;

/** Stable identity of a file's current content: every atomic write is a new inode. */
export async function fileStamp(file: string): Promise<string | undefined> {
  try {
    const s = await fs.stat(file, { bigint: true });
    return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Takes the cross-process lock of `file` (the directory `FILE.lock`; the file
 * itself need not exist) and resolves to its release. While a live process
 * holds it, waits: up to `giveUpAfterMs` and then resolves to undefined
 * (0: do not wait), or, without it, up to LOCK_WAIT_MS and then throws
 * STORE_LOCKED. A lock of a dead process is taken over once stale.
 */
export async function lockFile(file: string, opts: { giveUpAfterMs?: number } = {}): Promise<(() => Promise<void>) | undefined> {
  await ensurePrivateDir(path.dirname(file));
  const limit = opts.giveUpAfterMs ?? LOCK_WAIT_MS;
  const started = Date.now();
  for (;;) {
    try {
      return await lockfile.lock(file, {
        realpath: false,
        stale: LOCK_STALE_MS,
        // a holder whose refresh came too late (a blocked event loop) keeps going:
        // its writes are still atomic renames, and the lock is already someone else's
        onCompromised: () => undefined,
        retries: limit > 0 ? { retries: 40, factor: 1.3, minTimeout: 2, maxTimeout: 250, randomize: true } : 0,
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
      if (Date.now() - started < limit) continue;
      if (opts.giveUpAfterMs !== undefined) return undefined;
      throw new PeerdialError('STORE_LOCKED', `${file} stayed locked by another peerdial process for ${Math.round(LOCK_WAIT_MS / 1000)} s.`, {
        hint: `Another peerdial process of this account is stuck; stop it (peerdial status shows the agent's pid). A lock left by a killed process is taken over after ${LOCK_STALE_MS / 1000} s.`,
        cause: err,
      });
    }
  }
}

/**
 * Serialises read-modify-write cycles on one store file: within this process
 * (a queue) and between processes (lockFile). `fn` must re-read the file.
 */
export class StoreLock {
  private readonly local = new Mutex();

  constructor(readonly file: string) {}

  run<T>(fn: () => Promise<T>): Promise<T> {
    return this.local.run(async () => {
      const release = (await lockFile(this.file))!;
      try {
        return await fn();
      } finally {
        await release().catch(() => undefined);
      }
    });
  }
}

/** Serialises async read-modify-write cycles on one store within a process. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
