/**
 * Audio and video over direct sessions (issue 5), on loopback in one process:
 * two Sessions exchange offer and answer directly (no mail), ffmpeg's lavfi
 * test sources feed the camera side, and the viewer records with ffmpeg.
 * Needs ffmpeg/ffprobe (Debian package `ffmpeg`).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { isPeerdialError } from '../src/errors.js';
import { type MediaSource, SharedSource, recordTo, startSource } from '../src/media/index.js';
import {
  type AnswerMedia,
  type IceConfig,
  type MediaSpec,
  type MediaTrack,
  Session,
  defaultMediaSpec,
  dtlsSetups,
  mediaSections,
  shutdownSessions,
  startsH264Keyframe,
  withPayloadTypeAndSsrc,
  isKeyframeRequest,
} from '../src/session/index.js';
import { expectRtpAndPictureLoss } from './harness/rtp-flow.js';

const ice: IceConfig = { iceServers: [], bindAddress: '127.0.0.1' };
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'peerdial-media-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a camera accepts: it only sends. */
const CAMERA: AnswerMedia = { video: { direction: 'sendonly' }, audio: { direction: 'sendonly' } };

/**
 * A viewer calls the camera: offer with recvonly audio/video, the camera's
 * answer, both connected.
 */
async function viewerCallsCamera(): Promise<{ viewer: Session; camera: Session; offer: string; answer: string }> {
  const media: MediaSpec = defaultMediaSpec({ video: true, audio: true }, 'recvonly');
  const { session: viewer, sdp: offer } = await Session.createOffer({ ice, media });
  const { session: camera, sdp: answer } = await Session.acceptOffer(offer, { ice, media: CAMERA });
  try {
    viewer.acceptAnswer(answer);
    await Promise.all([viewer.connected({ timeoutMs: 20_000 }), camera.connected({ timeoutMs: 20_000 })]);
    return { viewer, camera, offer, answer };
  } catch (err) {
    viewer.close();
    camera.close();
    throw err;
  }
}

function testCamera(opts: { keyframeIntervalS?: number } = {}): SharedSource<MediaSource> {
  return new SharedSource(() => startSource({ video: { kind: 'test' }, audio: { kind: 'test' }, fps: 30, ...opts }));
}

function video(tracks: MediaTrack[]): MediaTrack {
  const t = tracks.find((x) => x.kind === 'video');
  if (!t) throw new Error('no video track');
  return t;
}

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function probe(file: string): Promise<{ codecs: string[]; duration: number; videoFrames: number }> {
  const { stdout } = await run('ffprobe', [
    '-v', 'error', '-count_frames',
    '-show_entries', 'format=duration:stream=codec_type,codec_name,nb_read_frames',
    '-of', 'json', file,
  ]);
  const info = JSON.parse(stdout) as {
    format: { duration: string };
    streams: Array<{ codec_type: string; codec_name: string; nb_read_frames?: string }>;
  };
  return {
    codecs: info.streams.map((s) => `${s.codec_type}:${s.codec_name}`),
    duration: Number(info.format.duration),
    videoFrames: Number(info.streams.find((s) => s.codec_type === 'video')?.nb_read_frames ?? 0),
  };
}

afterAll(() => {
  shutdownSessions();
  rmSync(dir, { recursive: true, force: true });
});

