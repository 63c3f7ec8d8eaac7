/**
 * The sending side of a file transfer (protocol in file.ts): checks every
 * path first, then offers each file, sends it from where the receiver asks
 * to resume, and waits for the receiver's verdict.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { PeerdialError } from '../errors.js';
import type { Channel } from '../session/types.js';
import { checkFileName, encodeControl, encodeData, maxDataPayload, type FileOffer } from './frames.js';
import { inboxOf, type Inbox } from './channel-inbox.js';
import { ProgressMeter } from './progress.js';
import { readChunk } from './streams.js';
import { fromPeer, nextFileControl, protocolError, tellPeer, unexpectedMidFile } from './file-protocol.js';
import type { CommonOptions, SendFilesOptions, SentFile } from './file-types.js';

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
