/**
 * Nothing a peer sends names a place on this machine: what bob receives
 * stays inside his download directory whatever names mallory offers, a
 * symlink planted in the directory is never followed, and everything
 * received is private (files 0600, directories 0700), even with umask 0.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createReceivedFile, pathInside, resolveDownloadDir } from '../../src/carriers/download-dir.js';
import { receiveFiles, sendFiles } from '../../src/carriers/file.js';
import { decodeFrame, encodeControl, encodeData } from '../../src/carriers/frames.js';
import { channelPair } from '../harness/memory-channel.js';
import type { Channel } from '../../src/session/types.js';

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

let root: string;
let outside: string;
let downloads: string;
let umask: number;
beforeEach(async () => {
  umask = process.umask(0);
  root = await mkdtemp(join(tmpdir(), 'peerdial-dl-'));
  outside = join(root, 'outside');
  downloads = join(root, 'home', 'bob', 'Downloads', 'peerdial');
  await mkdir(outside, { mode: 0o755 });
  await writeFile(join(outside, 'precious'), 'do not touch\n', { mode: 0o644 });
});
afterEach(async () => {
  process.umask(umask);
  await rm(root, { recursive: true, force: true });
});

/** Every path under `dir` with its type and mode, relative to `root`. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { recursive: true })) {
    const p = join(dir, e);
    const st = await lstat(p);
    const kind = st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : 'file';
    out.push(`${relative(root, p)} ${kind} ${(st.mode & 0o777).toString(8)}`);
  }
  return out.sort();
}

/** Mallory speaks the file protocol by hand: offers `name` with `data`; returns bob's answer to the offer and to DONE. */
async function offerRaw(ch: Channel, name: string, data: Buffer): Promise<string> {
  const replies: string[] = [];
  let wake: (() => void) | undefined;
  ch.onMessage((m) => {
    const f = decodeFrame(m);
    replies.push(f.type === 'control' ? `${f.body.t}${f.body.t === 'reject' ? `: ${String(f.body.reason)}` : ''}` : f.type);
    wake?.();
  });
  const next = async (): Promise<string> => {
    while (replies.length === 0) await new Promise<void>((r) => (wake = r));
    return replies.shift()!;
  };
  await ch.send(encodeControl({ t: 'offer', name, size: data.length, sha256: sha256(data) }));
  const first = await next();
  if (!first.startsWith('accept')) return first;
  await ch.send(encodeData(data));
  await ch.send(encodeControl({ t: 'done' }));
  return `${first}, ${await next()}`;
}