describe('media in offer and answer', () => {
  it('a viewer offers recvonly H.264 + Opus; the camera answers sendonly with its SSRCs; the offer is the DTLS client in every section', async () => {
    const { viewer, camera, offer, answer } = await viewerCallsCamera();
    try {
      expect(mediaSections(offer).map((m) => [m.kind, m.mid, m.direction])).toEqual([
        ['video', 'video', 'recvonly'],
        ['audio', 'audio', 'recvonly'],
      ]);
      expect(mediaSections(offer)[0]!.payloadTypes['h264']).toBe(96);
      expect(mediaSections(offer)[1]!.payloadTypes['opus']).toBe(111);
      expect(dtlsSetups(offer).every((s) => s === 'active')).toBe(true);
      expect(dtlsSetups(offer)).toHaveLength(3);
      const sections = mediaSections(answer);
      expect(sections.map((m) => m.direction)).toEqual(['sendonly', 'sendonly']);
      expect(sections.every((m) => m.ssrcs.length === 1)).toBe(true);
      expect(viewer.tracks().map((t) => `${t.kind}:${t.direction}`)).toEqual(['video:recvonly', 'audio:recvonly']);
      expect(camera.tracks().map((t) => `${t.kind}:${t.direction}:${t.payloadType}`)).toEqual([
        'video:sendonly:96',
        'audio:sendonly:111',
      ]);
      const seen: string[] = [];
      viewer.onTrack((t) => seen.push(t.kind));
      expect(seen).toEqual(['video', 'audio']);

      // Picture loss: once RTP flows, the viewer's PLI reaches the camera's track.
      await expectRtpAndPictureLoss(camera.track('video')!, viewer.track('video')!);
    } finally {
      viewer.close();
      camera.close();
    }
  });

  it('kinds the callee does not accept are answered inactive, and nothing flows on them', async () => {
    const media = defaultMediaSpec({ video: true, audio: true }, 'sendonly');
    const { session: caller, sdp: offer } = await Session.createOffer({ ice, media });
    const { session: callee, sdp: answer } = await Session.acceptOffer(offer, { ice, media: { audio: {} } });
    try {
      expect(mediaSections(answer).map((m) => `${m.kind}:${m.direction}`)).toEqual(['video:inactive', 'audio:recvonly']);
      caller.acceptAnswer(answer);
      await Promise.all([caller.connected(), callee.connected()]);
      expect(caller.track('video')!.direction).toBe('inactive');
      expect(caller.track('audio')!.direction).toBe('sendonly');
      expect(caller.track('video')!.sendRtp(Buffer.alloc(20, 0x80))).toBe(false);
    } finally {
      caller.close();
      callee.close();
    }
  });

  it('RTP helpers: key frames in single NAL, STAP-A and FU-A packets; payload type and SSRC rewritten on a copy; PLI recognised', () => {
    const rtp = (payload: number[]) => Buffer.from([0x80, 96, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7, ...payload]);
    expect(startsH264Keyframe(rtp([0x65, 1, 2]))).toBe(true); // IDR
    expect(startsH264Keyframe(rtp([0x41, 1, 2]))).toBe(false); // P slice
    expect(startsH264Keyframe(rtp([0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce]))).toBe(true); // STAP-A with SPS
    expect(startsH264Keyframe(rtp([0x7c, 0x85, 1]))).toBe(true); // FU-A start of IDR
    expect(startsH264Keyframe(rtp([0x7c, 0x05, 1]))).toBe(false); // FU-A middle
    const p = rtp([0x41]);
    const q = withPayloadTypeAndSsrc(p, 102, 0xdeadbeef);
    expect(q).not.toBe(p);
    expect(q[1]! & 0x7f).toBe(102);
    expect(Buffer.from(q).readUInt32BE(8)).toBe(0xdeadbeef);
    expect(p[1]).toBe(96);
    expect(withPayloadTypeAndSsrc(p, 96, 7)).toBe(p);
    const pli = Buffer.from([0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 7]);
    const rr = Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 1]);
    expect(isKeyframeRequest(pli)).toBe(true);
    expect(isKeyframeRequest(Buffer.concat([rr, pli]))).toBe(true);
    expect(isKeyframeRequest(rr)).toBe(false);
  });
});

