/**
 * The file transfer protocol as each side sees it: the next control message
 * must be one of the kinds the protocol expects there, and every way it goes
 * wrong becomes a PeerdialError; the peer hears of it unless it caused it.
 */
import { PeerdialError, isPeerdialError } from '../errors.js';
import type { Channel } from '../session/types.js';
import { decodeFrame, encodeError, parseFileControl, type FileControl } from './frames.js';
import { abortError, type Inbox } from './channel-inbox.js';

/** The next file control message of one of the `expected` kinds; anything else is an error. */
export async function nextFileControl(inbox: Inbox, signal: AbortSignal, expected: ReadonlyArray<FileControl['t']>): Promise<FileControl> {
  const raw = await inbox.next(signal);
  if (raw === null) throw closedError('the connection closed during the file transfer');
  const frame = decodeFrame(raw);
  if (frame.type === 'error') throw fromPeer(new PeerdialError('TRANSFER_FAILED', `the peer stopped the transfer: ${frame.message}`));
  if (frame.type !== 'control') throw protocolError(frame.type === 'invalid' ? frame.reason : `${frame.type} frame`);
  const control = parseFileControl(frame.body);
  if ('type' in control) throw protocolError(control.reason);
  if (!expected.includes(control.t)) throw protocolError(`'${control.t}' where ${expected.join(' or ')} was expected`);
  return control;
}

export function unexpectedMidFile(raw: Buffer | string | null): PeerdialError {
  if (raw === null) return closedError('the connection closed while sending');
  const frame = decodeFrame(raw);
  if (frame.type === 'error') return fromPeer(new PeerdialError('TRANSFER_FAILED', `the peer stopped the transfer: ${frame.message}`));
  return protocolError(frame.type === 'control' ? `'${frame.body.t}' while sending` : 'unexpected frame while sending');
}

export function protocolError(what: string): PeerdialError {
  return new PeerdialError('TRANSFER_FAILED', `file transfer protocol error: ${what}`, { hint: 'Both sides should run the same peerdial version.' });
}

export function closedError(message: string): PeerdialError {
  return fromPeer(new PeerdialError('SESSION_CLOSED', message, { hint: 'Send again to resume where it stopped.' }));
}

/** Errors the peer already knows about (it caused them, or the channel is gone). */
const peerKnows = new WeakSet<object>();
export function fromPeer(err: PeerdialError): PeerdialError {
  peerKnows.add(err);
  return err;
}

/** Best-effort ERROR frame so the peer does not wait forever; returns the error to throw. */
export function tellPeer(channel: Channel, err: unknown, signal: AbortSignal): PeerdialError {
  let error: PeerdialError;
  if (isPeerdialError(err)) error = err;
  else if (signal.aborted) error = abortError(signal);
  else error = new PeerdialError('TRANSFER_FAILED', `file transfer failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  if (!peerKnows.has(error) && channel.isOpen) channel.send(encodeError(error.message)).catch(() => undefined);
  return error;
}
