/** A MediaTrack whose Track lives in a session host process (remote.ts); its counters are kept here. */
import type { HostSender } from './host-process.js';
import type { TrackInfo } from './host-protocol.js';
import { isRtcp } from './rtp.js';
import { TrackBase } from './track-base.js';
import type { MediaDirection } from './types.js';


const sends = (d: MediaDirection) => d === 'sendonly' || d === 'sendrecv';
const receives = (d: MediaDirection) => d === 'recvonly' || d === 'sendrecv';

/** A MediaTrack whose Track lives in a session host; its counters are kept here. */
export class RemoteTrack extends TrackBase {
  readonly tid: number;
  readonly #host: HostSender;
  #open: boolean;

  constructor(host: HostSender, info: TrackInfo) {
    super(info);
    this.#host = host;
    this.tid = info.tid;
    this.#open = info.isOpen;
  }

  get isOpen(): boolean {
    return this.#open && !this.closed;
  }

  sendRtp(packet: Uint8Array): boolean {
    if (!this.isOpen || !sends(this.direction_) || isRtcp(packet) || packet.length < 12) {
      this.counters.dropped++;
      return false;
    }
    const buf = Buffer.isBuffer(packet) ? packet : Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength);
    this.#host.send({ op: 'rtp', tid: this.tid, packet: buf });
    this.countSent(buf);
    return true;
  }

  requestKeyframe(): boolean {
    if (!this.isOpen || !receives(this.direction_)) return false;
    this.#host.send({ op: 'keyframe', tid: this.tid });
    this.counters.keyframeRequestsSent++;
    return true;
  }

  setDirection(direction: MediaDirection): void {
    this.direction_ = direction;
  }

  opened(): void {
    if (this.closed || this.#open) return;
    this.#open = true;
    this.fireOpen();
  }

  rtcp(packet: Buffer): void {
    if (!this.closed) this.receivedRtcp(packet);
  }

  rtp(packet: Buffer): void {
    if (!this.closed) this.receivedRtp(packet);
  }
}
