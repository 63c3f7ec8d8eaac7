/**
 * Where what a peer sends lands: inside `download_dir` and nowhere else.
 *
 * - Names are never made from what a peer sends but from the call id (a
 *   random id, checked by the wire format and sanitised again here) and a
 *   time, or are a file name the peer offered that passed checkFileName (a
 *   plain name: no separator, no `..`, no control character).
 * - The directory is created 0700 and resolved with symlinks (realpath); the
 *   file is then created directly in the resolved directory with
 *   O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600, so a symlink planted in the
 *   directory is never followed and an existing file is never replaced.
 *   The mode is set again on the open file, whatever the umask.
 */
import { constants, promises as fs, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { PeerdialError } from '../errors.js';
import { PARTIAL_SUFFIX, checkFileName } from './frames.js';

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Creates `dir` (0700 for every level it makes) and returns its real path. */
export async function resolveDownloadDir(dir: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const real = await fs.realpath(dir);
  const st = await fs.stat(real);
  if (!st.isDirectory()) {
    throw new PeerdialError('TRANSFER_FAILED', `${dir} is not a directory`, { hint: 'Set download_dir in the config to a directory.' });
  }
  return real;
}

/**
 * The path of a plain `name` directly inside the resolved directory
 * `realDir` (our partial files' suffixes allowed); throws when it would be
 * anywhere else.
 */
export function pathInside(realDir: string, name: string): string {
  const bad = checkFileName(name.replace(new RegExp(`${PARTIAL_SUFFIX.replace('.', '\\.')}(\\.json)?$`), ''));
  if (bad !== undefined) throw new PeerdialError('TRANSFER_FAILED', `refusing to name a file ${JSON.stringify(name.slice(0, 80))}: ${bad}`);
  const full = path.resolve(realDir, name);
  if (path.dirname(full) !== realDir) throw new PeerdialError('TRANSFER_FAILED', `refusing to write ${JSON.stringify(name.slice(0, 80))} outside ${realDir}`);
  return full;
}

/** Opens a new private file `name` in `realDir`: never follows a symlink, never replaces a file. */
export async function createPrivateFile(realDir: string, name: string, flags = CREATE): Promise<FileHandle> {
  const fh = await fs.open(pathInside(realDir, name), flags, PRIVATE_FILE_MODE);
  try {
    await fh.chmod(PRIVATE_FILE_MODE);
    return fh;
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Opens an existing regular file `name` in `realDir` (never through a symlink), or undefined when there is none. */
export async function openExistingPrivate(realDir: string, name: string, flags: number): Promise<{ fh: FileHandle; stat: Stats } | undefined> {
  let fh: FileHandle;
  try {
    fh = await fs.open(pathInside(realDir, name), flags | constants.O_NOFOLLOW);
  } catch {
    return undefined; // missing, a symlink (ELOOP) or unreadable: not ours to use
  }
  const stat = await fh.stat();
  if (!stat.isFile()) {
    await fh.close();
    return undefined;
  }
  await fh.chmod(PRIVATE_FILE_MODE);
  return { fh, stat };
}

/** A call id as a file name part: URL-safe characters only, at most 64 of them. */
export function safeIdPart(id: string): string {
  const s = id.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 64);
  return s === '' ? 'call' : s;
}

/**
 * A new private file for something a call brings (a pipe's bytes, a
 * recording), named `PREFIX-CALLID-TIME[-N]EXT` inside download_dir.
 */
export async function createReceivedFile(
  dir: string,
  prefix: 'pipe' | 'call',
  callId: string,
  ext: '.bin' | '.mkv',
  now: Date = new Date(),
): Promise<{ path: string; fh: FileHandle }> {
  const real = await resolveDownloadDir(dir);
  const stem = `${prefix}-${safeIdPart(callId)}-${now.toISOString().replace(/[:.]/g, '-')}`;
  for (let n = 0; n < 100; n++) {
    const name = `${stem}${n === 0 ? '' : `-${n}`}${ext}`;
    try {
      return { path: path.join(real, name), fh: await createPrivateFile(real, name) };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ELOOP') throw err;
    }
  }
  throw new PeerdialError('TRANSFER_FAILED', `too many files called ${stem}* in ${real}`, { hint: 'Tidy up the download directory.' });
}
