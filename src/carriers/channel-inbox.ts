/**
 * One reader per channel. A carrier awaits the next message instead of
 * registering callbacks, so that a handshake (forward) and the pipe that
 * follows it read from the same queue, and messages are never lost between
 * the two. Registration with the channel happens once, on first use.
 */
import { PeerdialError } from '../errors.js';
import type { Channel } from '../session/types.js';

export interface Inbox {
  /** The next message, or null once the channel has closed and everything before the close was read. */
  next(signal?: AbortSignal): Promise<Buffer | string | null>;
  /** A message that is already waiting, null when closed, undefined when nothing is there yet. Never waits. */
  poll(): Buffer | string | null | undefined;
  readonly closed: boolean;
}

const inboxes = new WeakMap<Channel, Inbox>();

/** A channel that reads ahead only as far as its consumer keeps up (tls-channel.ts). */
interface Paced {
  pace(): void;
  taken(): void;
}

/** The inbox of a channel; the first call registers onMessage/onClose. */
export function inboxOf(channel: Channel): Inbox {
  let inbox = inboxes.get(channel);
  if (inbox === undefined) {
    inbox = new ChannelInbox(channel);
    inboxes.set(channel, inbox);
  }
  return inbox;
}

class ChannelInbox implements Inbox {
  private readonly queue: Array<Buffer | string> = [];
  private isClosed = false;
  private wake: (() => void) | undefined;

  private readonly paced: Partial<Paced>;

  constructor(channel: Channel) {
    this.paced = channel as Partial<Paced>;
    this.paced.pace?.();
    channel.onMessage((data) => {
      this.queue.push(data);
      this.notify();
    });
    channel.onClose(() => {
      this.isClosed = true;
      this.notify();
    });
  }

  get closed(): boolean {
    return this.isClosed && this.queue.length === 0;
  }

  async next(signal?: AbortSignal): Promise<Buffer | string | null> {
    for (;;) {
      if (signal?.aborted) throw abortError(signal);
      const item = this.queue.shift();
      if (item !== undefined) {
        this.paced.taken?.();
        return item;
      }
      if (this.isClosed) return null;
      if (this.wake !== undefined) throw new Error('inbox has two readers');
      await new Promise<void>((resolve) => {
        const onAbort = (): void => done();
        const done = (): void => {
          signal?.removeEventListener('abort', onAbort);
          this.wake = undefined;
          resolve();
        };
        this.wake = done;
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  poll(): Buffer | string | null | undefined {
    const item = this.queue.shift();
    if (item !== undefined) {
      this.paced.taken?.();
      return item;
    }
    return this.isClosed ? null : undefined;
  }

  private notify(): void {
    this.wake?.();
  }
}

export function abortError(signal: AbortSignal): PeerdialError {
  const reason: unknown = signal.reason;
  if (reason instanceof PeerdialError) return reason;
  return new PeerdialError('ABORTED', 'cancelled', { cause: reason });
}
