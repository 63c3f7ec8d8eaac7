/**
 * The receiver's partial files: resuming one kept from an interrupted
 * transfer, and placing a finished one in the download directory without
 * overwriting anything there.
 */
import type { Hash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { copyFile, link, rm, type FileHandle } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { PeerdialError } from '../errors.js';
import type { FileOffer } from './frames.js';
import { openExistingPrivate } from './download-dir.js';
import { abortError } from './channel-inbox.js';

/**
 * A kept partial file that may be resumed from, opened for writing: only when
 * its sidecar names the same file, and neither is a symlink.
 */
export async function resumable(dir: string, partialName: string, sidecarName: string, offer: FileOffer): Promise<{ fh: FileHandle; offset: number } | undefined> {
  const side = await openExistingPrivate(dir, sidecarName, fsConstants.O_RDONLY);
  if (!side) return undefined;
  let meta: unknown;
  try {
    if (side.stat.size > 4096) return undefined;
    meta = JSON.parse(await side.fh.readFile('utf8'));
  } catch {
    return undefined;
  } finally {
    await side.fh.close();
  }
  if (typeof meta !== 'object' || meta === null) return undefined;
  const m = meta as Record<string, unknown>;
  if (m.sha256 !== offer.sha256 || m.size !== offer.size) return undefined;
  const part = await openExistingPrivate(dir, partialName, fsConstants.O_RDWR);
  if (!part) return undefined;
  if (part.stat.size === 0 || part.stat.size > offer.size) {
    await part.fh.close();
    return undefined;
  }
  return { fh: part.fh, offset: part.stat.size };
}

/** Moves the finished partial to `dir`, under `name` or the first free `name (n)`; never replaces a file. */
export async function placeWithoutOverwrite(partial: string, dir: string, name: string): Promise<string> {
  const ext = extname(name);
  const stem = name.slice(0, name.length - ext.length);
  for (let n = 0; n < 10_000; n++) {
    const candidate = n === 0 ? name : `${stem} (${n})${ext}`;
    const target = join(dir, candidate);
    try {
      // link() and COPYFILE_EXCL fail if the target exists: no window for a race.
      try {
        await link(partial, target);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw err;
        await copyFile(partial, target, fsConstants.COPYFILE_EXCL);
      }
      await rm(partial, { force: true });
      return candidate;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new PeerdialError('TRANSFER_FAILED', `cannot save ${name} in ${dir}: ${(err as Error).message}`, { cause: err });
      }
    }
  }
  throw new PeerdialError('TRANSFER_FAILED', `too many files called ${name} in ${dir}`, { hint: 'Tidy up the download directory.' });
}

/** Hashes the first `length` bytes of an open file (the kept part of a partial). */
export async function hashPrefix(fd: FileHandle, length: number, hash: Hash, signal: AbortSignal): Promise<void> {
  const buf = Buffer.alloc(Math.min(length, 1024 * 1024));
  for (let pos = 0; pos < length; ) {
    if (signal.aborted) throw abortError(signal);
    const { bytesRead } = await fd.read(buf, 0, Math.min(buf.length, length - pos), pos);
    if (bytesRead === 0) throw new PeerdialError('TRANSFER_FAILED', 'the kept partial file shrank while it was read');
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
}
