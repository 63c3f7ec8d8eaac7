/**
 * A Channel (see types.ts) over one node-datachannel DataChannel.
 *
 * Hazards contained here (see ../shared/notes/webrtc.md):
 * - every native callback is wrapped: an exception thrown inside one aborts
 *   the process; listener errors are rethrown on a later tick instead, where
 *   they behave like any other uncaught JS error;
 * - the DataChannel object is held by this wrapper, and the wrapper by its
 *   Session, for the session's whole life (GC would close the channel);
 * - `sendMessageBinary() === false` means "queued", not "failed":
 *   backpressure uses bufferedAmount / onBufferedAmountLow instead;
 * - messages arriving before anyone listens are kept, not dropped;
 * - a channel made while the session has not yet checked the peer's DTLS
 *   certificate is held (`held`): it reports not open, sends nothing, and
 *   keeps what arrives until release(); closing it first drops what it kept.
 */
import type { DataChannel } from 'node-datachannel';
import { PeerdialError } from '../errors.js';
import type { Channel } from './types.js';

/** Default low-water mark: send() resolves once the buffer is below this. */
export const DEFAULT_LOW_WATER_MARK = 1024 * 1024;

/** How often a waiting send() re-checks bufferedAmount, in case an event is missed. */
const BACKPRESSURE_POLL_MS = 200;

/** Run a listener; a throwing listener must not unwind into native code. */
export function deliver<A extends unknown[]>(cb: (...args: A) => void, ...args: A): void {
  try {
    cb(...args);
  } catch (err) {
    setImmediate(() => {
      throw err;
    });
  }
}

