/**
 * A camera node and trust: the owner invites a viewer (the link, with the
 * camera's key); the viewer joins; the camera's running agent takes the
 * introduction and confirms it; the viewer's picture arrives. A viewer the
 * camera knows by address only, whose key it merely learned from the
 * request mail, gets nothing: no answer, no encoder.
 */
import { promises as fs } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers, requireCommand } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { makePeer, runCli, tempDir, waitFor, type Peer } from './harness/peers.js';
import { agentOf } from './harness/agents.js';
import { defaultMediaSpec } from '../src/session/index.js';
import { isPeerdialError } from '../src/errors.js';

let stack: MailStack;
let dir: string;
let camera: Peer;
let viewer: Peer;
let dave: Peer;

const CAMERA = { video: { kind: 'test' as const }, audio: { kind: 'test' as const }, fps: 30 };
const viewMedia = () => defaultMediaSpec({ video: true, audio: true }, 'recvonly');

beforeAll(async () => {
  ensureMailServers();
  requireCommand('ffmpeg', 'ffmpeg');
  stack = await startMailStack({ users: ['camera', 'viewer', 'dave'] });
  dir = await tempDir('camera-trust');
  camera = await makePeer(stack, 'camera', dir, { answer: 'auto-answer' });
  viewer = await makePeer(stack, 'viewer', dir);
  dave = await makePeer(stack, 'dave', dir, { ringSeconds: 8 });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('a camera node with a viewer added by invite', () => {
  it('streams to the viewer who joined its invite; refuses dave, whose key it only learned', { timeout: 180_000 }, async () => {
    const cam = await agentOf(camera, { camera: CAMERA });
    const v = await agentOf(viewer);
    try {
      const inv = await runCli(['--config', camera.configFile, 'invite', '--no-qr', '--name', 'door-viewer']);
      expect(inv.code, inv.stderr).toBe(0);
      const uri = /(peerdial:invite\?\S+)/.exec(inv.stdout)![1]!;
      expect(uri).toContain('&k=');
      const join = await runCli(['--config', viewer.configFile, 'join', uri]);
      expect(join.code, join.stderr).toBe(0);
      expect(join.stdout).toContain('(encrypted)');
      // the camera's agent takes the introduction; the viewer's agent takes the confirmation
      await waitFor('the camera knows the viewer', async () => (await (await camera.open()).contacts.byEmail(viewer.email))?.trust === 'introduced', 30_000);
      await waitFor('the confirmation arrives', () => v.events.some((e) => e.type === 'message' && e.message.kind === 'introduced'), 30_000);
      expect(await (await camera.open()).contacts.byEmail(viewer.email)).toMatchObject({ name: 'door-viewer', trust: 'introduced' });
      expect(await (await viewer.open()).contacts.byEmail(camera.email)).toMatchObject({ trust: 'introduced' });
      expect(cam.agent.camera!.starts).toBe(0);

      const call = await v.agent.call('camera', { purpose: 'view', media: viewMedia() });
      const video = call.session.tracks().find((t) => t.kind === 'video')!;
      await waitFor('the picture arrives', () => video.stats().packetsReceived > 50, 30_000);
      expect(cam.agent.camera!.starts).toBe(1);
      call.hangup();
      await call.ended;
      await waitFor('the encoder stops', () => cam.agent.camera!.viewers === 0 && cam.agent.camera!.source === undefined, 15_000);
    } finally {
      await v.agent.stop();
    }

    // dave: the camera has him by address only; his request brings a key the camera can only learn
    await (await camera.open()).contacts.add({ name: 'dave', email: dave.email });
    await (await dave.open()).contacts.add({ name: 'camera', email: camera.email });
    const camId = (await camera.open()).identity;
    await (await dave.open()).contacts.introduceKey(camera.email, { fingerprint: camId.fingerprint, armored: camId.armoredPublicKey });
    const d = await agentOf(dave);
    try {
      const err = await d.agent.call('camera', { purpose: 'view', media: viewMedia() }).catch((e) => e);
      expect(isPeerdialError(err, 'CALL_TIMEOUT')).toBe(true);
      const refused = await waitFor('the request is refused', () => cam.events.find((e) => e.type === 'ended' && e.direction === 'in' && e.peer === dave.email));
      expect(refused).toMatchObject({ state: 'denied', detail: expect.stringContaining('only learned') });
      expect(await (await camera.open()).contacts.byEmail(dave.email)).toMatchObject({ trust: 'learned' });
      expect(cam.agent.camera!.starts).toBe(1);
    } finally {
      await d.agent.stop();
      await cam.agent.stop();
    }
  });
});
