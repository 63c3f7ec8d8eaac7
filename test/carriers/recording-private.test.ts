/**
 * A recording of a call nobody attended (agent: purpose `media`) is written
 * by ffmpeg into the file peerdial created, inside download_dir, 0600 under
 * umask 0, and ffmpeg's -y never replaces what a planted symlink points to.
 * Sessions in this process on 127.0.0.1; the camera is ffmpeg's test source.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReceivedFile } from '../../src/carriers/download-dir.js';
import { SharedSource, recordTo, startSource } from '../../src/media/index.js';
import { Session, defaultMediaSpec, shutdownSessions, type IceConfig } from '../../src/session/index.js';
import { waitFor } from '../harness/peers.js';

const ice: IceConfig = { iceServers: [], bindAddress: '127.0.0.1' };
const run = promisify(execFile);
let root: string;
let umask: number;

beforeAll(async () => {
  umask = process.umask(0);
  root = await mkdtemp(join(tmpdir(), 'peerdial-rec-'));
});
afterAll(async () => {
  process.umask(umask);
  shutdownSessions();
  await rm(root, { recursive: true, force: true });
});

describe('hitoshi is away; alice calls with picture and sound and his agent records it', () => {
  it('the recording is the file peerdial made (0600, in a 0700 download_dir); the planted symlink and its target are untouched', async () => {
    const downloads = join(root, 'downloads');
    const outside = join(root, 'outside.txt');
    await writeFile(outside, 'do not touch\n', { mode: 0o644 });
    await mkdir(downloads, { mode: 0o700 });
    const now = new Date('2026-01-01T00:00:00Z');
    await symlink(outside, join(downloads, 'call-AbCdEfGhIjKlMnOp-2026-01-01T00-00-00-000Z.mkv'));

    const media = defaultMediaSpec({ video: true, audio: true }, 'sendrecv');
    const { session: alice, sdp: offer } = await Session.createOffer({ ice, media });
    const { session: hitoshi, sdp: answer } = await Session.acceptOffer(offer, { ice, media: { video: { direction: 'recvonly' }, audio: { direction: 'recvonly' } } });
    alice.acceptAnswer(answer);
    await Promise.all([alice.connected({ timeoutMs: 20_000 }), hitoshi.connected({ timeoutMs: 20_000 })]);
    const camera = new SharedSource(() => startSource({ video: { kind: 'test' }, audio: { kind: 'test' }, fps: 30 }));
    try {
      const { path, fh } = await createReceivedFile(downloads, 'call', 'AbCdEfGhIjKlMnOp', '.mkv', now);
      let sink;
      try {
        sink = await recordTo(path, hitoshi.tracks(), { outputFd: fh.fd });
      } finally {
        await fh.close();
      }
      const leave = await camera.join(alice);
      await waitFor('30 frames recorded', () => sink.stats().videoFrames >= 30, 30_000);
      const result = await sink.stop();
      await leave();
      expect(result.code, result.stderr).toBe(0);

      expect(path).toBe(join(downloads, 'call-AbCdEfGhIjKlMnOp-2026-01-01T00-00-00-000Z-1.mkv'));
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name', '-of', 'csv=p=0', path]);
      expect(stdout.trim().split('\n').sort()).toEqual(['h264,video', 'opus,audio']);
      expect(await readFile(outside, 'utf8')).toBe('do not touch\n');
    } finally {
      alice.close();
      hitoshi.close();
      await camera.stop();
    }
  }, 90_000);
});