describe('a camera fed by ffmpeg test sources', () => {
  it('streams to a viewer that records 10 s: the file holds H.264 and Opus, about 10 s long; frames received vs sent reported', async () => {
    const { viewer, camera } = await viewerCallsCamera();
    const shared = testCamera();
    const file = join(dir, 'call.mkv');
    try {
      const t0 = performance.now();
      const recording = await recordTo(file, viewer.tracks());
      const tRecorder = performance.now();
      await shared.join(camera);
      const tEncoder = performance.now();
      // Record 10 s from the first picture on (a picture that never comes: the test's timeout).
      while (recording.stats().firstKeyframeAt === undefined) await sleep(20);
      const tFirst = recording.stats().firstKeyframeAt!;
      await sleep(10_000 - (performance.now() - tFirst));
      const sentBefore = video(camera.tracks()).stats();
      const result = await recording.stop();
      const sent = video(camera.tracks()).stats();
      const received = video(viewer.tracks()).stats();
      const audioSent = camera.track('audio')!.stats();
      const audioReceived = viewer.track('audio')!.stats();
      const encoder = shared.source!.stats();
      const info = await probe(file);
      console.log(
        `media: recorder listening after ${Math.round(tRecorder - t0)} ms, encoder's first RTP after ${Math.round(tEncoder - tRecorder)} ms, ` +
          `first key frame at the viewer ${Math.round(tFirst - tRecorder)} ms after the recorder was ready\n` +
          `media: video frames encoded ${encoder.video.frames}, sent ${sent.framesSent} (${sentBefore.framesSent} when the recording stopped), ` +
          `received ${received.framesReceived}, recorded ${result.stats.videoFrames}, in the file ${info.videoFrames}; ` +
          `packets sent ${sent.packetsSent}, received ${received.packetsReceived}, lost ${received.packetsLost}, ` +
          `key frames ${received.keyframesReceived}, PLI sent ${received.keyframeRequestsSent}\n` +
          `media: audio packets sent ${audioSent.packetsSent}, received ${audioReceived.packetsReceived}; ` +
          `file ${info.codecs.join(', ')}, ${info.duration.toFixed(2)} s`,
      );
      expect(info.codecs).toEqual(['video:h264', 'audio:opus']);
      expect(info.duration).toBeGreaterThan(9);
      expect(info.duration).toBeLessThan(11);
      expect(result.code).toBe(0);
      // Loopback: every frame sent until the recording stopped arrives.
      expect(result.stats.videoFrames).toBeGreaterThanOrEqual(sentBefore.framesSent * 0.97);
      expect(info.videoFrames).toBeGreaterThan(270); // 10 s at 30 fps, less a little at the edges
      expect(audioReceived.packetsReceived).toBeGreaterThan(450); // 20 ms packets
    } finally {
      viewer.close();
      camera.close();
      await shared.stop();
    }
  }, 60_000);

  it('two viewers share one encoder; one hangs up and the other keeps receiving; the encoder stops when the last leaves', async () => {
    // One key frame an hour: the encoder's first is the only one in this test, so
    // a late viewer can get a picture only from the cached GOP, however slow the machine.
    const shared = testCamera({ keyframeIntervalS: 3600 });
    const first = await viewerCallsCamera();
    const leaveFirst = await shared.join(first.camera);
    const source = shared.source!;
    const pid = source.pid;
    expect(alive(pid)).toBe(true);
    await sleep(1500);

    // The second viewer comes in mid-GOP: the cached GOP gives it a picture at once.
    const second = await viewerCallsCamera();
    const tJoin = performance.now();
    await shared.join(second.camera);
    expect(shared.source).toBe(source);
    expect(shared.viewers).toBe(2);
    while (video(second.viewer.tracks()).stats().firstKeyframeAt === undefined) await sleep(10);
    const lateStart = video(second.viewer.tracks()).stats().firstKeyframeAt! - tJoin;
    // the key frame it got is the cached one: the encoder has made no other
    expect(source.stats().video.keyframes).toBe(1);
    await sleep(1000);
    const a1 = video(first.viewer.tracks()).stats().packetsReceived;
    const b1 = video(second.viewer.tracks()).stats().packetsReceived;
    expect(a1).toBeGreaterThan(0);
    expect(b1).toBeGreaterThan(0);

    // The first viewer hangs up (the camera's session of that call closes).
    first.viewer.close();
    first.camera.close();
    await leaveFirst();
    expect(shared.viewers).toBe(1);
    expect(source.isRunning).toBe(true);
    const b2 = video(second.viewer.tracks()).stats().packetsReceived;
    // It keeps receiving: 100 packets more, however long a busy machine takes (none: the test's timeout).
    const tB2 = performance.now();
    let b3 = b2;
    while (b3 <= b2 + 100) {
      await sleep(50);
      b3 = video(second.viewer.tracks()).stats().packetsReceived;
    }
    console.log(`media: second viewer received ${b3 - b2} packets in ${Math.round(performance.now() - tB2)} ms after the first hung up`);
    const framesB = video(second.viewer.tracks()).stats().framesReceived;
    console.log(
      `media: late viewer's first key frame ${Math.round(lateStart)} ms after joining; ` +
        `second viewer packets ${b1} -> ${b2} -> ${b3} after the first hung up (${framesB} frames)`,
    );
    expect(b3).toBeGreaterThan(b2 + 100);
    expect(source.stats().video.keyframes).toBe(1); // still the only one: nothing else gave the late viewer its picture

    // The last viewer leaves by closing its session: the encoder stops.
    second.viewer.close();
    second.camera.close();
    // An encoder left running never exits: the test's timeout.
    const exit = await source.exited;
    expect(exit).toBeDefined();
    expect(shared.viewers).toBe(0);
    expect(shared.source).toBeUndefined();
    expect(alive(pid)).toBe(false);
    expect(shared.starts).toBe(1);
  }, 60_000);
});

describe('without ffmpeg', () => {
  it('a source or a recording with a missing ffmpeg fails with MISSING_PACKAGE and the apt hint, no crash', async () => {
    const ffmpegPath = join(dir, 'no-such-dir', 'ffmpeg');
    const err = await startSource({ video: { kind: 'test' }, ffmpegPath }).catch((e: unknown) => e);
    expect(isPeerdialError(err, 'MISSING_PACKAGE')).toBe(true);
    expect((err as { hint?: string }).hint).toMatch(/apt install ffmpeg/);
    const { session: offerer, sdp } = await Session.createOffer({ ice, media: defaultMediaSpec({ video: true }, 'recvonly') });
    try {
      const rec = await recordTo(join(dir, 'x.mkv'), offerer.tracks(), { ffmpegPath }).catch((e: unknown) => e);
      expect(isPeerdialError(rec, 'MISSING_PACKAGE')).toBe(true);
      expect(sdp).toMatch(/^m=video /m);
    } finally {
      offerer.close();
    }
  });
});