describe('bob receives files from mallory', () => {
  it('hostile names are refused or land inside the download directory; nothing outside changes; all private under umask 0', async () => {
    const names = [
      '../../../../outside/precious',
      '..',
      '/etc/passwd',
      join(outside, 'precious'),
      '..\\..\\outside\\precious',
      'C:precious',
      'a\u0000b',
      'x'.repeat(300),
      'evil\u202etxt.exe',
      'pre\u200bcious',
      '．．／．．／outside／precious', // full-width look-alikes: plain characters, a plain name
      'notes.txt.peerdial-part',
      'fine.txt',
    ];
    const before = await tree(outside);
    const [a, b] = channelPair({ maxMessageSize: 64 * 1024 });
    const receiving = receiveFiles(b, { dir: downloads });
    const verdicts: Record<string, string> = {};
    for (const n of names) verdicts[n] = await offerRaw(a, n, Buffer.from(`content of ${n}\n`));
    await a.send(encodeControl({ t: 'end' }));
    const got = await receiving;

    expect(Object.entries(verdicts).filter(([, v]) => v.startsWith('accept')).map(([n]) => n)).toEqual(['．．／．．／outside／precious', 'fine.txt']);
    for (const n of names.slice(0, 10)) expect(verdicts[n], n).toMatch(/^reject: unsafe file name/);
    expect(got.filter((f) => f.status === 'saved').map((f) => f.path)).toEqual([
      join(downloads, '．．／．．／outside／precious'),
      join(downloads, 'fine.txt'),
    ]);
    expect(await tree(outside)).toEqual(before);
    expect(await readFile(join(outside, 'precious'), 'utf8')).toBe('do not touch\n');
    // every directory peerdial made is 0700, every file 0600
    expect(await tree(join(root, 'home'))).toEqual([
      'home/bob dir 700',
      'home/bob/Downloads dir 700',
      'home/bob/Downloads/peerdial dir 700',
      'home/bob/Downloads/peerdial/fine.txt file 600',
      'home/bob/Downloads/peerdial/．．／．．／outside／precious file 600',
    ]);
  });

  it('symlinks planted in the download directory are never followed: not as the partial, its sidecar, nor the final name', async () => {
    await mkdir(downloads, { recursive: true });
    const target = join(outside, 'precious');
    await symlink(target, join(downloads, 'notes.txt.peerdial-part'));
    await symlink(join(outside, 'sidecar'), join(downloads, 'notes.txt.peerdial-part.json'));
    await symlink(target, join(downloads, 'notes.txt'));
    await symlink(target, join(downloads, 'photo.jpg.peerdial-part'));
    const notes = Buffer.from('remember the milk\n');
    const src = join(root, 'notes.txt');
    await writeFile(src, notes);
    const [a, b] = channelPair({ maxMessageSize: 64 * 1024 });
    const [sent, got] = await Promise.all([sendFiles(a, [src]), receiveFiles(b, { dir: downloads })]);
    expect(sent[0]).toMatchObject({ status: 'sent', savedAs: 'notes (1).txt' });
    expect(got[0]).toMatchObject({ status: 'saved', path: join(downloads, 'notes (1).txt'), renamed: true });
    expect(await readFile(join(downloads, 'notes (1).txt'), 'utf8')).toBe('remember the milk\n');
    expect(await readFile(target, 'utf8')).toBe('do not touch\n');
    expect(await readdir(outside)).toEqual(['precious']); // no sidecar was written through the link
    expect((await stat(join(downloads, 'notes (1).txt'))).mode & 0o777).toBe(0o600);
    // the planted links are still links (the final name's) or gone (the partial's, replaced by ours and moved)
    expect((await lstat(join(downloads, 'notes.txt'))).isSymbolicLink()).toBe(true);
  });

  it('a transfer cut off mid-file keeps its partial file and sidecar private (0600) for resuming', async () => {
    const data = Buffer.alloc(200_000, 7);
    const [a, b] = channelPair({ maxMessageSize: 64 * 1024 });
    const receiving = receiveFiles(b, { dir: downloads }).catch((e: unknown) => e);
    let accepted!: () => void;
    const gotAccept = new Promise<void>((r) => (accepted = r));
    a.onMessage((m) => {
      const f = decodeFrame(m);
      if (f.type === 'control' && f.body.t === 'accept') accepted();
    });
    await a.send(encodeControl({ t: 'offer', name: 'big.bin', size: data.length, sha256: sha256(data) }));
    await gotAccept;
    await a.send(encodeData(data.subarray(0, 50_000)));
    a.close();
    expect(await receiving).toMatchObject({ code: 'SESSION_CLOSED' });
    expect(await tree(join(root, 'home'))).toEqual([
      'home/bob dir 700',
      'home/bob/Downloads dir 700',
      'home/bob/Downloads/peerdial dir 700',
      'home/bob/Downloads/peerdial/big.bin.peerdial-part file 600',
      'home/bob/Downloads/peerdial/big.bin.peerdial-part.json file 600',
    ]);
  });

  it('a download directory that is itself a symlink is resolved once; the files land in its real place', async () => {
    const real = join(root, 'real-downloads');
    await mkdir(real);
    await mkdir(join(root, 'home'));
    const link = join(root, 'home', 'dl');
    await symlink(real, link);
    expect(await resolveDownloadDir(link)).toBe(real);
    const { path, fh } = await createReceivedFile(link, 'pipe', 'AbCdEfGhIjKlMnOp', '.bin', new Date('2026-01-01T00:00:00Z'));
    await fh.close();
    expect(path).toBe(join(real, 'pipe-AbCdEfGhIjKlMnOp-2026-01-01T00-00-00-000Z.bin'));
  });
});

describe('files a call brings (a pipe, a recording)', () => {
  it('are named from the call id, created 0600 under umask 0, and never through a planted symlink', async () => {
    const now = new Date('2026-01-01T00:00:00Z');
    await mkdir(downloads, { recursive: true, mode: 0o700 });
    const expected = 'pipe-AbCdEfGhIjKlMnOp-2026-01-01T00-00-00-000Z.bin';
    await symlink(join(outside, 'precious'), join(downloads, expected));
    const { path, fh } = await createReceivedFile(downloads, 'pipe', 'AbCdEfGhIjKlMnOp', '.bin', now);
    await fh.writeFile('bytes from the peer');
    await fh.close();
    expect(path).toBe(join(downloads, 'pipe-AbCdEfGhIjKlMnOp-2026-01-01T00-00-00-000Z-1.bin'));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readFile(join(outside, 'precious'), 'utf8')).toBe('do not touch\n');
  });

  it('a call id that is not a plain id cannot steer the name', async () => {
    const { path, fh } = await createReceivedFile(downloads, 'call', '../../../outside/x', '.mkv', new Date('2026-01-01T00:00:00Z'));
    await fh.close();
    expect(path).toBe(join(downloads, 'call-outsidex-2026-01-01T00-00-00-000Z.mkv'));
    expect(() => pathInside(downloads, '../x')).toThrow(/path separator/);
    expect(() => pathInside(downloads, '..')).toThrow(/'\.\.'/);
  });
});
