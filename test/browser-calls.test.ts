/**
 * A browser tab as one end of a peerdial call (issue 13): a real headless
 * Chromium's own RTCPeerConnection makes the offer or the answer, the tab's
 * agent (alice's, in this process) carries it by mail through the real mail
 * stack like its own (signed, encrypted, policy, call log), and the media
 * go directly between the tab and a peerdial process. The page is not built
 * here (src/web/ does that): the test hands descriptions between the tab
 * and the agent's BrowserCalls itself, as the web server will.
 *
 * The tab and the peerdial end of the media run in a network namespace the
 * test makes (test/harness/browser.ts): Chromium gathers no loopback
 * address, and the machine's own address is not for tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers, isRoot, requireCommand } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { BIN, introduce, makePeer, tempDir, waitFor, type Peer } from './harness/peers.js';
import { agentOf, type RecordedAgent } from './harness/agents.js';
import { bindInNamespace, browserNet, launchTab, type BrowserNet } from './harness/browser.js';
import { probe } from './harness/ffprobe.js';
import type { BrowserOffer } from '../src/agent/browser-calls.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let camera: Peer;
let carol: Peer;
let net: BrowserNet;
let browser: Browser;
let page: Page;
let tab: RecordedAgent;
const running: ChildProcess[] = [];

/** A peerdial command inside the namespace; its output is collected. */
function inNamespace(args: string[]): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const [cmd, ...argv] = net.inNs([process.execPath, BIN, ...args]);
  const child = spawn(cmd!, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, out: () => out, exited: new Promise((r) => child.on('close', (c) => r(c))) };
}

beforeAll(async () => {
  if (!isRoot()) throw new Error('the browser tests make a network namespace: run them as root');
  ensureMailServers();
  requireCommand('ffmpeg', 'ffmpeg');
  stack = await startMailStack({ users: ['alice', 'camera', 'carol'] });
  dir = await tempDir('browser');
  alice = await makePeer(stack, 'alice', dir);
  camera = await makePeer(stack, 'camera', dir, { answer: 'auto-answer' });
  carol = await makePeer(stack, 'carol', dir, { ringSeconds: 90 });
  await introduce(alice, camera, carol);
  await bindInNamespace(camera);
  await bindInNamespace(carol);
  net = await browserNet(dir, [stack.imapPort, stack.smtpPort]);
  ({ browser, page } = await launchTab(net, dir));
  // the tab's agent: alice's, in this process (its own sessions never run: the tab's do)
  tab = await agentOf(alice);
}, 180_000);

