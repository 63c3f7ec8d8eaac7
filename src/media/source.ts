/**
 * Sources: ffmpeg captures (test pattern, V4L2 camera, ALSA/PulseAudio, a
 * file) and encodes H.264 (libx264 ultrafast/zerolatency, constrained
 * baseline, no B-frames, SPS/PPS before every key frame) and Opus to RTP on
 * UDP ports this process bound on 127.0.0.1 (ffmpeg's own sockets are bound
 * to 127.0.0.1 too). Sessions only carry RTP; nothing here touches
 * node-datachannel.
 *
 * Picture loss: the ffmpeg CLI cannot be told to make a key frame when a
 * viewer sends a PLI, so the key-frame interval is short (1 s by default,
 * `-g`/`-keyint_min` = fps) and a late viewer waits at most that long;
 * RtpFanout (fanout.ts) also replays the current GOP to a viewer that joins,
 * so it gets a picture at once.
 */
import type { Socket as UdpSocket } from 'node:dgram';
import { PeerdialError } from '../errors.js';
import { defaultMediaSpec } from '../session/tracks.js';
import { isRtcp, parseRtp, startsH264Keyframe } from '../session/rtp.js';
import type { MediaKind, MediaSpec } from '../session/types.js';
import { checkBinary, FfmpegProcess, lastLine, type ExitInfo } from './ffmpeg.js';
import { bindUdp } from './loopback.js';

export type VideoInput =
  | { kind: 'test' }
  | { kind: 'v4l2'; device: string }
  | { kind: 'file'; path: string; loop?: boolean };

export type AudioInput =
  | { kind: 'test'; frequency?: number }
  | { kind: 'alsa'; device?: string }
  | { kind: 'pulse'; device?: string }
  | { kind: 'file'; path: string; loop?: boolean };

export interface SourceOptions {
  video?: VideoInput;
  audio?: AudioInput;
  /** Payload types and SSRCs of the RTP; default: defaultMediaSpec (96/111, random SSRCs). */
  spec?: MediaSpec;
  width?: number;
  height?: number;
  fps?: number;
  /** Video bit rate, e.g. '800k'. */
  videoBitrate?: string;
  audioBitrate?: string;
  /** Seconds between key frames; default 1 (late viewers wait at most this long). */
  keyframeIntervalS?: number;
  ffmpegPath?: string;
  /** Longest wait for the first RTP packet of each stream; default 10 s. */
  startTimeoutMs?: number;
}

export interface SourceStats {
  packets: number;
  bytes: number;
  /** Video: packets with the marker bit (frames); audio: packets. */
  frames: number;
  keyframes: number;
  rtcp: number;
}

/** A running encoder: RTP per kind, read from the UDP ports ffmpeg sends to. */
export interface MediaSource {
  readonly spec: MediaSpec;
  /** The local UDP ports (127.0.0.1) ffmpeg sends RTP to. */
  readonly ports: { video?: number; audio?: number };
  readonly pid: number | undefined;
  readonly isRunning: boolean;
  /** performance.now() at spawn and at the first RTP packet. */
  readonly startedAt: number;
  readonly firstPacketAt: number | undefined;
  onRtp(kind: MediaKind, cb: (packet: Buffer) => void): () => void;
  /**
   * Video packets from the last key frame on, kept since the first packet (so
   * that the key frame that arrived before anyone listened is not lost).
   */
  recentGop(): Buffer[];
  stats(): { video: SourceStats; audio: SourceStats };
  readonly exited: Promise<ExitInfo>;
  stop(): Promise<ExitInfo>;
}

/** The ffmpeg arguments of a source (pure). */
export function sourceArgs(
  opts: SourceOptions,
  spec: MediaSpec,
  ports: { video?: number; audio?: number },
): string[] {
  const fps = opts.fps ?? 30;
  const width = opts.width ?? 640;
  const height = opts.height ?? 360;
  const gop = Math.max(1, Math.round(fps * (opts.keyframeIntervalS ?? 1)));
  const args = ['-hide_banner', '-loglevel', 'error', '-nostdin'];
  const out: string[] = [];
  let input = 0;
  const rtpUrl = (port: number) => `rtp://127.0.0.1:${port}?localaddr=127.0.0.1&rtcpport=${port}&pkt_size=1200`;
  if (opts.video && spec.video && ports.video !== undefined) {
    const v = opts.video;
    if (v.kind === 'test') args.push('-re', '-f', 'lavfi', '-i', `testsrc=size=${width}x${height}:rate=${fps}`);
    else if (v.kind === 'v4l2') args.push('-f', 'v4l2', '-framerate', String(fps), '-video_size', `${width}x${height}`, '-i', v.device);
    else args.push('-re', ...(v.loop ? ['-stream_loop', '-1'] : []), '-i', v.path);
    out.push(
      '-map', `${input++}:v:0`,
      '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p',
      '-vf', `scale=${width}:${height},fps=${fps}`,
      '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0', '-bf', '0',
      '-x264-params', 'repeat-headers=1',
      '-b:v', opts.videoBitrate ?? '800k', '-maxrate', opts.videoBitrate ?? '800k', '-bufsize', opts.videoBitrate ?? '800k',
      '-an', '-payload_type', String(spec.video.payloadType), '-ssrc', String(spec.video.ssrc | 0),
      '-f', 'rtp', rtpUrl(ports.video),
    );
  }
  if (opts.audio && spec.audio && ports.audio !== undefined) {
    const a = opts.audio;
    if (a.kind === 'test') args.push('-re', '-f', 'lavfi', '-i', `sine=frequency=${a.frequency ?? 440}:sample_rate=48000`);
    else if (a.kind === 'alsa') args.push('-f', 'alsa', '-i', a.device ?? 'default');
    else if (a.kind === 'pulse') args.push('-f', 'pulse', '-i', a.device ?? 'default');
    else args.push('-re', ...(a.loop ? ['-stream_loop', '-1'] : []), '-i', a.path);
    out.push(
      '-map', `${input++}:a:0`,
      '-c:a', 'libopus', '-application', 'lowdelay', '-frame_duration', '20', '-b:a', opts.audioBitrate ?? '48k',
      '-ar', '48000', '-ac', '2',
      '-vn', '-payload_type', String(spec.audio.payloadType), '-ssrc', String(spec.audio.ssrc | 0),
      '-f', 'rtp', rtpUrl(ports.audio),
    );
  }
  return [...args, ...out];
}

