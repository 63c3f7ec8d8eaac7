/**
 * File transfer over a channel, with resume and integrity check.
 *
 *   sender                         receiver
 *   OFFER {name, size, sha256}  ->
 *                               <- ACCEPT {offset}   (bytes of a kept partial file)
 *                                  or REJECT {reason}
 *   DATA ... (from offset)      ->
 *   DONE                        ->
 *                               <- OK {savedAs}      (SHA-256 matched, file renamed)
 *                                  or FAIL {reason}  (INTEGRITY_FAILED)
 *   ... next OFFER ...
 *   END                         ->
 *
 * The receiver writes into `NAME.peerdial-part` next to a sidecar
 * `NAME.peerdial-part.json` holding the expected size and SHA-256. If the
 * channel closes mid-file both stay; the next offer of the same file (same
 * size and SHA-256) resumes after the bytes already there. An existing file
 * is never overwritten: the file is saved as `NAME (1).ext`, `NAME (2).ext`, ...
 *
 * The channel is not closed here: whoever opened it closes it.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { constants as fsConstants } from 'node:fs';
import { copyFile, link, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { PeerdialError, isPeerdialError } from '../errors.js';
import type { Channel } from '../session/types.js';
import {
  PARTIAL_SUFFIX,
  checkFileName,
  decodeFrame,
  encodeControl,
  encodeData,
  encodeError,
  maxDataPayload,
  parseFileControl,
  type FileControl,
  type FileOffer,
} from './frames.js';
import { createPrivateFile, openExistingPrivate, pathInside, resolveDownloadDir } from './download-dir.js';
import { abortError, inboxOf, type Inbox } from './channel-inbox.js';
import { ProgressMeter } from './progress.js';
import { readChunk } from './streams.js';

export interface FileProgress {
  /** The file's name as offered (no directory). */
  file: string;
  /** Bytes of the file present at the receiver so far, resumed bytes included. */
  bytes: number;
  total: number;
  /** Bytes per second. */
  rate: number;
  etaSeconds: number | undefined;
}

interface CommonOptions {
  signal?: AbortSignal;
  onProgress?: (progress: FileProgress) => void;
  /** Clock for rates, in ms. Default performance.now. */
  now?: () => number;
}

export type SendFilesOptions = CommonOptions;

export interface SentFile {
  /** The path given to sendFiles. */
  path: string;
  /** The name offered to the peer. */
  name: string;
  size: number;
  sha256: string;
  status: 'sent' | 'rejected';
  /** Name the receiver saved the file under (may differ from `name`). */
  savedAs?: string;
  /** Why the receiver rejected the offer. */
  reason?: string;
  /** Bytes the receiver already had from an earlier, interrupted transfer. */
  resumedFrom: number;
  /** Payload bytes sent in this transfer. */
  bytesSent: number;
}

export interface ReceiveFilesOptions extends CommonOptions {
  /** Where received files are saved. */
  dir: string;
  /** Where partial files and their sidecars live. Default: `dir`. */
  partialDir?: string;
  /** Decide on an offer whose name is acceptable; false rejects it. Default: accept. */
  accept?: (offer: { name: string; size: number; sha256: string }) => boolean | Promise<boolean>;
}

export interface ReceivedFile {
  /** The name the sender offered. */
  name: string;
  size: number;
  sha256: string;
  status: 'saved' | 'rejected';
  /** Full path of the saved file. */
  path?: string;
  /** Name the file was saved under. */
  savedAs?: string;
  /** True when a file called `name` existed, so the file was saved under another name. */
  renamed: boolean;
  reason?: string;
  resumedFrom: number;
  bytesReceived: number;
}

// ---------------------------------------------------------------------------
// Sender

