/**
 * A netcat-like pipe over a channel: bytes from `input` go to the peer, bytes
 * from the peer go to `output`. Each direction ends on its own (half-close):
 * when `input` ends we send EOS; when the peer's EOS arrives we end `output`.
 * The pipe is done when both directions have ended and the peer has said it
 * holds everything we sent: each side, once it has the peer's EOS and has
 * sent its own, sends `done` and waits for the peer's `done` (or for the
 * channel to close: an older peer closes when it has read our EOS). Without
 * that, the side that finished first hung up while its last frames were
 * still queued in SCTP, and on a busy machine the hang-up overtook them.
 *
 * The channel is not closed here: whoever opened it closes it.
 */
import type { Readable, Writable } from 'node:stream';
import { PeerdialError, isPeerdialError } from '../errors.js';
import type { Channel } from '../session/types.js';
import { decodeFrame, encodeControl, encodeData, encodeEos, encodeError, maxDataPayload } from './frames.js';
import { abortError, inboxOf } from './channel-inbox.js';
import { ProgressMeter } from './progress.js';
import { endOutput, flushOutput, readChunk, writeChunk } from './streams.js';

export interface PipeProgress {
  sent: number;
  received: number;
  /** Bytes per second. */
  sendRate: number;
  receiveRate: number;
}

export interface PipeOptions {
  signal?: AbortSignal;
  onProgress?: (progress: PipeProgress) => void;
  /** End `output` when the peer's EOS arrives. Default true; false for process.stdout. */
  endOutput?: boolean;
  /** Clock for rates, in ms. Default performance.now. */
  now?: () => number;
}

export interface PipeResult {
  /** Payload bytes sent and received (frame headers not counted). */
  sent: number;
  received: number;
}

/** Errors that came from the peer or the channel: no need to tell the peer about them. */
const fromPeer = new WeakSet<object>();

export async function runPipe(channel: Channel, input: Readable, output: Writable, opts: PipeOptions = {}): Promise<PipeResult> {
  const inbox = inboxOf(channel);
  const chunkSize = maxDataPayload(channel.maxMessageSize);
  const now = opts.now ?? (() => performance.now());
  const sendMeter = new ProgressMeter({ now });
  const receiveMeter = new ProgressMeter({ now });
  let sent = 0;
  let received = 0;
  const progress = (force = false): void => {
    if (opts.onProgress === undefined) return;
    const s = sendMeter.report(sent, force);
    const r = receiveMeter.report(received, force);
    if (s === undefined && r === undefined) return;
    opts.onProgress({ sent, received, sendRate: s?.rate ?? sendMeter.update(sent).rate, receiveRate: r?.rate ?? receiveMeter.update(received).rate });
  };

  const stop = new AbortController();
  const fail = (err: unknown): void => {
    if (!stop.signal.aborted) stop.abort(err);
  };
  const onOuterAbort = (): void => fail(abortError(opts.signal as AbortSignal));
  if (opts.signal?.aborted) throw abortError(opts.signal);
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const failed = new Promise<never>((_, reject) => {
    stop.signal.addEventListener('abort', () => reject(stop.signal.reason), { once: true });
  });
  failed.catch(() => undefined);
  // Stream errors are read back from the stream's state; without a listener they would crash the process.
  const ignore = (): void => undefined;
  input.on('error', ignore);
  output.on('error', ignore);

  const sending = (async () => {
    for (;;) {
      const chunk = await readChunk(input, stop.signal);
      if (chunk === null) break;
      for (let off = 0; off < chunk.length; off += chunkSize) {
        const part = chunk.subarray(off, off + chunkSize);
        await channel.send(encodeData(part));
        sent += part.length;
        progress();
      }
    }
    await channel.send(encodeEos());
  })();

  const receiving = (async () => {
    for (;;) {
      const message = await inbox.next(stop.signal);
      if (message === null) {
        throw peerError(new PeerdialError('SESSION_CLOSED', 'the connection closed before the peer finished sending', { hint: 'Call again; the peer may have hung up.' }));
      }
      const frame = decodeFrame(message);
      switch (frame.type) {
        case 'data':
          await writeChunk(output, frame.payload, stop.signal);
          received += frame.payload.length;
          progress();
          break;
        case 'eos':
          if (opts.endOutput === false) await flushOutput(output, stop.signal);
          else await endOutput(output, stop.signal);
          await peerHoldsAll();
          return;
        case 'error':
          throw peerError(new PeerdialError('TRANSFER_FAILED', `the peer stopped the pipe: ${frame.message}`));
        case 'control':
          throw new PeerdialError('TRANSFER_FAILED', `unexpected '${frame.body.t}' message in a pipe`);
        case 'invalid':
          throw new PeerdialError('TRANSFER_FAILED', `invalid frame from the peer: ${frame.reason}`);
      }
    }
  })();
  /**
   * After the peer's EOS: once our own EOS is out, say `done` (behind our
   * EOS, where an older peer no longer reads) and wait for the peer's.
   */
  async function peerHoldsAll(): Promise<void> {
    await sending;
    // the peer may already have closed (an older peer, done): nothing to tell it then
    await channel.send(encodeControl({ t: 'done' })).catch(() => undefined);
    for (;;) {
      const message = await inbox.next(stop.signal);
      if (message === null) return; // closed after our EOS: it read everything before it
      const frame = decodeFrame(message);
      if (frame.type === 'control' && frame.body.t === 'done') return;
      if (frame.type === 'error') throw peerError(new PeerdialError('TRANSFER_FAILED', `the peer stopped the pipe: ${frame.message}`));
      throw new PeerdialError('TRANSFER_FAILED', `unexpected ${frame.type === 'control' ? `'${frame.body.t}' message` : `${frame.type} frame`} after the end of the pipe`);
    }
  }
  sending.catch(fail);
  receiving.catch(fail);

  try {
    await Promise.race([Promise.all([sending, receiving]), failed]);
    progress(true);
    return { sent, received };
  } catch (err) {
    const error = toPipeError(err);
    if (!fromPeer.has(error) && channel.isOpen) {
      channel.send(encodeError(error.message)).catch(() => undefined);
    }
    throw error;
  } finally {
    fail(new PeerdialError('ABORTED', 'pipe finished'));
    opts.signal?.removeEventListener('abort', onOuterAbort);
    input.off('error', ignore);
    output.off('error', ignore);
  }
}

function peerError(err: PeerdialError): PeerdialError {
  fromPeer.add(err);
  return err;
}

function toPipeError(err: unknown): PeerdialError {
  if (isPeerdialError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new PeerdialError('TRANSFER_FAILED', `pipe failed: ${message}`, { cause: err });
}
