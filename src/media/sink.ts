/**
 * Sinks: a session's received RTP recorded into a file or played: ffmpeg /
 * ffplay listen for an RTSP client on 127.0.0.1 (rtsp.ts says why not UDP +
 * SDP file) and remux with -c copy (H.264 + Opus into Matroska, or MP4).
 * Or the RTP forwarded to local UDP ports for another program, with the SDP
 * file it reads.
 */
import { writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { PeerdialError } from '../errors.js';
import { parseRtp, startsH264Keyframe } from '../session/rtp.js';
import type { MediaTrack } from '../session/types.js';
import { checkBinary, FfmpegProcess, lastLine, type ExitInfo } from './ffmpeg.js';
import { bindUdp, freeTcpPort } from './loopback.js';
import { RtspPush, type RtspStream } from './rtsp.js';

export interface SinkStats {
  videoPackets: number;
  videoFrames: number;
  audioPackets: number;
  keyframes: number;
  bytes: number;
  startedAt: number;
  firstVideoAt?: number;
  firstKeyframeAt?: number;
}

export interface SinkOptions {
  ffmpegPath?: string;
  /** ffplay for play(). */
  ffplayPath?: string;
  /** Longest wait for the local ffmpeg/ffplay to listen; default 10 s. */
  startTimeoutMs?: number;
}

export interface RecordOptions extends SinkOptions {
  /** Container; default from the file name (.mp4 -> mp4, otherwise Matroska). */
  format?: 'matroska' | 'mp4';
  /**
   * Write into this open file instead of opening `file` by name: ffmpeg's -y
   * then cannot replace whatever a name points to (received recordings are
   * created by us, O_EXCL|O_NOFOLLOW, inside download_dir).
   */
  outputFd?: number;
}

/** A running sink: received RTP going into ffmpeg (a file) or ffplay. */
export interface MediaSink {
  readonly pid: number | undefined;
  stats(): SinkStats;
  /** Stop feeding, let ffmpeg finish its output, and wait for it. */
  stop(): Promise<ExitInfo & { stats: SinkStats }>;
  readonly exited: Promise<ExitInfo>;
}

function receiving(tracks: MediaTrack[]): MediaTrack[] {
  const picked: MediaTrack[] = [];
  for (const kind of ['video', 'audio'] as const) {
    const t = tracks.find((x) => x.kind === kind && (x.direction === 'recvonly' || x.direction === 'sendrecv'));
    if (t) picked.push(t);
  }
  return picked;
}

/** Packets kept while the local ffmpeg starts (about 3 s of video). */
const EARLY_LIMIT = 3000;

async function pushInto(
  binary: string,
  name: string,
  argsFor: (url: string) => string[],
  tracks: MediaTrack[],
  opts: SinkOptions,
  outputFd?: number,
): Promise<MediaSink> {
  await checkBinary(binary, name);
  const picked = receiving(tracks);
  if (picked.length === 0) throw new PeerdialError('USAGE', 'the session has no audio or video to receive');
  const stats: SinkStats = { videoPackets: 0, videoFrames: 0, audioPackets: 0, keyframes: 0, bytes: 0, startedAt: performance.now() };
  // Listen to the tracks at once: packets that arrive while ffmpeg starts are
  // kept, so the first key frame is not lost.
  let push: RtspPush | undefined;
  let early: Array<[number, Buffer]> | undefined = [];
  const unsubscribe: Array<() => void> = [];
  let lastKeyTs: number | undefined;
  picked.forEach((track, index) => {
    unsubscribe.push(
      track.onRtp((packet) => {
        const h = parseRtp(packet);
        if (!h) return;
        stats.bytes += packet.length;
        if (track.kind === 'video') {
          stats.videoPackets++;
          stats.firstVideoAt ??= performance.now();
          if (h.marker) stats.videoFrames++;
          if (h.timestamp !== lastKeyTs && startsH264Keyframe(packet)) {
            lastKeyTs = h.timestamp;
            stats.keyframes++;
            stats.firstKeyframeAt ??= performance.now();
          }
          // A viewer that starts mid-GOP asks for a key frame (an encoder
          // that can act on PLI answers; ffmpeg's short GOP bounds the wait).
          if (stats.videoPackets === 1 && !startsH264Keyframe(packet)) track.requestKeyframe();
        } else {
          stats.audioPackets++;
        }
        if (push) push.send(index, packet);
        else if (early && early.length < EARLY_LIMIT) early.push([index, packet]);
      }),
    );
  });
  const port = await freeTcpPort();
  const proc = new FfmpegProcess(binary, argsFor(`rtsp://127.0.0.1:${port}/peerdial`), outputFd);
  const streams: RtspStream[] = picked.map((t) => ({ kind: t.kind, codec: t.codec, payloadType: t.payloadType }));
  try {
    push = await RtspPush.open(port, streams, {
      timeoutMs: opts.startTimeoutMs ?? 10_000,
      isAlive: () => proc.isRunning,
    });
  } catch (err) {
    for (const u of unsubscribe) u();
    const info = await proc.stop();
    if (!proc.isRunning && info.stderr) {
      throw new PeerdialError('MEDIA_FAILED', `${name} could not start: ${lastLine(info.stderr)}`, { cause: err });
    }
    throw err;
  }
  for (const [index, packet] of early ?? []) push.send(index, packet);
  early = undefined;
  let stopping: Promise<ExitInfo & { stats: SinkStats }> | undefined;
  return {
    get pid() {
      return proc.pid;
    },
    stats: () => ({ ...stats }),
    exited: proc.exited,
    stop() {
      stopping ??= (async () => {
        for (const u of unsubscribe) u();
        push!.close();
        // The listener finishes the file when the RTSP connection ends.
        const timer = setTimeout(() => void proc.stop(), 5000);
        const info = await proc.exited;
        clearTimeout(timer);
        return { ...info, stats: { ...stats } };
      })();
      return stopping;
    },
  };
}

/**
 * Record a session's received audio/video into a file, remuxed without
 * re-encoding (H.264 + Opus; Matroska unless the name ends in .mp4).
 * Resolves once ffmpeg has accepted the streams.
 */
export function recordTo(file: string, tracks: MediaTrack[], opts: RecordOptions = {}): Promise<MediaSink> {
  const format = opts.format ?? (extname(file).toLowerCase() === '.mp4' ? 'mp4' : 'matroska');
  return pushInto(
    opts.ffmpegPath ?? 'ffmpeg',
    'ffmpeg',
    (url) => [
      '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
      '-rtsp_flags', 'listen', '-timeout', '30', '-i', url,
      '-map', '0', '-c', 'copy', '-f', format, opts.outputFd === undefined ? file : 'file:/dev/fd/3',
    ],
    tracks,
    opts,
    opts.outputFd,
  );
}

/** Play a session's received audio/video with ffplay (a window and the default audio output). */
export function play(tracks: MediaTrack[], opts: SinkOptions & { title?: string } = {}): Promise<MediaSink> {
  return pushInto(
    opts.ffplayPath ?? 'ffplay',
    'ffplay',
    (url) => [
      '-hide_banner', '-loglevel', 'error', '-autoexit',
      '-fflags', 'nobuffer', '-flags', 'low_delay', '-framedrop',
      '-window_title', opts.title ?? 'peerdial',
      '-rtsp_flags', 'listen', '-timeout', '30', '-i', url,
    ],
    tracks,
    opts,
  );
}

/**
 * Forward a session's received RTP to UDP ports on 127.0.0.1 for another
 * program, and write the SDP file that program reads (`sdpFile`).
 */
export async function forwardTo(
  tracks: MediaTrack[],
  ports: { video?: number; audio?: number },
  sdpFile?: string,
): Promise<{ stop(): void; stats(): { packets: number } }> {
  const picked = receiving(tracks).filter((t) => ports[t.kind] !== undefined);
  if (picked.length === 0) throw new PeerdialError('USAGE', 'nothing to forward: no received track matches the ports');
  const socket = await bindUdp();
  let packets = 0;
  const lines = ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=peerdial', 'c=IN IP4 127.0.0.1', 't=0 0'];
  const unsubscribe = picked.map((t) => {
    const pt = t.payloadType;
    lines.push(`m=${t.kind} ${ports[t.kind]} RTP/AVP ${pt}`);
    if (t.codec === 'H264') lines.push(`a=rtpmap:${pt} H264/90000`, `a=fmtp:${pt} packetization-mode=1`);
    else lines.push(`a=rtpmap:${pt} opus/48000/2`);
    return t.onRtp((p) => {
      packets++;
      socket.send(p, ports[t.kind]!, '127.0.0.1');
    });
  });
  if (sdpFile) await writeFile(sdpFile, lines.join('\r\n') + '\r\n');
  return {
    stop() {
      for (const u of unsubscribe) u();
      socket.close();
    },
    stats: () => ({ packets }),
  };
}