afterAll(async () => {
  await tab?.agent.stop();
  await browser?.close();
  for (const c of running) if (c.exitCode === null) c.kill('SIGKILL');
  await net?.close();
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('a browser tab as a WebRTC endpoint', () => {
  it('views a camera node: the tab offers, the camera answers by mail, the tab decodes more than 5 s of its H.264', { timeout: 300_000 }, async () => {
    const cam = inNamespace(['--config', camera.configFile, 'agent', '--camera', 'test', '--camera-audio', 'test']);
    // the tab's complete offer: receive video and sound, a control channel, gathering done
    const offerSdp = await page.evaluate(async () => {
      const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
      (window as unknown as { pc: RTCPeerConnection }).pc = pc;
      pc.createDataChannel('control');
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      const video = document.createElement('video');
      video.muted = true;
      video.autoplay = true;
      document.body.append(video);
      const seen = { frames: 0, firstRtp: -1, lastRtp: -1 };
      (window as unknown as { seen: typeof seen }).seen = seen;
      pc.ontrack = (e) => {
        if (e.track.kind !== 'video') return;
        video.srcObject = new MediaStream([e.track]);
        void video.play().catch(() => undefined);
        const tick = (_now: number, meta: VideoFrameCallbackMetadata) => {
          seen.frames++;
          const rtp = meta.rtpTimestamp ?? -1;
          if (seen.firstRtp < 0) seen.firstRtp = rtp;
          seen.lastRtp = rtp;
          video.requestVideoFrameCallback(tick);
        };
        video.requestVideoFrameCallback(tick);
      };
      await pc.setLocalDescription();
      await new Promise<void>((r) => {
        if (pc.iceGatheringState === 'complete') r();
        pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r();
      });
      return pc.localDescription!.sdp;
    });
    const { callId, answerSdp } = await tab.agent.browserCalls.call('camera', offerSdp, { video: true, audio: true });
    expect(answerSdp).toContain('m=video');
    await page.evaluate(async (sdp) => (window as unknown as { pc: RTCPeerConnection }).pc.setRemoteDescription({ type: 'answer', sdp }), answerSdp);
    // at least 5 s of video by the frames' own RTP clock (90 kHz)
    const seen = await waitFor(
      'five seconds of decoded video in the tab',
      async () => {
        const s = await page.evaluate(() => (window as unknown as { seen: { frames: number; firstRtp: number; lastRtp: number } }).seen);
        return s.firstRtp >= 0 && (s.lastRtp - s.firstRtp) / 90_000 >= 5 ? s : undefined;
      },
      180_000,
      500,
    );
    const decoded = await page.evaluate(async () => {
      const stats = await (window as unknown as { pc: RTCPeerConnection }).pc.getStats();
      let frames = 0;
      let codec = '';
      stats.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          frames = s.framesDecoded;
          codec = stats.get(s.codecId)?.mimeType ?? '';
        }
      });
      return { frames, codec };
    });
    console.log(`browser: the tab decoded ${decoded.frames} frames (${decoded.codec}); ${seen.frames} frames shown over ${((seen.lastRtp - seen.firstRtp) / 90_000).toFixed(1)} s of video`);
    expect(decoded.codec).toBe('video/H264');
    expect(decoded.frames).toBeGreaterThanOrEqual(seen.frames);
    expect(seen.frames).toBeGreaterThan(5 * 10);
    // the call is an ordinary call of alice's: one id, in her call log
    await page.evaluate(() => (window as unknown as { pc: RTCPeerConnection }).pc.close());
    await tab.agent.browserCalls.hangup(callId);
    await waitFor('the call ends in alice\'s agent', () => tab.events.some((e) => e.type === 'ended' && e.callId === callId), 30_000);
    const log = await (await alice.open()).calls.list();
    expect(log.filter((c) => c.callId === callId).map((c) => c.outcome)).toEqual(['connected', 'hung-up']);
    await waitFor('the camera saw the viewer go', () => /stopped watching/.test(cam.out()), 60_000);
    cam.child.kill('SIGTERM');
    await cam.exited;
  });

  it('is the callee of `peerdial call --video --source test --record`: the recording has the tab\'s camera', { timeout: 300_000 }, async () => {
    const offers: BrowserOffer[] = [];
    const stop = tab.agent.browserCalls.onOffer((o) => offers.push(o));
    try {
      const file = path.join(dir, 'from-tab.mkv');
      const call = inNamespace(['--config', carol.configFile, 'call', 'alice', '--video', '--source', 'test', '--record', file, '--seconds', '8']);
      const offer = await waitFor('the offer reaches the tab', () => offers[0], 120_000);
      expect(offer).toMatchObject({ from: carol.email, video: true });
      await waitFor('alice\'s agent rings', () => tab.events.some((e) => e.type === 'ringing' && e.call.callId === offer.callId), 30_000);
      const answerSdp = await page.evaluate(async (o) => {
        const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
        (window as unknown as { pc2: RTCPeerConnection }).pc2 = pc;
        await pc.setRemoteDescription({ type: 'offer', sdp: o.offerSdp });
        const cam = await navigator.mediaDevices.getUserMedia({ video: o.video, audio: o.audio });
        for (const t of pc.getTransceivers()) {
          const track = cam.getTracks().find((k) => k.kind === t.receiver.track.kind);
          if (!track) continue;
          await t.sender.replaceTrack(track);
          t.sender.setStreams(cam);
          t.direction = 'sendrecv';
        }
        await pc.setLocalDescription();
        await new Promise<void>((r) => {
          if (pc.iceGatheringState === 'complete') r();
          pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r();
        });
        return pc.localDescription!.sdp;
      }, offer);
      await tab.agent.browserCalls.answer(offer.callId, answerSdp);
      const code = await call.exited;
      expect(code, call.out()).toBe(0);
      const info = await probe(file);
      console.log(`browser: the caller recorded ${info.videoFrames} frames of the tab's camera (${info.codecs.join(', ')}, ${info.duration.toFixed(1)} s)`);
      expect(info.codecs).toContain('video:h264');
      expect(info.videoFrames).toBeGreaterThan(30);
      await page.evaluate(() => (window as unknown as { pc2: RTCPeerConnection }).pc2.close());
      await tab.agent.browserCalls.hangup(offer.callId).catch(() => undefined);
      const log = await (await alice.open()).calls.list();
      expect(log.filter((c) => c.callId === offer.callId).map((c) => c.outcome)).toContain('connected');
    } finally {
      stop();
    }
  });
});
