import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { encodeControl, FRAME_TYPE } from '../../src/carriers/frames.js';
import { receiveFiles, sendFiles, type FileProgress } from '../../src/carriers/file.js';
import { channelPair } from '../harness/memory-channel.js';
import { isPeerdialError } from '../../src/errors.js';
import type { Channel } from '../../src/session/types.js';

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** A channel that passes every outgoing message through `edit` first. */
function tapped(inner: Channel, edit: (data: Uint8Array | string) => Uint8Array | string): Channel {
  return {
    get label() { return inner.label; },
    get protocol() { return inner.protocol; },
    get isOpen() { return inner.isOpen; },
    get maxMessageSize() { return inner.maxMessageSize; },
    send: (data) => inner.send(edit(data)),
    onMessage: (cb) => inner.onMessage(cb),
    onClose: (cb) => inner.onClose(cb),
    close: () => inner.close(),
  };
}

const isData = (d: Uint8Array | string): d is Uint8Array => typeof d !== 'string' && d[0] === FRAME_TYPE.DATA;

let root: string;
let outbox: string;
let downloads: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'peerdial-file-'));
  outbox = join(root, 'alice');
  downloads = join(root, 'bob');
  await writeFile(join(root, '.keep'), '');
  await Promise.all([mkdir(outbox), mkdir(downloads)]);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function aliceHas(name: string, data: Buffer): Promise<string> {
  const path = join(outbox, name);
  await writeFile(path, data);
  return path;
}

