/**
 * The edges to ffmpeg (Debian package `ffmpeg`, which also brings ffplay):
 * capture + encoding into RTP (startSource), and recording / playback of a
 * session's received RTP (recordTo, play, forwardTo). Sessions only carry
 * RTP; nothing here touches node-datachannel.
 *
 * - Sources: ffmpeg encodes H.264 (libx264 ultrafast/zerolatency,
 *   constrained baseline, no B-frames, SPS/PPS before every key frame) and
 *   Opus to RTP on UDP ports this process bound on 127.0.0.1 (ffmpeg's own
 *   sockets are bound to 127.0.0.1 too). Picture loss: the ffmpeg CLI cannot
 *   be told to make a key frame when a viewer sends a PLI, so the key-frame
 *   interval is short (1 s by default, `-g`/`-keyint_min` = fps) and a late
 *   viewer waits at most that long; RtpFanout (fanout.ts) also replays the
 *   current GOP to a viewer that joins, so it gets a picture at once.
 * - Sinks: ffmpeg/ffplay listen for an RTSP client on 127.0.0.1 (rtsp.ts
 *   says why not UDP + SDP file) and remux with -c copy (H.264 + Opus into
 *   Matroska, or MP4).
 * - A missing binary is PeerdialError('MISSING_PACKAGE') with the apt hint.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { type Socket as UdpSocket, createSocket } from 'node:dgram';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { extname } from 'node:path';
import { PeerdialError } from '../errors.js';
import { defaultMediaSpec } from '../session/tracks.js';
import { isRtcp, parseRtp, startsH264Keyframe } from '../session/rtp.js';
import type { MediaKind, MediaSpec, MediaTrack } from '../session/types.js';
import { RtspPush, type RtspStream } from './rtsp.js';

const APT_HINT = 'install it with: sudo apt install ffmpeg (the Debian package brings ffmpeg, ffprobe and ffplay)';

// ---------------------------------------------------------------------------
// Binaries and processes

const checked = new Map<string, Promise<void>>();

/**
 * Check that a binary runs (`<path> -version`); PeerdialError('MISSING_PACKAGE')
 * when it is not installed. Cached per path.
 */
export function checkBinary(path: string, name = 'ffmpeg'): Promise<void> {
  let p = checked.get(path);
  if (!p) {
    p = new Promise<void>((resolve, reject) => {
      let child: ChildProcess;
      try {
        child = spawn(path, ['-hide_banner', '-version'], { stdio: 'ignore' });
      } catch (err) {
        reject(missing(path, name, err));
        return;
      }
      child.once('error', (err) => reject(missing(path, name, err)));
      child.once('exit', (code) => {
        if (code === 0) resolve();
        else reject(missing(path, name, new Error(`${path} -version exited with ${code}`)));
      });
    });
    checked.set(path, p);
    p.catch(() => checked.delete(path));
  }
  return p;
}

function missing(path: string, name: string, cause: unknown): PeerdialError {
  return new PeerdialError('MISSING_PACKAGE', `${name} is needed for audio and video but ${path} could not be run`, {
    hint: APT_HINT,
    cause,
  });
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines ffmpeg wrote to stderr. */
  stderr: string;
}

/** One ffmpeg/ffplay child: stderr tail kept, exit awaited, stopped gently (SIGTERM, then SIGKILL). */
export class FfmpegProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<ExitInfo>;
  #stderr = '';
  #running = true;

  /** `outputFd`: an open file the child gets as its fd 3 (written as file:/dev/fd/3). */
  constructor(path: string, args: string[], outputFd?: number) {
    this.child = spawn(path, args, { stdio: outputFd === undefined ? ['ignore', 'ignore', 'pipe'] : ['ignore', 'ignore', 'pipe', outputFd] });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (d: string) => {
      this.#stderr = (this.#stderr + d).slice(-4000);
    });
    this.exited = new Promise<ExitInfo>((resolve) => {
      this.child.once('error', (err) => {
        this.#running = false;
        resolve({ code: null, signal: null, stderr: `${this.#stderr}${String(err)}` });
      });
      this.child.once('exit', (code, signal) => {
        this.#running = false;
        resolve({ code, signal, stderr: this.#stderr.trim() });
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get isRunning(): boolean {
    return this.#running;
  }

  /** SIGTERM (ffmpeg finishes its output file), SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<ExitInfo> {
    if (this.#running) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      const info = await this.exited;
      clearTimeout(timer);
      return info;
    }
    return this.exited;
  }
}

// ---------------------------------------------------------------------------
// Sources

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

function bindUdp(): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      s.removeListener('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
  });
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

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}

// ---------------------------------------------------------------------------
// Sinks

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

function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
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
