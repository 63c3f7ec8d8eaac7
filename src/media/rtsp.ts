/**
 * A minimal RTSP "record" client (RFC 2326 ANNOUNCE/SETUP/RECORD with RTP
 * interleaved on the TCP connection), to push a session's RTP into a local
 * ffmpeg or ffplay started with `-rtsp_flags listen`.
 *
 * Why not RTP over UDP with an SDP file: ffmpeg 5.1's SDP demuxer binds its
 * UDP ports on every interface (0.0.0.0) and offers no option to bind
 * 127.0.0.1, so anybody on the network could inject packets into a
 * recording. The RTSP listener binds the TCP address it is given
 * (127.0.0.1), and TCP loses nothing.
 */
import { Socket, connect } from 'node:net';
import { PeerdialError } from '../errors.js';
import type { MediaKind } from '../session/types.js';

export interface RtspStream {
  kind: MediaKind;
  codec: 'H264' | 'opus';
  payloadType: number;
}

/** The SDP announced to the listener: one section per stream, control `streamid=N`. */
export function announceSdp(streams: RtspStream[]): string {
  const lines = ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=peerdial', 'c=IN IP4 127.0.0.1', 't=0 0', 'a=control:*'];
  streams.forEach((s, i) => {
    lines.push(`m=${s.kind} 0 RTP/AVP ${s.payloadType}`);
    if (s.codec === 'H264') {
      lines.push(`a=rtpmap:${s.payloadType} H264/90000`, `a=fmtp:${s.payloadType} packetization-mode=1`);
    } else {
      lines.push(`a=rtpmap:${s.payloadType} opus/48000/2`, `a=fmtp:${s.payloadType} sprop-stereo=1`);
    }
    lines.push(`a=control:streamid=${i}`);
  });
  return lines.join('\r\n') + '\r\n';
}

interface Response {
  status: number;
  headers: Map<string, string>;
}

export class RtspPush {
  readonly #socket: Socket;
  readonly #url: string;
  #buf: Buffer = Buffer.alloc(0);
  #cseq = 0;
  #pending: { resolve: (r: Response) => void; reject: (e: unknown) => void } | undefined;
  #closed = false;
  #session = '';
  bytesSent = 0;

  private constructor(socket: Socket, url: string) {
    this.#socket = socket;
    this.#url = url;
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.#closed = true;
      this.#pending?.reject(new PeerdialError('MEDIA_FAILED', 'the media player/recorder closed the connection'));
      this.#pending = undefined;
    });
  }

  /**
   * Connect to a listener at 127.0.0.1:port (retrying while it starts) and
   * set up the streams. Interleaved channel 2*i carries stream i's RTP.
   */
  static async open(
    port: number,
    streams: RtspStream[],
    opts: { timeoutMs?: number; isAlive?: () => boolean } = {},
  ): Promise<RtspPush> {
    const deadline = performance.now() + (opts.timeoutMs ?? 10_000);
    let socket: Socket | undefined;
    for (let delay = 20; ; delay = Math.min(delay * 2, 200)) {
      try {
        socket = await connectOnce(port);
        break;
      } catch (err) {
        if (performance.now() > deadline || (opts.isAlive && !opts.isAlive())) {
          throw new PeerdialError('MEDIA_FAILED', `could not reach the local ffmpeg on 127.0.0.1:${port}`, { cause: err });
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    socket.setNoDelay(true);
    const url = `rtsp://127.0.0.1:${port}/peerdial`;
    const push = new RtspPush(socket, url);
    try {
      const sdp = announceSdp(streams);
      await push.#request('ANNOUNCE', url, { 'Content-Type': 'application/sdp' }, sdp);
      for (let i = 0; i < streams.length; i++) {
        const headers: Record<string, string> = {
          Transport: `RTP/AVP/TCP;unicast;interleaved=${2 * i}-${2 * i + 1};mode=record`,
        };
        if (push.#session) headers['Session'] = push.#session;
        const r = await push.#request('SETUP', `${url}/streamid=${i}`, headers);
        push.#session ||= (r.headers.get('session') ?? '').split(';')[0]!.trim();
      }
      await push.#request('RECORD', url, { Session: push.#session, Range: 'npt=0.000-' });
    } catch (err) {
      push.close();
      throw err;
    }
    return push;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Send one RTP packet of stream `index`. False once the connection is gone. */
  send(index: number, packet: Uint8Array): boolean {
    if (this.#closed || packet.length > 0xffff) return false;
    const head = Buffer.from([0x24, 2 * index, packet.length >> 8, packet.length & 0xff]);
    this.#socket.write(head);
    this.#socket.write(packet);
    this.bytesSent += packet.length + 4;
    return true;
  }

  /** TEARDOWN and close: the listener then finishes its output and exits. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#socket.write(this.#format('TEARDOWN', this.#url, this.#session ? { Session: this.#session } : {}));
    } catch {
      // gone already
    }
    this.#socket.end();
  }

  #format(method: string, url: string, headers: Record<string, string>, body = ''): string {
    const lines = [`${method} ${url} RTSP/1.0`, `CSeq: ${++this.#cseq}`, 'User-Agent: peerdial'];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    if (body) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    return lines.join('\r\n') + '\r\n\r\n' + body;
  }

  #request(method: string, url: string, headers: Record<string, string>, body = ''): Promise<Response> {
    if (this.#closed) return Promise.reject(new PeerdialError('MEDIA_FAILED', 'the RTSP connection is closed'));
    return new Promise<Response>((resolve, reject) => {
      this.#pending = {
        resolve: (r) => {
          if (r.status >= 200 && r.status < 300) resolve(r);
          else reject(new PeerdialError('MEDIA_FAILED', `the local ffmpeg refused ${method} (RTSP ${r.status})`));
        },
        reject,
      };
      this.#socket.write(this.#format(method, url, headers, body));
    });
  }

  #onData(d: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, d]) : d;
    for (;;) {
      if (this.#buf.length === 0) return;
      if (this.#buf[0] === 0x24) {
        // Interleaved data from the listener (its RTCP receiver reports): skip.
        if (this.#buf.length < 4) return;
        const len = this.#buf.readUInt16BE(2);
        if (this.#buf.length < 4 + len) return;
        this.#buf = this.#buf.subarray(4 + len);
        continue;
      }
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.#buf.subarray(0, end).toString('latin1').split('\r\n');
      const headers = new Map<string, string>();
      for (const line of head.slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      const bodyLen = Number(headers.get('content-length') ?? 0);
      if (this.#buf.length < end + 4 + bodyLen) return;
      this.#buf = this.#buf.subarray(end + 4 + bodyLen);
      const status = Number(/^RTSP\/1\.0 (\d{3})/.exec(head[0] ?? '')?.[1] ?? 0);
      const p = this.#pending;
      this.#pending = undefined;
      p?.resolve({ status, headers });
    }
  }
}

function connectOnce(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}
