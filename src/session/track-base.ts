/**
 * What every MediaTrack shares, wherever its native track lives: the
 * listeners, the counters (TrackStats, kept from the RTP seen) and the
 * close. SessionTrack (tracks.ts) holds a node-datachannel Track in this
 * process; RemoteTrack (remote.ts) one in a session process. No
 * node-datachannel import here: the agent loads this without it.
 */
import { deliver } from './channel.js';
import { isKeyframeRequest, parseRtp, sequenceDelta, startsH264Keyframe } from './rtp.js';
import type { MediaDirection, MediaKind, MediaTrack, TrackStats } from './types.js';

/** The fixed facts of a track. */
export interface TrackFacts {
  kind: MediaKind;
  mid: string;
  codec: 'H264' | 'opus';
  payloadType: number;
  clockRate: number;
  ssrc: number | undefined;
  direction: MediaDirection;
}

export abstract class TrackBase implements MediaTrack {
  readonly kind: MediaKind;
  readonly mid: string;
  readonly codec: 'H264' | 'opus';
  readonly payloadType: number;
  readonly clockRate: number;
  readonly ssrc: number | undefined;
  protected direction_: MediaDirection;
  protected closed = false;
  #closeReason = '';
  #rtpCbs = new Set<(p: Buffer) => void>();
  #rtcpCbs = new Set<(p: Buffer) => void>();
  #keyCbs = new Set<() => void>();
  #openCbs: Array<() => void> = [];
  #closeCbs: Array<(reason: string) => void> = [];
  protected readonly counters: TrackStats = {
    packetsSent: 0,
    bytesSent: 0,
    framesSent: 0,
    dropped: 0,
    packetsReceived: 0,
    bytesReceived: 0,
    framesReceived: 0,
    keyframesReceived: 0,
    packetsLost: 0,
    keyframeRequestsSent: 0,
    keyframeRequestsReceived: 0,
  };
  #lastSeq: number | undefined;
  #lastKeyTimestamp: number | undefined;

  constructor(facts: TrackFacts) {
    this.kind = facts.kind;
    this.mid = facts.mid;
    this.codec = facts.codec;
    this.payloadType = facts.payloadType;
    this.clockRate = facts.clockRate;
    this.ssrc = facts.ssrc;
    this.direction_ = facts.direction;
  }

  abstract get isOpen(): boolean;
  abstract sendRtp(packet: Uint8Array): boolean;
  abstract requestKeyframe(): boolean;

  get direction(): MediaDirection {
    return this.direction_;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  onRtp(cb: (packet: Buffer) => void): () => void {
    const own = (p: Buffer) => cb(p);
    this.#rtpCbs.add(own);
    return () => this.#rtpCbs.delete(own);
  }

  onRtcp(cb: (packet: Buffer) => void): () => void {
    const own = (p: Buffer) => cb(p);
    this.#rtcpCbs.add(own);
    return () => this.#rtcpCbs.delete(own);
  }

  onKeyframeRequest(cb: () => void): () => void {
    const own = () => cb();
    this.#keyCbs.add(own);
    return () => this.#keyCbs.delete(own);
  }

  onOpen(cb: () => void): void {
    if (this.isOpen) queueMicrotask(() => deliver(cb));
    else if (!this.closed) this.#openCbs.push(cb);
  }

  onClose(cb: (reason: string) => void): void {
    if (this.closed) queueMicrotask(() => deliver(cb, this.#closeReason));
    else this.#closeCbs.push(cb);
  }

  stats(): TrackStats {
    return { ...this.counters };
  }

  /** The session closed (or the track failed): no more packets either way. */
  markClosed(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.#closeReason = reason;
    this.#openCbs = [];
    this.#rtpCbs.clear();
    this.#rtcpCbs.clear();
    this.#keyCbs.clear();
    for (const cb of this.#closeCbs.splice(0)) deliver(cb, reason);
  }

  /** The track became usable (isOpen is true now): tell those waiting. */
  protected fireOpen(): void {
    for (const cb of this.#openCbs.splice(0)) deliver(cb);
  }

  /** An RTP packet went out: count it. */
  protected countSent(buf: Uint8Array): void {
    const s = this.counters;
    s.packetsSent++;
    s.bytesSent += buf.length;
    if (this.kind === 'audio' || (buf[1]! & 0x80) !== 0) s.framesSent++;
  }

  /** An RTCP packet came in: picture-loss requests counted, listeners told. */
  protected receivedRtcp(packet: Buffer): void {
    if (isKeyframeRequest(packet)) {
      this.counters.keyframeRequestsReceived++;
      for (const cb of this.#keyCbs) deliver(cb);
    }
    for (const cb of this.#rtcpCbs) deliver(cb, packet);
  }

  /** An RTP packet came in: counted (loss, frames, key frames), listeners told. */
  protected receivedRtp(packet: Buffer): void {
    const h = parseRtp(packet);
    if (!h) return;
    const s = this.counters;
    const now = performance.now();
    s.packetsReceived++;
    s.bytesReceived += packet.length;
    s.firstPacketAt ??= now;
    if (this.#lastSeq !== undefined) {
      const delta = sequenceDelta(h.sequence, this.#lastSeq);
      if (delta > 1) s.packetsLost += delta - 1;
      if (delta > 0) this.#lastSeq = h.sequence;
    } else {
      this.#lastSeq = h.sequence;
    }
    if (this.kind === 'audio') s.framesReceived++;
    else {
      if (h.marker) s.framesReceived++;
      if (h.timestamp !== this.#lastKeyTimestamp && startsH264Keyframe(packet)) {
        this.#lastKeyTimestamp = h.timestamp;
        s.keyframesReceived++;
        s.firstKeyframeAt ??= now;
      }
    }
    for (const cb of this.#rtpCbs) deliver(cb, packet);
  }
}
