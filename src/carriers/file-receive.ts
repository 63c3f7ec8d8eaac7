/**
 * The receiving side of a file transfer (protocol in file.ts): answers each
 * offer, writes into a partial file (resuming a kept one), checks size and
 * SHA-256, and saves the file under a name that overwrites nothing.
 */
import { createHash } from 'node:crypto';
import { rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { PeerdialError, isPeerdialError } from '../errors.js';
import type { Channel } from '../session/types.js';
import { PARTIAL_SUFFIX, checkFileName, decodeFrame, encodeControl, parseFileControl, type FileControl, type FileOffer } from './frames.js';
import { createPrivateFile, pathInside, resolveDownloadDir } from './download-dir.js';
import { inboxOf, type Inbox } from './channel-inbox.js';
import { ProgressMeter } from './progress.js';
import { closedError, fromPeer, nextFileControl, protocolError, tellPeer } from './file-protocol.js';
import { hashPrefix, placeWithoutOverwrite, resumable } from './file-partial.js';
import type { ReceiveFilesOptions, ReceivedFile } from './file-types.js';

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

async function writeAll(fd: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fd.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
