/**
 * Line-based text chat over a channel. Each line is one text message
 * {t:'chat', text}; hanging up is said over the channel with {t:'bye'}, so no
 * mail is needed to end a chat. Text from the peer is made safe to print
 * (control characters and escape sequences are replaced).
 *
 * The chat ends when the local input ends (we say bye), when the peer says
 * bye, or when the channel closes. The channel is not closed here.
 */
import { PeerdialError, isPeerdialError } from '../errors.js';
import type { Channel } from '../session/types.js';
import { decodeChat, encodeChat, messageBudget } from './frames.js';
import { abortError, inboxOf } from './channel-inbox.js';

/** How a chat ended: we hung up, the peer hung up, or the connection went away without a bye. */
export type ChatEnd = 'local-bye' | 'remote-bye' | 'closed';

export interface ChatOptions {
  /** Every line of the conversation, ours ('local') and the peer's ('remote'), in order of arrival. */
  onLine: (from: 'local' | 'remote', text: string) => void;
  onClose?: (how: ChatEnd) => void;
  /** Aborting says bye to the peer and rejects with ABORTED. */
  signal?: AbortSignal;
}

export interface ChatResult {
  ended: ChatEnd;
  linesSent: number;
  linesReceived: number;
}

export async function runChat(channel: Channel, input: AsyncIterable<string>, opts: ChatOptions): Promise<ChatResult> {
  const inbox = inboxOf(channel);
  const stop = new AbortController();
  let linesSent = 0;
  let linesReceived = 0;
  const iterator = input[Symbol.asyncIterator]();

  const outer = opts.signal;
  if (outer?.aborted) throw abortError(outer);
  const aborted = new Promise<never>((_, reject) => {
    const onAbort = (): void => reject(abortError(outer as AbortSignal));
    outer?.addEventListener('abort', onAbort, { once: true });
    stop.signal.addEventListener('abort', () => outer?.removeEventListener('abort', onAbort), { once: true });
  });
  aborted.catch(() => undefined);

  const speaking = (async (): Promise<ChatEnd> => {
    for (;;) {
      const next = await Promise.race([iterator.next(), stopped(stop.signal)]);
      if (next === undefined || stop.signal.aborted) return 'closed';
      if (next.done === true) {
        await channel.send(encodeChat({ t: 'bye' }));
        return 'local-bye';
      }
      const text = next.value.replace(/\r?\n$/, '');
      for (const frame of chatFrames(text, messageBudget(channel.maxMessageSize))) await channel.send(frame);
      linesSent++;
      opts.onLine('local', text);
    }
  })();

  const listening = (async (): Promise<ChatEnd> => {
    for (;;) {
      const raw = await inbox.next(stop.signal);
      if (raw === null) return 'closed';
      const message = decodeChat(raw);
      if ('type' in message) continue; // not a chat message: ignore it, it is text from a peer
      if (message.t === 'bye') return 'remote-bye';
      linesReceived++;
      opts.onLine('remote', message.text);
    }
  })();

  let ended: ChatEnd;
  try {
    ended = await Promise.race([speaking, listening, aborted]);
  } catch (err) {
    if (isPeerdialError(err, 'ABORTED')) {
      if (channel.isOpen) await channel.send(encodeChat({ t: 'bye' })).catch(() => undefined);
      finish(stop, iterator);
      throw err;
    }
    if (!isPeerdialError(err, 'SESSION_CLOSED')) {
      finish(stop, iterator);
      throw err instanceof PeerdialError ? err : new PeerdialError('TRANSFER_FAILED', `chat failed: ${(err as Error).message}`, { cause: err });
    }
    ended = 'closed';
  }
  finish(stop, iterator);
  speaking.catch(() => undefined);
  listening.catch(() => undefined);
  opts.onClose?.(ended);
  return { ended, linesSent, linesReceived };
}

/** Stops both loops; the input is told we are done with it (e.g. readline closes). */
function finish(stop: AbortController, iterator: AsyncIterator<string>): void {
  if (!stop.signal.aborted) stop.abort(new PeerdialError('ABORTED', 'chat ended'));
  void Promise.resolve()
    .then(() => iterator.return?.())
    .catch(() => undefined);
}

function stopped(signal: AbortSignal): Promise<undefined> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(undefined);
    else signal.addEventListener('abort', () => resolve(undefined), { once: true });
  });
}

/** One line as one or more chat messages, each within the channel's message size. */
export function chatFrames(text: string, maxMessageSize: number): string[] {
  const frame = encodeChat({ t: 'chat', text });
  if (Buffer.byteLength(frame, 'utf8') <= maxMessageSize || text.length <= 1) return [frame];
  let mid = Math.floor(text.length / 2);
  const code = text.charCodeAt(mid - 1);
  if (code >= 0xd800 && code <= 0xdbff) mid++; // do not split a surrogate pair
  return [...chatFrames(text.slice(0, mid), maxMessageSize), ...chatFrames(text.slice(mid), maxMessageSize)];
}