describe('file transfer', () => {
  it('alice sends bob two files; they arrive whole, with progress on both sides', async () => {
    const photo = randomBytes(3 * 1024 * 1024 + 17);
    const notes = Buffer.from('remember the milk\n');
    const paths = [await aliceHas('photo.jpg', photo), await aliceHas('notes.txt', notes)];
    const [a, b] = channelPair({ maxMessageSize: 64 * 1024 });
    const sendProgress: FileProgress[] = [];
    const receiveProgress: FileProgress[] = [];

    const [sent, received] = await Promise.all([
      sendFiles(a, paths, { onProgress: (p) => sendProgress.push(p) }),
      receiveFiles(b, { dir: downloads, onProgress: (p) => receiveProgress.push(p) }),
    ]);

    expect(sent.map((f) => [f.name, f.status, f.savedAs, f.bytesSent, f.resumedFrom])).toEqual([
      ['photo.jpg', 'sent', 'photo.jpg', photo.length, 0],
      ['notes.txt', 'sent', 'notes.txt', notes.length, 0],
    ]);
    expect(received.map((f) => [f.name, f.status, f.savedAs, f.renamed])).toEqual([
      ['photo.jpg', 'saved', 'photo.jpg', false],
      ['notes.txt', 'saved', 'notes.txt', false],
    ]);
    expect(sha256(await readFile(join(downloads, 'photo.jpg')))).toBe(sha256(photo));
    expect(await readFile(join(downloads, 'notes.txt'), 'utf8')).toBe('remember the milk\n');
    // No partials or sidecars are left behind.
    expect((await readdir(downloads)).sort()).toEqual(['notes.txt', 'photo.jpg']);
    expect(sendProgress.filter((p) => p.file === 'photo.jpg').at(-1)).toMatchObject({ bytes: photo.length, total: photo.length, etaSeconds: 0 });
    expect(receiveProgress.filter((p) => p.file === 'photo.jpg').at(-1)).toMatchObject({ bytes: photo.length, total: photo.length });
  });

  it('a chunk is damaged on the way: bob detects it, keeps nothing, and both sides fail with INTEGRITY_FAILED', async () => {
    const data = randomBytes(1024 * 1024);
    const path = await aliceHas('report.pdf', data);
    const [a, b] = channelPair({ maxMessageSize: 16 * 1024 });
    let dataFrames = 0;
    const corrupting = tapped(a, (d) => {
      if (isData(d) && ++dataFrames === 3) {
        const copy = Buffer.from(d);
        copy[100] = (copy[100] ?? 0) ^ 0xff;
        return copy;
      }
      return d;
    });

    const [sent, received] = await Promise.allSettled([sendFiles(corrupting, [path]), receiveFiles(b, { dir: downloads })]);

    expect(sent.status === 'rejected' && isPeerdialError(sent.reason, 'INTEGRITY_FAILED')).toBe(true);
    expect(received.status === 'rejected' && isPeerdialError(received.reason, 'INTEGRITY_FAILED')).toBe(true);
    expect(await readdir(downloads)).toEqual([]);
  });

  it('the connection drops mid-file; the next transfer resumes from the kept part and the file is whole', async () => {
    const data = randomBytes(4 * 1024 * 1024);
    const path = await aliceHas('movie.mkv', data);

    // First attempt: the link dies after about 1.5 MiB.
    const [a1, b1] = channelPair({ maxMessageSize: 64 * 1024 });
    let passed = 0;
    const dying = tapped(a1, (d) => {
      if (isData(d)) {
        passed += d.length - 1;
        if (passed > 1.5 * 1024 * 1024) setImmediate(() => a1.close());
      }
      return d;
    });
    const [first, firstReceive] = await Promise.allSettled([sendFiles(dying, [path]), receiveFiles(b1, { dir: downloads })]);
    expect(first.status === 'rejected' && isPeerdialError(first.reason, 'SESSION_CLOSED')).toBe(true);
    expect(firstReceive.status === 'rejected' && isPeerdialError(firstReceive.reason, 'SESSION_CLOSED')).toBe(true);
    expect((await readdir(downloads)).sort()).toEqual(['movie.mkv.peerdial-part', 'movie.mkv.peerdial-part.json']);

    // Second attempt over a fresh channel.
    const [a2, b2] = channelPair({ maxMessageSize: 64 * 1024 });
    const [sent, received] = await Promise.all([sendFiles(a2, [path]), receiveFiles(b2, { dir: downloads })]);

    expect(sent[0]!.resumedFrom).toBeGreaterThan(1024 * 1024);
    expect(sent[0]!.bytesSent).toBeLessThan(data.length);
    expect(sent[0]!.resumedFrom + sent[0]!.bytesSent).toBe(data.length);
    expect(received[0]).toMatchObject({ status: 'saved', savedAs: 'movie.mkv', resumedFrom: sent[0]!.resumedFrom });
    expect(sha256(await readFile(join(downloads, 'movie.mkv')))).toBe(sha256(data));
    expect(await readdir(downloads)).toEqual(['movie.mkv']);
  });

  it('a kept part of a different file with the same name is not resumed from', async () => {
    const data = randomBytes(200_000);
    const path = await aliceHas('draft.txt', data);
    await writeFile(join(downloads, 'draft.txt.peerdial-part'), randomBytes(50_000));
    await writeFile(join(downloads, 'draft.txt.peerdial-part.json'), JSON.stringify({ name: 'draft.txt', size: 200_000, sha256: '0'.repeat(64) }));
    const [a, b] = channelPair();

    const [sent] = await Promise.all([sendFiles(a, [path]), receiveFiles(b, { dir: downloads })]);

    expect(sent[0]).toMatchObject({ status: 'sent', resumedFrom: 0, bytesSent: 200_000 });
    expect(sha256(await readFile(join(downloads, 'draft.txt')))).toBe(sha256(data));
  });

  it('bob already has notes.txt: it is kept, the new one is saved as "notes (1).txt", then "notes (2).txt"', async () => {
    await writeFile(join(downloads, 'notes.txt'), 'bob’s own notes');
    const path = await aliceHas('notes.txt', Buffer.from('alice’s notes'));

    for (const expected of ['notes (1).txt', 'notes (2).txt']) {
      const [a, b] = channelPair();
      const [sent, received] = await Promise.all([sendFiles(a, [path]), receiveFiles(b, { dir: downloads })]);
      expect(sent[0]!.savedAs).toBe(expected);
      expect(received[0]).toMatchObject({ savedAs: expected, renamed: true, path: join(downloads, expected) });
      expect(await readFile(join(downloads, expected), 'utf8')).toBe('alice’s notes');
    }
    expect(await readFile(join(downloads, 'notes.txt'), 'utf8')).toBe('bob’s own notes');
  });

  it('a hostile sender offers names that escape the download directory: every one is rejected', async () => {
    const [mallory, b] = channelPair();
    const hostile = ['../escape.txt', '/etc/passwd', 'sub/dir.txt', '..\\win.txt', '..', '.', 'bell\u0007.txt', 'esc\u001b[2J.txt', 'C:evil', '', 'x.peerdial-part'];
    const replies: unknown[] = [];
    mallory.onMessage((m) => replies.push(JSON.parse((m as Buffer).subarray(1).toString('utf8'))));
    const receiving = receiveFiles(b, { dir: downloads });
    for (const name of hostile) {
      await mallory.send(encodeControl({ t: 'offer', name, size: 4, sha256: sha256(Buffer.from('evil')) }));
    }
    await mallory.send(encodeControl({ t: 'end' }));

    const received = await receiving;
    expect(received.map((f) => f.status)).toEqual(hostile.map(() => 'rejected'));
    await vi.waitFor(() => expect(replies).toHaveLength(hostile.length));
    expect(replies.every((r) => (r as { t: string }).t === 'reject')).toBe(true);
    expect(await readdir(downloads)).toEqual([]);
    expect((await readdir(root)).sort()).toEqual(['.keep', 'alice', 'bob']);
  });

  it('bob cancels mid-file: he keeps the part for later, alice is told and fails with TRANSFER_FAILED', async () => {
    const path = await aliceHas('big.iso', randomBytes(2 * 1024 * 1024));
    const [a, b] = channelPair({ maxMessageSize: 16 * 1024, highWater: 64 * 1024 });
    const cancel = new AbortController();
    let clock = 0; // a second per chunk, so that every chunk is reported
    const onProgress = (p: FileProgress): void => {
      if (p.bytes > 512 * 1024) cancel.abort();
    };

    const [sent, received] = await Promise.allSettled([sendFiles(a, [path]), receiveFiles(b, { dir: downloads, signal: cancel.signal, onProgress, now: () => (clock += 1000) })]);

    expect(received.status === 'rejected' && isPeerdialError(received.reason, 'ABORTED')).toBe(true);
    expect(sent.status === 'rejected' && isPeerdialError(sent.reason, 'TRANSFER_FAILED')).toBe(true);
    expect((await readdir(downloads)).sort()).toEqual(['big.iso.peerdial-part', 'big.iso.peerdial-part.json']);
  });

  it('alice cannot offer a directory', async () => {
    const [a] = channelPair();
    await expect(sendFiles(a, [outbox])).rejects.toSatisfy((e) => isPeerdialError(e, 'USAGE'));
  });
});