/** Most packets kept by recentGop() (about 2 s of 1.5 Mbit/s video). */
const GOP_LIMIT = 400;

function emptySourceStats(): SourceStats {
  return { packets: 0, bytes: 0, frames: 0, keyframes: 0, rtcp: 0 };
}

/**
 * Start an encoder: ffmpeg reads the inputs and sends RTP to local UDP
 * ports; resolves once the first RTP packet of every stream has arrived.
 * Rejects with MISSING_PACKAGE (no ffmpeg), MEDIA_FAILED (ffmpeg exited,
 * e.g. no such camera, or no packet in time), USAGE (no input).
 */
export async function startSource(opts: SourceOptions): Promise<MediaSource> {
  if (!opts.video && !opts.audio) throw new PeerdialError('USAGE', 'a media source needs a video or an audio input');
  const ffmpeg = opts.ffmpegPath ?? 'ffmpeg';
  await checkBinary(ffmpeg);
  const spec = opts.spec ?? defaultMediaSpec({ video: !!opts.video, audio: !!opts.audio }, 'sendonly');
  const sockets: Partial<Record<MediaKind, UdpSocket>> = {};
  const ports: { video?: number; audio?: number } = {};
  const kinds: MediaKind[] = [];
  if (opts.video && spec.video) kinds.push('video');
  if (opts.audio && spec.audio) kinds.push('audio');
  if (kinds.length === 0) throw new PeerdialError('USAGE', 'the media spec has no section for the source\'s inputs');
  for (const kind of kinds) {
    const s = await bindUdp();
    sockets[kind] = s;
    ports[kind] = s.address().port;
  }
  const stats = { video: emptySourceStats(), audio: emptySourceStats() };
  const listeners = { video: new Set<(p: Buffer) => void>(), audio: new Set<(p: Buffer) => void>() };
  const startedAt = performance.now();
  let firstPacketAt: number | undefined;
  const seen = new Set<MediaKind>();
  let onFirst: (() => void) | undefined;
  let gop: Buffer[] = [];
  let gopTimestamp: number | undefined;
  const proc = new FfmpegProcess(ffmpeg, sourceArgs(opts, spec, ports));
  for (const kind of kinds) {
    sockets[kind]!.on('message', (packet: Buffer) => {
      const st = stats[kind];
      if (isRtcp(packet)) {
        st.rtcp++; // ffmpeg's sender reports: the session makes its own RTCP
        return;
      }
      const h = parseRtp(packet);
      if (!h) return;
      st.packets++;
      st.bytes += packet.length;
      if (kind === 'audio' || h.marker) st.frames++;
      if (kind === 'video') {
        if (h.timestamp !== gopTimestamp && startsH264Keyframe(packet)) {
          st.keyframes++;
          gop = [];
          gopTimestamp = h.timestamp;
        }
        if (gopTimestamp !== undefined && gop.length < GOP_LIMIT) gop.push(packet);
      }
      firstPacketAt ??= performance.now();
      if (!seen.has(kind)) {
        seen.add(kind);
        onFirst?.();
      }
      for (const cb of listeners[kind]) {
        try {
          cb(packet);
        } catch (err) {
          setImmediate(() => {
            throw err;
          });
        }
      }
    });
  }
  const closeSockets = () => {
    for (const s of Object.values(sockets)) {
      try {
        s.close();
      } catch {
        // closed
      }
    }
  };
  void proc.exited.then(closeSockets);

  const source: MediaSource = {
    spec,
    ports,
    get pid() {
      return proc.pid;
    },
    get isRunning() {
      return proc.isRunning;
    },
    startedAt,
    get firstPacketAt() {
      return firstPacketAt;
    },
    onRtp(kind, cb) {
      listeners[kind].add(cb);
      return () => listeners[kind].delete(cb);
    },
    recentGop: () => [...gop],
    stats: () => ({ video: { ...stats.video }, audio: { ...stats.audio } }),
    exited: proc.exited,
    stop: () => proc.stop(),
  };

  // Wait for the first packet of every stream, or ffmpeg's death.
  const timeoutMs = opts.startTimeoutMs ?? 10_000;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new PeerdialError('MEDIA_FAILED', `the encoder sent no RTP within ${Math.round(timeoutMs / 1000)} s`)),
        timeoutMs,
      );
      onFirst = () => {
        if (seen.size === kinds.length) {
          clearTimeout(timer);
          resolve();
        }
      };
      void proc.exited.then((info) => {
        clearTimeout(timer);
        reject(
          new PeerdialError('MEDIA_FAILED', `ffmpeg stopped before sending media: ${lastLine(info.stderr) || `exit ${info.code}`}`, {
            hint: 'check the source (camera device, microphone, file) with ffmpeg by hand',
          }),
        );
      });
    });
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return source;
}
