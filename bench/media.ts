/**
 * Media figures (issue 5): a camera fed by ffmpeg's test source streams to a
 * viewer over a direct session on loopback. Frames delivered vs. sent, and
 * the latency the session adds per RTP packet (camera track -> viewer
 * track), beside the same packets sent over a plain loopback UDP socket.
 */
import dgram from 'node:dgram';
import { Session, defaultMediaSpec, parseRtp, shutdownSessions, type MediaTrack } from '../src/session/index.js';
import { isPeerdialError } from '../src/errors.js';
import { SharedSource, startSource } from '../src/media/index.js';
import { now, sleep, summarize, type Summary } from './lib.js';

const ice = { iceServers: [], bindAddress: '127.0.0.1' };

async function connectPair(): Promise<{ viewer: Session; camera: Session }> {
  for (let attempt = 1; ; attempt++) {
    const { session: viewer, sdp: offer } = await Session.createOffer({ ice, media: defaultMediaSpec({ video: true, audio: true }, 'recvonly') });
    const { session: camera, sdp: answer } = await Session.acceptOffer(offer, { ice, media: { video: { direction: 'sendonly' }, audio: { direction: 'sendonly' } } });
    try {
      viewer.acceptAnswer(answer);
      await Promise.all([viewer.connected({ timeoutMs: 20_000 }), camera.connected({ timeoutMs: 20_000 })]);
      return { viewer, camera };
    } catch (err) {
      viewer.close();
      camera.close();
      if (!isPeerdialError(err, 'SESSION_FAILED') || attempt >= 3) throw err;
    }
  }
}

export interface MediaResult {
  seconds: number;
  framesEncoded: number;
  framesSent: number;
  framesReceived: number;
  packetsSent: number;
  packetsReceived: number;
  packetsLost: number;
  audioSent: number;
  audioReceived: number;
  /** µs per video RTP packet: handed to the camera's track -> arrived at the viewer's track */
  sessionLatency: Summary;
  /** µs per packet over a plain loopback UDP socket, same packets, same process */
  udpLatency: Summary;
  firstKeyframeMs: number;
}

export async function measureMedia(seconds: number): Promise<MediaResult> {
  const { viewer, camera } = await connectPair();
  const shared = new SharedSource(() => startSource({ video: { kind: 'test' }, audio: { kind: 'test' }, fps: 30 }));
  const sentAt = new Map<number, number>();
  const sessionLat: number[] = [];
  const udpLat: number[] = [];
  const udpSent = new Map<number, number>();
  const rx = dgram.createSocket('udp4');
  const tx = dgram.createSocket('udp4');
  await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
  rx.on('message', (m) => {
    const h = parseRtp(m);
    const t = h && udpSent.get(h.sequence);
    if (t !== undefined) udpLat.push((now() - t) * 1000);
  });
  const vv = viewer.tracks().find((t) => t.kind === 'video') as MediaTrack;
  const cv = camera.tracks().find((t) => t.kind === 'video') as MediaTrack;
  let firstKey = 0;
  const t0 = now();
  vv.onRtp((p) => {
    const h = parseRtp(p);
    const t = h && sentAt.get(h.sequence);
    if (t !== undefined) sessionLat.push((now() - t) * 1000);
    if (!firstKey && vv.stats().keyframesReceived > 0) firstKey = now() - t0;
  });
  try {
    await shared.join(camera);
    const source = shared.source!;
    // the moment a packet is handed to the camera's track, and the same packet over UDP
    source.onRtp('video', (p) => {
      const h = parseRtp(p);
      if (!h) return;
      const t = now();
      sentAt.set(h.sequence, t);
      udpSent.set(h.sequence, t);
      tx.send(p, (rx.address() as { port: number }).port, '127.0.0.1');
    });
    await sleep(seconds * 1000);
    const enc = source.stats();
    const s = cv.stats();
    await shared.stop();
    await sleep(300);
    const r = vv.stats();
    const a = viewer.tracks().find((t) => t.kind === 'audio')!.stats();
    const ca = camera.tracks().find((t) => t.kind === 'audio')!.stats();
    return {
      seconds,
      framesEncoded: enc.video.frames,
      framesSent: s.framesSent,
      framesReceived: r.framesReceived,
      packetsSent: s.packetsSent,
      packetsReceived: r.packetsReceived,
      packetsLost: r.packetsLost,
      audioSent: ca.packetsSent,
      audioReceived: a.packetsReceived,
      sessionLatency: summarize(sessionLat),
      udpLatency: summarize(udpLat),
      firstKeyframeMs: firstKey,
    };
  } finally {
    rx.close();
    tx.close();
    viewer.close();
    camera.close();
    await shared.stop();
    shutdownSessions();
  }
}
