/**
 * Awaitable reads and writes on Node streams that can be abandoned with a
 * signal without destroying the caller's stream (a `for await` over a socket
 * would destroy it at the end, killing the other half of a half-closed
 * connection), and a size limit in front of a writer (cappedWriter) that can
 * be torn down at any moment without leaving an error behind.
 */
import { Writable, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';

/** The next chunk of `input`, or null at its end. Throws the stream's error, or the signal's reason. */
export async function readChunk(input: Readable, signal: AbortSignal): Promise<Buffer | null> {
  for (;;) {
    if (signal.aborted) throw signal.reason;
    if (input.errored) throw input.errored;
    const chunk: unknown = input.read();
    if (chunk !== null) return toBuffer(chunk);
    if (input.readableEnded) return null;
    if (input.destroyed) throw new Error('input closed before its end');
    await waitForEvent(input, ['readable', 'end', 'error', 'close'], signal);
  }
}

/** Writes `chunk`, waiting for 'drain' when the stream asks for it. */
export async function writeChunk(output: Writable, chunk: Buffer, signal: AbortSignal): Promise<void> {
  if (output.errored) throw output.errored;
  if (output.destroyed || output.writableEnded) throw new Error('output closed');
  if (output.write(chunk)) return;
  while (output.writableNeedDrain) {
    if (signal.aborted) throw signal.reason;
    if (output.errored) throw output.errored;
    if (output.destroyed) throw new Error('output closed');
    await waitForEvent(output, ['drain', 'error', 'close'], signal);
  }
}

/** Ends `output` and waits until everything was flushed. */
export async function endOutput(output: Writable, signal: AbortSignal): Promise<void> {
  if (output.errored) throw output.errored;
  if (!output.writableEnded) output.end();
  await finished(output, { readable: false, signal });
}

/** Waits for everything written so far to leave the stream's buffer, without ending it. */
export async function flushOutput(output: Writable, signal: AbortSignal): Promise<void> {
  while (output.writableNeedDrain) {
    if (output.errored) throw output.errored;
    if (output.destroyed) return;
    await waitForEvent(output, ['drain', 'error', 'close'], signal);
  }
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  throw new TypeError('input stream yielded something that is not bytes');
}

/** Resolves on the first of `events` (errors are read back from the stream's state by the caller). */
function waitForEvent(emitter: Readable | Writable, events: string[], signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      for (const e of events) emitter.off(e, done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    for (const e of events) emitter.on(e, done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** A writer into `out` that takes at most `maxBytes`; see cappedWriter. */
export interface CappedWriter {
  /** What to write into. */
  readonly sink: Writable;
  /** Aborted once more than `maxBytes` were offered (the bytes beyond are dropped). */
  readonly over: AbortSignal;
  /** Ends both streams now, whatever is still pending; never throws or emits later. */
  close(): void;
}

/**
 * A size limit in front of `out` (an unattended pipe into a file). `close()`
 * destroys the limit before `out`: destroying `out` fails the callbacks of
 * writes and of an end still waiting in it, and those would otherwise reach
 * the limit's stream as an 'error' nobody listens to any more, which takes
 * the process down (a pipe whose connection dropped while the file was
 * being written, during an agent's Ctrl-C: a loaded run caught it).
 */
export function cappedWriter(out: Writable, maxBytes: number): CappedWriter {
  const over = new AbortController();
  let bytes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        over.abort();
        cb();
      } else out.write(chunk, cb);
    },
    final(cb) {
      out.end(cb);
    },
  });
  return {
    sink,
    over: over.signal,
    close() {
      sink.destroy();
      out.destroy();
    },
  };
}
