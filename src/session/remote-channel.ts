/** A Channel whose DataChannel lives in a session host process (remote.ts). */
import { PeerdialError } from '../errors.js';
import { deliver } from './channel.js';
import type { HostSender } from './host-process.js';
import { fromWireError, type ChannelInfo, type WireError } from './host-protocol.js';
import type { Channel } from './types.js';

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** A Channel whose DataChannel lives in a session host. */
export class RemoteChannel implements Channel {
  readonly label: string;
  readonly protocol: string;
  readonly cid: number;
  /** The session it belongs to. */
  readonly sid: number;
  readonly #host: HostSender;
  readonly #lowWaterMark: number;
  #max: number;
  #closed = false;
  #closeReason = 'the channel is closed';
  #seq = 0;
  /** Bytes handed to the host and not yet acknowledged. */
  #inFlight = 0;
  readonly #sizes = new Map<number, number>();
  #waiters: Waiter[] = [];
  #late: PeerdialError | undefined;
  #messageCbs: Array<(data: Buffer | string) => void> = [];
  #closeCbs: Array<() => void> = [];
  #early: Array<Buffer | string> = [];

  constructor(host: HostSender, sid: number, info: ChannelInfo, lowWaterMark: number) {
    this.#host = host;
    this.sid = sid;
    this.cid = info.cid;
    this.label = info.label;
    this.protocol = info.protocol;
    this.#max = info.maxMessageSize;
    this.#lowWaterMark = lowWaterMark;
  }

  get isOpen(): boolean {
    return !this.#closed;
  }

  get maxMessageSize(): number {
    return this.#closed ? 0 : this.#max;
  }

  send(data: Uint8Array | string): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    if (this.#late) {
      const e = this.#late;
      this.#late = undefined;
      return Promise.reject(e);
    }
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    if (this.#max > 0 && size > this.#max) {
      return Promise.reject(
        new PeerdialError('TRANSFER_FAILED', `message of ${size} bytes on channel "${this.label}" is larger than the peer accepts (${this.#max} bytes)`, {
          hint: `split the data into messages of at most ${this.#max} bytes`,
        }),
      );
    }
    const seq = ++this.#seq;
    this.#sizes.set(seq, size);
    this.#inFlight += size;
    const payload = typeof data === 'string' || Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.#host.send({ op: 'send', cid: this.cid, seq, data: payload });
    if (this.#inFlight <= this.#lowWaterMark) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  onMessage(cb: (data: Buffer | string) => void): void {
    this.#messageCbs.push(cb);
    if (this.#early.length > 0) for (const data of this.#early.splice(0)) deliver(cb, data);
  }

  onClose(cb: () => void): void {
    if (this.#closed) queueMicrotask(() => deliver(cb));
    else this.#closeCbs.push(cb);
  }

  close(): void {
    if (this.#closed) return;
    this.#host.send({ op: 'close-channel', cid: this.cid });
    this.markClosed('the channel was closed');
  }

  received(data: Buffer | string): void {
    if (this.#closed) return;
    if (this.#messageCbs.length === 0) this.#early.push(data);
    else for (const cb of this.#messageCbs) deliver(cb, data);
  }

  acked(seq: number): void {
    this.#inFlight -= this.#sizes.get(seq) ?? 0;
    this.#sizes.delete(seq);
    if (this.#inFlight <= this.#lowWaterMark) for (const w of this.#waiters.splice(0)) w.resolve();
  }

  ackFailed(seq: number, e: WireError): void {
    this.#inFlight -= this.#sizes.get(seq) ?? 0;
    this.#sizes.delete(seq);
    const err = fromWireError(e);
    const waiting = this.#waiters.splice(0);
    if (waiting.length > 0) for (const w of waiting) w.reject(err);
    else this.#late = err;
  }

  markClosed(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    const err = this.#closedError();
    for (const w of this.#waiters.splice(0)) w.reject(err);
    for (const cb of this.#closeCbs.splice(0)) deliver(cb);
  }

  #closedError(): PeerdialError {
    return new PeerdialError('SESSION_CLOSED', `channel "${this.label}" is closed: ${this.#closeReason}`);
  }
}
