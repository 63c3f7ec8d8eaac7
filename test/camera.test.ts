/**
 * The camera that only connects on request: a camera node (ffmpeg's test
 * picture and tone) idles on its mailbox; an allowed viewer's request mail
 * starts the stream; several viewers share one encoder, which stops when
 * the last leaves; a viewer who is not allowed never gets a packet.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers, requireCommand } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { introduce, makePeer, runCli, tempDir, waitFor, type Peer } from './harness/peers.js';
import { agentOf } from './harness/agents.js';
import { probe } from './harness/ffprobe.js';
import { defaultMediaSpec } from '../src/session/index.js';
import { isPeerdialError } from '../src/errors.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let carol: Peer;
let camera: Peer;
let dave: Peer;

const CAMERA = { video: { kind: 'test' as const }, audio: { kind: 'test' as const }, fps: 30 };
const viewMedia = () => defaultMediaSpec({ video: true, audio: true }, 'recvonly');

beforeAll(async () => {
  ensureMailServers();
  requireCommand('ffmpeg', 'ffmpeg');
  stack = await startMailStack({ users: ['alice', 'carol', 'camera', 'dave'] });
  dir = await tempDir('camera');
  alice = await makePeer(stack, 'alice', dir);
  carol = await makePeer(stack, 'carol', dir);
  dave = await makePeer(stack, 'dave', dir, { ringSeconds: 8 });
  camera = await makePeer(stack, 'camera', dir, { answer: 'auto-answer' });
  await introduce(alice, camera);
  await introduce(carol, camera);
  // dave knows the camera's address and key, but the camera does not know dave
  const camId = (await camera.open()).identity;
  await (await dave.open()).contacts.add({ name: 'camera', email: camera.email });
  await (await dave.open()).contacts.pinKey(camera.email, camId.armoredPublicKey, camId.fingerprint, 'manual');
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('a camera node', () => {
  it('streams to a viewer who records 10 s: the file is H.264 + Opus, about 10 s long; the encoder ran only for the call', { timeout: 120_000 }, async () => {
    const cam = await agentOf(camera, { camera: CAMERA });
    try {
      expect(cam.agent.camera!.starts).toBe(0);
      const file = path.join(dir, 'door.mkv');
      const r = await runCli(['--config', alice.configFile, 'call', 'camera', '--view', '--record', file, '--seconds', '10'], { timeoutMs: 90_000 });
      expect(r.code, r.stderr).toBe(0);
      const frames = Number(/(\d+) video frames and (\d+) audio packets received/.exec(r.stderr)?.[1]);
      const info = await probe(file);
      console.log(`camera: viewer received ${frames} video frames; file ${info.codecs.join(', ')}, ${info.duration.toFixed(2)} s, ${info.videoFrames} frames`);
      expect(info.codecs).toEqual(['video:h264', 'audio:opus']);
      expect(info.duration).toBeGreaterThan(9);
      expect(info.duration).toBeLessThan(11);
      expect(frames).toBeGreaterThan(250);
      await waitFor('the encoder stops after the call', () => cam.agent.camera!.viewers === 0 && cam.agent.camera!.source === undefined, 15_000);
      expect(cam.agent.camera!.starts).toBe(1);
    } finally {
      await cam.agent.stop();
    }
  });

  it('two viewers share one encoder; one hangs up and the other keeps watching; the encoder stops when the last leaves', async () => {
    const cam = await agentOf(camera, { camera: CAMERA });
    const a = await agentOf(alice);
    const c = await agentOf(carol);
    try {
      const [va, vc] = await Promise.all([a.agent.call('camera', { purpose: 'view', media: viewMedia() }), c.agent.call('camera', { purpose: 'view', media: viewMedia() })]);
      const videoOf = (call: typeof va) => call.session.tracks().find((t) => t.kind === 'video')!;
      await waitFor('both receive', () => videoOf(va).stats().packetsReceived > 50 && videoOf(vc).stats().packetsReceived > 50, 20_000);
      expect(cam.agent.camera!.viewers).toBe(2);
      expect(cam.agent.camera!.starts).toBe(1);
      va.hangup();
      await va.ended;
      const before = videoOf(vc).stats().packetsReceived;
      await new Promise((r) => setTimeout(r, 2000));
      expect(videoOf(vc).stats().packetsReceived).toBeGreaterThan(before + 50);
      await waitFor('one viewer left', () => cam.agent.camera!.viewers === 1, 10_000);
      expect(cam.agent.camera!.source?.isRunning).toBe(true);
      vc.hangup();
      await vc.ended;
      await waitFor('the encoder stops with the last viewer', () => cam.agent.camera!.viewers === 0 && cam.agent.camera!.source === undefined, 15_000);
      expect(cam.agent.camera!.starts).toBe(1);
    } finally {
      await a.agent.stop();
      await c.agent.stop();
      await cam.agent.stop();
    }
  });

  it('a viewer who is not allowed never gets a packet: no answer, no encoder', async () => {
    const cam = await agentOf(camera, { camera: CAMERA });
    const d = await agentOf(dave);
    try {
      const err = await d.agent.call('camera', { purpose: 'view', media: viewMedia() }).catch((e) => e);
      expect(isPeerdialError(err, 'CALL_TIMEOUT')).toBe(true);
      const rejected = await waitFor('the request is rejected', () => cam.events.find((e) => e.type === 'mail-rejected' && e.from === dave.email));
      expect(rejected).toMatchObject({ from: dave.email, reason: 'unknown-sender' });
      expect(cam.agent.camera!.starts).toBe(0);
      expect(cam.events.some((e) => e.type === 'state' && e.direction === 'in')).toBe(false);
    } finally {
      await d.agent.stop();
      await cam.agent.stop();
    }
  });

  it('a video call both ways: alice sends her picture, the camera node sends its own and records hers', { timeout: 120_000 }, async () => {
    const cam = await agentOf(camera, { camera: CAMERA });
    try {
      const file = path.join(dir, 'from-camera.mkv');
      const r = await runCli(['--config', alice.configFile, 'call', 'camera', '--video', '--audio', '--source', 'test', '--record', file, '--seconds', '5'], { timeoutMs: 90_000 });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('sending video and sound');
      const mine = await probe(file);
      expect(mine.codecs).toEqual(['video:h264', 'audio:opus']);
      expect(mine.duration).toBeGreaterThan(3.5);
      const saved = await waitFor<string>('the camera saved what alice sent', async () => {
        const done = cam.events.find((e) => e.type === 'carried' && e.what === 'media' && e.detail.includes('saved in'));
        return done && 'detail' in done ? /saved in (.*\.mkv)$/.exec(String(done.detail))?.[1] : undefined;
      }, 30_000);
      const theirs = await probe(saved);
      console.log(`camera: two-way call; alice recorded ${mine.videoFrames} frames (${mine.duration.toFixed(1)} s), the camera recorded ${theirs.videoFrames} frames of alice (${theirs.duration.toFixed(1)} s)`);
      expect(theirs.codecs).toEqual(['video:h264', 'audio:opus']);
      expect(theirs.videoFrames).toBeGreaterThan(60);
    } finally {
      await cam.agent.stop();
    }
  });
});
