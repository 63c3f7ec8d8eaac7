/**
 * Two connected in-memory Channels, for tests. They behave like a data
 * channel: delivery is asynchronous and ordered, send() waits while more than
 * `highWater` bytes are in flight until they drop to `lowWater`, messages
 * larger than `maxMessageSize` are refused, and close() delivers what was
 * already sent before the peer sees the close.
 */
import { PeerdialError } from '../../src/errors.js';
import type { Channel } from '../../src/session/types.js';

export interface ChannelPairOptions {
  /** Default 256 KiB, libdatachannel's default. */
  maxMessageSize?: number;
  /** Bytes in flight above which send() waits. Default 1 MiB. */
  highWater?: number;
  /** send() resumes once in-flight bytes drop to this. Default highWater / 4. */
  lowWater?: number;
  label?: string;
  protocol?: string;
}

type Item = { kind: 'message'; data: Buffer | string; size: number } | { kind: 'close' };

class MemoryChannel implements Channel {
  readonly label: string;
  readonly protocol: string;
  readonly maxMessageSize: number;
  peer!: MemoryChannel;

  private open = true;
  private closeNotified = false;
  /** Items on their way to the peer. */
  private readonly outgoing: Item[] = [];
  private buffered = 0;
  private pumping = false;
  private readonly drainWaiters: Array<() => void> = [];
  /** Messages that arrived before anyone listened. */
  private readonly early: Array<Buffer | string> = [];
  private flushScheduled = false;
  private readonly messageHandlers: Array<(data: Buffer | string) => void> = [];
  private readonly closeHandlers: Array<() => void> = [];

  constructor(
    private readonly opts: Required<Pick<ChannelPairOptions, 'maxMessageSize' | 'highWater' | 'lowWater'>>,
    label: string,
    protocol: string,
  ) {
    this.label = label;
    this.protocol = protocol;
    this.maxMessageSize = opts.maxMessageSize;
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** Bytes sent but not yet delivered to the peer. */
  get bufferedAmount(): number {
    return this.buffered;
  }

  async send(data: Uint8Array | string): Promise<void> {
    if (!this.open) throw new PeerdialError('SESSION_CLOSED', `channel ${this.label} is closed`);
    const size = typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.byteLength;
    if (size > this.maxMessageSize) {
      throw new PeerdialError('TRANSFER_FAILED', `message of ${size} bytes exceeds the channel's maximum of ${this.maxMessageSize}`);
    }
    // Copy: the caller may reuse its buffer as soon as send() returns.
    const copy = typeof data === 'string' ? data : Buffer.from(data);
    this.outgoing.push({ kind: 'message', data: copy, size });
    this.buffered += size;
    this.schedulePump();
    if (this.buffered > this.opts.highWater) {
      await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    }
  }

  onMessage(cb: (data: Buffer | string) => void): void {
    this.messageHandlers.push(cb);
    if (this.early.length > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        for (const m of this.early.splice(0)) this.dispatch(m);
      });
    }
  }

  onClose(cb: () => void): void {
    // Like the session's channels: a listener added after the close still hears of it.
    if (this.closeNotified) queueMicrotask(cb);
    else this.closeHandlers.push(cb);
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.outgoing.push({ kind: 'close' });
    this.schedulePump();
  }

  private schedulePump(): void {
    if (this.pumping) return;
    this.pumping = true;
    setImmediate(() => this.pump());
  }

  /** Delivers one item per turn of the event loop, like a link with latency. */
  private pump(): void {
    this.pumping = false;
    const item = this.outgoing.shift();
    if (item === undefined) return;
    if (item.kind === 'message') {
      this.buffered -= item.size;
      this.peer.receive(item.data);
      this.releaseWaiters(false);
    } else {
      // Close: the peer stops accepting, what it had in flight to us is dropped.
      this.peer.remoteClosed();
      this.finishClose();
    }
    if (this.outgoing.length > 0) this.schedulePump();
  }

  private releaseWaiters(all: boolean): void {
    if (!all && this.buffered > this.opts.lowWater) return;
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  private receive(data: Buffer | string): void {
    if (this.closeNotified) return;
    if (this.messageHandlers.length === 0 || this.early.length > 0) {
      this.early.push(data);
      return;
    }
    this.dispatch(data);
  }

  private dispatch(data: Buffer | string): void {
    for (const cb of this.messageHandlers) cb(data);
  }

  private remoteClosed(): void {
    this.open = false;
    this.outgoing.length = 0;
    this.buffered = 0;
    this.finishClose();
  }

  private finishClose(): void {
    if (this.closeNotified) return;
    // Flush early messages first so that listeners see them before the close.
    if (this.early.length > 0 && this.messageHandlers.length > 0) {
      for (const m of this.early.splice(0)) this.dispatch(m);
    }
    this.closeNotified = true;
    this.releaseWaiters(true);
    for (const cb of this.closeHandlers) cb();
  }
}

/** Two connected in-memory channels: what one sends, the other receives. */
export function channelPair(opts: ChannelPairOptions = {}): [Channel, Channel] {
  const highWater = opts.highWater ?? 1024 * 1024;
  const resolved = {
    maxMessageSize: opts.maxMessageSize ?? 256 * 1024,
    highWater,
    lowWater: opts.lowWater ?? Math.floor(highWater / 4),
  };
  const label = opts.label ?? 'memory';
  const protocol = opts.protocol ?? '';
  const a = new MemoryChannel(resolved, label, protocol);
  const b = new MemoryChannel(resolved, label, protocol);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