export async function sendFiles(channel: Channel, paths: readonly string[], opts: SendFilesOptions = {}): Promise<SentFile[]> {
  const inbox = inboxOf(channel);
  const signal = opts.signal ?? new AbortController().signal;
  const chunkSize = maxDataPayload(channel.maxMessageSize);
  // Check every path before anything goes out.
  const files: Array<{ path: string; name: string; size: number }> = [];
  for (const path of paths) {
    const st = await stat(path).catch((err: unknown) => {
      throw new PeerdialError('USAGE', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
    });
    if (!st.isFile()) throw new PeerdialError('USAGE', `${path} is not a regular file`);
    const name = basename(path);
    const bad = checkFileName(name);
    if (bad !== undefined) throw new PeerdialError('USAGE', `cannot send ${path}: ${bad}`, { hint: 'Rename the file first.' });
    files.push({ path, name, size: st.size });
  }

  const results: SentFile[] = [];
  try {
    for (const file of files) {
      results.push(await sendOne(channel, inbox, file, chunkSize, signal, opts));
    }
    await channel.send(encodeControl({ t: 'end' }));
    return results;
  } catch (err) {
    throw tellPeer(channel, err, signal);
  }
}

async function sendOne(
  channel: Channel,
  inbox: Inbox,
  file: { path: string; name: string; size: number },
  chunkSize: number,
  signal: AbortSignal,
  opts: CommonOptions,
): Promise<SentFile> {
  const sha256 = await hashFile(file.path, signal);
  const base = { path: file.path, name: file.name, size: file.size, sha256 };
  await channel.send(encodeControl({ t: 'offer', name: file.name, size: file.size, sha256 } satisfies FileOffer));

  const answer = await nextFileControl(inbox, signal, ['accept', 'reject']);
  if (answer.t === 'reject') return { ...base, status: 'rejected', reason: answer.reason, resumedFrom: 0, bytesSent: 0 };
  if (answer.t !== 'accept') throw protocolError(answer.t);
  const offset = answer.offset;
  if (offset > file.size) throw new PeerdialError('TRANSFER_FAILED', `the peer asked to resume ${file.name} beyond its end`);

  const meter = new ProgressMeter({ now: opts.now ?? (() => performance.now()), total: file.size });
  const report = (bytes: number, force = false): void => {
    const s = opts.onProgress && meter.report(bytes, force);
    if (s) opts.onProgress?.({ file: file.name, bytes, total: file.size, rate: s.rate, etaSeconds: s.etaSeconds });
  };
  report(offset, true);

  let bytesSent = 0;
  if (offset < file.size) {
    const input = createReadStream(file.path, { start: offset, highWaterMark: Math.max(chunkSize, 64 * 1024) });
    input.on('error', () => undefined);
    try {
      for (;;) {
        const chunk = await readChunk(input, signal);
        if (chunk === null) break;
        for (let off = 0; off < chunk.length; off += chunkSize) {
          const early = inbox.poll();
          if (early !== undefined) throw unexpectedMidFile(early);
          const part = chunk.subarray(off, off + chunkSize);
          await channel.send(encodeData(part));
          bytesSent += part.length;
          report(offset + bytesSent);
        }
      }
    } finally {
      input.destroy();
    }
  }
  if (offset + bytesSent !== file.size) {
    throw new PeerdialError('TRANSFER_FAILED', `${file.path} changed size while it was being sent`, { hint: 'Send it again once it is no longer being written.' });
  }
  report(file.size, true);
  await channel.send(encodeControl({ t: 'done' }));

  const verdict = await nextFileControl(inbox, signal, ['ok', 'fail']);
  if (verdict.t === 'fail') {
    throw fromPeer(new PeerdialError('INTEGRITY_FAILED', `the peer received ${file.name} damaged: ${verdict.reason}`, { hint: 'Send the file again.' }));
  }
  if (verdict.t !== 'ok') throw protocolError(verdict.t);
  return { ...base, status: 'sent', savedAs: verdict.savedAs, resumedFrom: offset, bytesSent };
}

// ---------------------------------------------------------------------------
// Receiver

export async function receiveFiles(channel: Channel, opts: ReceiveFilesOptions): Promise<ReceivedFile[]> {
  const inbox = inboxOf(channel);
  const signal = opts.signal ?? new AbortController().signal;
  // Both directories are made 0700 and resolved once; every file is created
  // directly inside them (download-dir.ts), never through a symlink.
  const dir = await resolveDownloadDir(opts.dir);
  const partialDir = opts.partialDir === undefined ? dir : await resolveDownloadDir(opts.partialDir);
  const results: ReceivedFile[] = [];
  try {
    for (;;) {
      let message: FileControl;
      try {
        message = await nextFileControl(inbox, signal, ['offer', 'end']);
      } catch (err) {
        // Closed between two files: every file so far arrived whole (each was
        // checked). The sender's 'end' and its hang-up travel on different
        // channels and may cross, so this is the end, not a failed transfer.
        if (results.length > 0 && isPeerdialError(err, 'SESSION_CLOSED')) return results;
        throw err;
      }
      if (message.t === 'end') return results;
      if (message.t !== 'offer') throw protocolError(message.t);
      results.push(await receiveOne(channel, inbox, message, dir, partialDir, signal, opts));
    }
  } catch (err) {
    throw tellPeer(channel, err, signal);
  }
}

async function receiveOne(
  channel: Channel,
  inbox: Inbox,
  offer: FileOffer,
  dir: string,
  partialDir: string,
  signal: AbortSignal,
  opts: ReceiveFilesOptions,
): Promise<ReceivedFile> {
  const base = { name: offer.name, size: offer.size, sha256: offer.sha256, renamed: false, resumedFrom: 0, bytesReceived: 0 };
  const refuse = async (reason: string): Promise<ReceivedFile> => {
    await channel.send(encodeControl({ t: 'reject', reason }));
    return { ...base, status: 'rejected', reason };
  };
  const bad = checkFileName(offer.name);
  if (bad !== undefined) return refuse(`unsafe file name: ${bad}`);
  if (opts.accept !== undefined && !(await opts.accept({ name: offer.name, size: offer.size, sha256: offer.sha256 }))) {
    return refuse('declined by the receiver');
  }

  const partialName = offer.name + PARTIAL_SUFFIX;
  const sidecarName = `${partialName}.json`;
  const partial = pathInside(partialDir, partialName);
  const sidecar = pathInside(partialDir, sidecarName);
  const hash = createHash('sha256');
  const kept = await resumable(partialDir, partialName, sidecarName, offer);
  let fd: FileHandle;
  let offset = 0;
  if (kept) {
    fd = kept.fh;
    offset = kept.offset;
    try {
      await hashPrefix(fd, offset, hash, signal);
    } catch (err) {
      await fd.close();
      throw err;
    }
  } else {
    // Whatever stands under these names (an old partial, a planted symlink) goes; ours are made new.
    await rm(partial, { force: true });
    await rm(sidecar, { force: true });
    fd = await createPrivateFile(partialDir, partialName);
  }
  let received = 0;
  try {
    await rm(sidecar, { force: true });
    const meta = await createPrivateFile(partialDir, sidecarName);
    try {
      await meta.writeFile(JSON.stringify({ name: offer.name, size: offer.size, sha256: offer.sha256 }) + '\n');
    } finally {
      await meta.close();
    }
    if (offset > 0) await fd.truncate(offset);
    await channel.send(encodeControl({ t: 'accept', offset }));

    const meter = new ProgressMeter({ now: opts.now ?? (() => performance.now()), total: offer.size });
    const report = (bytes: number, force = false): void => {
      const s = opts.onProgress && meter.report(bytes, force);
      if (s) opts.onProgress?.({ file: offer.name, bytes, total: offer.size, rate: s.rate, etaSeconds: s.etaSeconds });
    };
    report(offset, true);

    for (;;) {
      const raw = await inbox.next(signal);
      if (raw === null) throw closedError(`the connection closed during ${offer.name}; ${offset + received} of ${offer.size} bytes are kept for resuming`);
      const frame = decodeFrame(raw);
      if (frame.type === 'data') {
        if (offset + received + frame.payload.length > offer.size) {
          throw new PeerdialError('TRANSFER_FAILED', `the peer sent more than the ${offer.size} bytes it offered for ${offer.name}`);
        }
        await writeAll(fd, frame.payload, offset + received);
        hash.update(frame.payload);
        received += frame.payload.length;
        report(offset + received);
        continue;
      }
      if (frame.type === 'error') throw fromPeer(new PeerdialError('TRANSFER_FAILED', `the peer stopped sending ${offer.name}: ${frame.message}`));
      if (frame.type !== 'control') throw protocolError(frame.type === 'invalid' ? frame.reason : frame.type);
      const control = parseFileControl(frame.body);
      if ('type' in control) throw protocolError(control.reason);
      if (control.t !== 'done') throw protocolError(control.t);
      break;
    }
    await fd.datasync();
    report(offset + received, true);
  } finally {
    await fd.close();
  }

  const digest = hash.digest('hex');
  if (offset + received !== offer.size || digest !== offer.sha256) {
    // A damaged partial must not be resumed from.
    await rm(partial, { force: true });
    await rm(sidecar, { force: true });
    const reason =
      offset + received !== offer.size
        ? `received ${offset + received} of ${offer.size} bytes`
        : `SHA-256 mismatch (expected ${offer.sha256}, got ${digest})`;
    await channel.send(encodeControl({ t: 'fail', reason }));
    throw fromPeer(new PeerdialError('INTEGRITY_FAILED', `${offer.name} arrived damaged: ${reason}`, { hint: 'Ask the sender to send it again.' }));
  }

  const savedAs = await placeWithoutOverwrite(partial, dir, offer.name);
  await rm(sidecar, { force: true });
  await channel.send(encodeControl({ t: 'ok', savedAs }));
  return {
    ...base,
    status: 'saved',
    path: join(dir, savedAs),
    savedAs,
    renamed: savedAs !== offer.name,
    resumedFrom: offset,
    bytesReceived: received,
  };
}

/**
 * A kept partial file that may be resumed from, opened for writing: only when
 * its sidecar names the same file, and neither is a symlink.
 */
async function resumable(dir: string, partialName: string, sidecarName: string, offer: FileOffer): Promise<{ fh: FileHandle; offset: number } | undefined> {
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
async function placeWithoutOverwrite(partial: string, dir: string, name: string): Promise<string> {
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

// ---------------------------------------------------------------------------
// Helpers

async function hashFile(path: string, signal: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  const input = createReadStream(path, { highWaterMark: 1024 * 1024 });
  input.on('error', () => undefined);
  try {
    for (;;) {
      const chunk = await readChunk(input, signal);
      if (chunk === null) return hash.digest('hex');
      hash.update(chunk);
    }
  } finally {
    input.destroy();
  }
}

/** Hashes the first `length` bytes of an open file (the kept part of a partial). */
async function hashPrefix(fd: FileHandle, length: number, hash: Hash, signal: AbortSignal): Promise<void> {
  const buf = Buffer.alloc(Math.min(length, 1024 * 1024));
  for (let pos = 0; pos < length; ) {
    if (signal.aborted) throw abortError(signal);
    const { bytesRead } = await fd.read(buf, 0, Math.min(buf.length, length - pos), pos);
    if (bytesRead === 0) throw new PeerdialError('TRANSFER_FAILED', 'the kept partial file shrank while it was read');
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
}

async function writeAll(fd: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fd.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/** The next file control message of one of the `expected` kinds; anything else is an error. */
async function nextFileControl(inbox: Inbox, signal: AbortSignal, expected: ReadonlyArray<FileControl['t']>): Promise<FileControl> {
  const raw = await inbox.next(signal);
  if (raw === null) throw closedError('the connection closed during the file transfer');
  const frame = decodeFrame(raw);
  if (frame.type === 'error') throw fromPeer(new PeerdialError('TRANSFER_FAILED', `the peer stopped the transfer: ${frame.message}`));
  if (frame.type !== 'control') throw protocolError(frame.type === 'invalid' ? frame.reason : `${frame.type} frame`);
  const control = parseFileControl(frame.body);
  if ('type' in control) throw protocolError(control.reason);
  if (!expected.includes(control.t)) throw protocolError(`'${control.t}' where ${expected.join(' or ')} was expected`);
  return control;
}

function unexpectedMidFile(raw: Buffer | string | null): PeerdialError {
  if (raw === null) return closedError('the connection closed while sending');
  const frame = decodeFrame(raw);
  if (frame.type === 'error') return fromPeer(new PeerdialError('TRANSFER_FAILED', `the peer stopped the transfer: ${frame.message}`));
  return protocolError(frame.type === 'control' ? `'${frame.body.t}' while sending` : 'unexpected frame while sending');
}

function protocolError(what: string): PeerdialError {
  return new PeerdialError('TRANSFER_FAILED', `file transfer protocol error: ${what}`, { hint: 'Both sides should run the same peerdial version.' });
}

function closedError(message: string): PeerdialError {
  return fromPeer(new PeerdialError('SESSION_CLOSED', message, { hint: 'Send again to resume where it stopped.' }));
}

/** Errors the peer already knows about (it caused them, or the channel is gone). */
const peerKnows = new WeakSet<object>();
function fromPeer(err: PeerdialError): PeerdialError {
  peerKnows.add(err);
  return err;
}

/** Best-effort ERROR frame so the peer does not wait forever; returns the error to throw. */
function tellPeer(channel: Channel, err: unknown, signal: AbortSignal): PeerdialError {
  let error: PeerdialError;
  if (isPeerdialError(err)) error = err;
  else if (signal.aborted) error = abortError(signal);
  else error = new PeerdialError('TRANSFER_FAILED', `file transfer failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  if (!peerKnows.has(error) && channel.isOpen) channel.send(encodeError(error.message)).catch(() => undefined);
  return error;
}