/** Wrap a callback handed to native code so that nothing ever throws out of it. */
export function guarded<A extends unknown[]>(
  fn: (...args: A) => void,
  onInternalError: (err: unknown) => void,
): (...args: A) => void {
  return (...args: A) => {
    try {
      fn(...args);
    } catch (err) {
      try {
        onInternalError(err);
      } catch {
        // Nothing may escape into native code.
      }
    }
  };
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class SessionChannel implements Channel {
  readonly label: string;
  readonly protocol: string;
  readonly #dc: DataChannel;
  readonly #lowWaterMark: number;
  /** The native channel is open. */
  #open: boolean;
  /** Held until the session has checked the peer (release()). */
  #held: boolean;
  #heldMessages: Array<Buffer | string> = [];
  #closed = false;
  #closeReason = 'the channel is closed';
  #messageCbs: Array<(data: Buffer | string) => void> = [];
  #closeCbs: Array<() => void> = [];
  #openCbs: Array<() => void> = [];
  #early: Array<Buffer | string> = [];
  #waiters: Waiter[] = [];
  #poll: NodeJS.Timeout | undefined;

  constructor(dc: DataChannel, opts: { lowWaterMark?: number; open?: boolean; held?: boolean } = {}) {
    this.#dc = dc;
    this.label = dc.getLabel();
    this.protocol = dc.getProtocol();
    this.#lowWaterMark = opts.lowWaterMark ?? DEFAULT_LOW_WATER_MARK;
    this.#open = opts.open ?? dc.isOpen();
    this.#held = opts.held ?? false;
    const internal = (err: unknown) => this.markClosed(`internal error in channel "${this.label}": ${String(err)}`);
    dc.setBufferedAmountLowThreshold(this.#lowWaterMark);
    dc.onOpen(
      guarded(() => {
        this.#open = true;
        if (!this.#held) for (const cb of this.#openCbs.splice(0)) deliver(cb);
      }, internal),
    );
    dc.onMessage(
      guarded((msg: string | Buffer | ArrayBuffer) => {
        if (this.#closed) return;
        const data = typeof msg === 'string' ? msg : Buffer.isBuffer(msg) ? msg : Buffer.from(msg);
        if (this.#held) this.#heldMessages.push(data);
        else this.#receive(data);
      }, internal),
    );
    dc.onBufferedAmountLow(guarded(() => this.#checkWaiters(), internal));
    // A closed callback must be set so the native wrapper cleans itself up.
    dc.onClosed(guarded(() => this.markClosed('the peer closed the channel'), internal));
    dc.onError(guarded((err: string) => this.markClosed(`channel error: ${err}`), internal));
  }

  get isOpen(): boolean {
    return this.#open && !this.#held && !this.#closed;
  }

  /** Is the channel still held (the session has not checked the peer yet)? */
  get isHeld(): boolean {
    return this.#held;
  }

  /**
   * The session checked the peer: deliver what arrived meanwhile, in order,
   * and let the channel open and send.
   */
  release(): void {
    if (!this.#held || this.#closed) return;
    this.#held = false;
    for (const data of this.#heldMessages.splice(0)) this.#receive(data);
    if (this.#open) for (const cb of this.#openCbs.splice(0)) deliver(cb);
  }

  #receive(data: Buffer | string): void {
    if (this.#messageCbs.length === 0) this.#early.push(data);
    else for (const cb of this.#messageCbs) deliver(cb, data);
  }

  get maxMessageSize(): number {
    if (this.#closed) return 0;
    try {
      return this.#dc.maxMessageSize();
    } catch {
      return 0;
    }
  }

  get bufferedAmount(): number {
    if (this.#closed) return 0;
    try {
      return this.#dc.bufferedAmount();
    } catch {
      return 0;
    }
  }

  /** Resolves once the channel is open (rejects if it closes first). */
  whenOpen(): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    if (this.isOpen) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#openCbs.push(resolve);
      this.#closeCbs.push(() => reject(this.#closedError()));
    });
  }

  send(data: Uint8Array | string): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    if (!this.isOpen) return this.whenOpen().then(() => this.send(data));
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    const max = this.maxMessageSize;
    if (max > 0 && size > max) {
      return Promise.reject(
        new PeerdialError(
          'TRANSFER_FAILED',
          `message of ${size} bytes on channel "${this.label}" is larger than the peer accepts (${max} bytes)`,
          { hint: `split the data into messages of at most ${max} bytes` },
        ),
      );
    }
    try {
      if (typeof data === 'string') this.#dc.sendMessage(data);
      else this.#dc.sendMessageBinary(data);
    } catch (err) {
      if (this.#closed) return Promise.reject(this.#closedError());
      return Promise.reject(
        new PeerdialError('TRANSFER_FAILED', `sending on channel "${this.label}" failed: ${errorText(err)}`, {
          cause: err,
        }),
      );
    }
    if (this.bufferedAmount <= this.#lowWaterMark) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#poll ??= setInterval(() => this.#checkWaiters(), BACKPRESSURE_POLL_MS).unref();
    });
  }

  onMessage(cb: (data: Buffer | string) => void): void {
    this.#messageCbs.push(cb);
    if (this.#early.length > 0) {
      const early = this.#early.splice(0);
      for (const data of early) deliver(cb, data);
    }
  }

  onClose(cb: () => void): void {
    if (this.#closed) queueMicrotask(() => deliver(cb));
    else this.#closeCbs.push(cb);
  }

  /**
   * Close this channel only. To end a call, close the Session instead: it
   * closes the PeerConnection, which closes every channel (closing channels
   * one by one before cleanup() crashed libdatachannel after many cycles).
   */
  close(): void {
    if (this.#closed) return;
    try {
      this.#dc.close();
    } catch {
      // already gone
    }
    this.markClosed('the channel was closed');
  }

  /** Mark closed without touching the native channel (the Session closes the PeerConnection). */
  markClosed(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#open = false;
    this.#closeReason = reason;
    this.#heldMessages = [];
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = undefined;
    const err = this.#closedError();
    for (const w of this.#waiters.splice(0)) w.reject(err);
    this.#openCbs = [];
    for (const cb of this.#closeCbs.splice(0)) deliver(cb);
  }

  #checkWaiters(): void {
    if (this.#waiters.length === 0) {
      if (this.#poll) clearInterval(this.#poll);
      this.#poll = undefined;
      return;
    }
    if (this.bufferedAmount > this.#lowWaterMark) return;
    for (const w of this.#waiters.splice(0)) w.resolve();
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = undefined;
  }

  #closedError(): PeerdialError {
    return new PeerdialError('SESSION_CLOSED', `channel "${this.label}" is closed: ${this.#closeReason}`);
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
