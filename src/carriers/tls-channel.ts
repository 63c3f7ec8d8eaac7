/**
 * A Channel over a TLS socket: the TLS lane's carrier (tls-lane.ts). Every
 * carrier works on it unchanged: file, pipe and forward see messages, as on
 * a DataChannel.
 *
 * Wire: each message is a 4-byte big-endian header, then the message. The
 * header's top bit says text (1) or binary (0); the other 31 bits are the
 * length, at most LANE_MAX_MESSAGE.
 *
 * Receiving is paced: an inbox (channel-inbox.ts) that calls pace() and
 * taken() lets the socket read ahead only so many messages; the sender then
 * waits on TCP's own flow control instead of the receiver's memory growing.
 *
 * close() is graceful: the socket is ended (what was written still arrives)
 * and destroyed only if the peer does not end its side in time.
 */
import type { TLSSocket } from 'node:tls';
import { PeerdialError } from '../errors.js';
import type { Channel } from '../session/types.js';

/** Largest message on a lane. */
export const LANE_MAX_MESSAGE = 256 * 1024;
/** Messages read ahead of the consumer before the socket is paused. */
const READ_AHEAD = 64;
/** How long a closed lane waits for the peer to end its side. */
const CLOSE_GRACE_MS = 10_000;
const TEXT_FLAG = 0x8000_0000;
/** send() resolves while less than this is waiting in the socket. */
const SEND_BUFFER = 1024 * 1024;

export class TlsChannel implements Channel {
  readonly label: string;
  readonly protocol: string;
  readonly maxMessageSize = LANE_MAX_MESSAGE;
  readonly #socket: TLSSocket;
  #closed = false;
  #closeReason = 'the channel was closed';
  #messageCbs: Array<(data: Buffer | string) => void> = [];
  #closeCbs: Array<() => void> = [];
  #early: Array<Buffer | string> = [];
  // receive state: the bytes read but not yet cut into messages
  #chunks: Buffer[] = [];
  #have = 0;
  #need = -1;
  #text = false;
  // pacing
  #paced = false;
  #outstanding = 0;
  #paused = false;
  readonly #ended: Promise<void>;

  constructor(socket: TLSSocket, label: string, protocol = '', leftover?: Buffer) {
    this.#socket = socket;
    this.label = label;
    this.protocol = protocol;
    socket.setNoDelay(true);
    this.#ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#markClosed(`lane error: ${err.message}`));
    socket.on('close', () => this.#markClosed('the peer closed the lane'));
    if (leftover !== undefined && leftover.length > 0) this.#onData(leftover);
    // the handshake left the socket paused
    socket.resume();
  }

  get isOpen(): boolean {
    return !this.#closed && !this.#socket.destroyed && this.#socket.writable;
  }

  send(data: Uint8Array | string): Promise<void> {
    if (this.#closed || !this.#socket.writable) return Promise.reject(this.#closedError());
    const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (body.byteLength > LANE_MAX_MESSAGE) {
      return Promise.reject(
        new PeerdialError('TRANSFER_FAILED', `message of ${body.byteLength} bytes on lane "${this.label}" is larger than ${LANE_MAX_MESSAGE} bytes`, {
          hint: `split the data into messages of at most ${LANE_MAX_MESSAGE} bytes`,
        }),
      );
    }
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32BE((body.byteLength | (typeof data === 'string' ? TEXT_FLAG : 0)) >>> 0, 0);
    this.#socket.cork();
    this.#socket.write(header);
    this.#socket.write(body);
    this.#socket.uncork();
    // the socket's own high-water mark (16 KiB) is below one message: wait only above ours
    if (this.#socket.writableLength <= SEND_BUFFER) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        if (!this.#closed && this.#socket.writableLength > SEND_BUFFER) return;
        this.#socket.off('drain', done);
        this.#socket.off('close', done);
        if (this.#closed) reject(this.#closedError());
        else resolve();
      };
      this.#socket.on('drain', done);
      this.#socket.on('close', done);
    });
  }

  onMessage(cb: (data: Buffer | string) => void): void {
    this.#messageCbs.push(cb);
    for (const data of this.#early.splice(0)) cb(data);
  }

  onClose(cb: () => void): void {
    if (this.#closed) queueMicrotask(cb);
    else this.#closeCbs.push(cb);
  }

  /** The consumer says when it has taken a message (channel-inbox.ts): reading is paced from now on. */
  pace(): void {
    this.#paced = true;
  }

  taken(): void {
    if (!this.#paced) return;
    this.#outstanding = Math.max(0, this.#outstanding - 1);
    if (this.#paused && this.#outstanding <= READ_AHEAD / 4) {
      this.#paused = false;
      this.#socket.resume();
    }
  }

  close(): void {
    if (this.#socket.destroyed) return this.#markClosed(this.#closeReason);
    this.#socket.end();
    // the peer may have stopped reading: what was written then cannot arrive anyway
    setTimeout(() => this.#socket.destroy(), CLOSE_GRACE_MS).unref();
    this.#socket.resume();
  }

  /** Ends the lane and resolves once the peer has read everything and ended its side too (or the grace ran out). */
  async closed(): Promise<void> {
    this.close();
    await this.#ended;
  }

  /** Drops the connection at once (the call is gone). */
  destroy(): void {
    this.#socket.destroy();
    this.#markClosed('the call ended');
  }

  #onData(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#have += chunk.length;
    for (;;) {
      if (this.#need < 0) {
        if (this.#have < 4) return;
        const header = this.#take(4).readUInt32BE(0);
        this.#text = (header & TEXT_FLAG) !== 0;
        this.#need = (header & ~TEXT_FLAG) >>> 0;
        if (this.#need > LANE_MAX_MESSAGE) {
          this.#markClosed(`the peer sent a message of ${this.#need} bytes (at most ${LANE_MAX_MESSAGE})`);
          this.#socket.destroy();
          return;
        }
      }
      if (this.#have < this.#need) return;
      const body = this.#take(this.#need);
      this.#need = -1;
      this.#deliver(this.#text ? body.toString('utf8') : body);
      if (this.#closed) return;
    }
  }

  #take(n: number): Buffer {
    this.#have -= n;
    const first = this.#chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.#chunks[0]!;
      const part = Math.min(c.length, n - off);
      c.copy(out, off, 0, part);
      off += part;
      if (part === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(part);
    }
    return out;
  }

  #deliver(data: Buffer | string): void {
    if (this.#closed) return;
    if (this.#paced) {
      this.#outstanding++;
      if (!this.#paused && this.#outstanding >= READ_AHEAD) {
        this.#paused = true;
        this.#socket.pause();
      }
    }
    if (this.#messageCbs.length === 0) this.#early.push(data);
    else for (const cb of this.#messageCbs) cb(data);
  }

  #markClosed(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    for (const cb of this.#closeCbs.splice(0)) cb();
  }

  #closedError(): PeerdialError {
    return new PeerdialError('SESSION_CLOSED', `lane "${this.label}" is closed: ${this.#closeReason}`);
  }
}
