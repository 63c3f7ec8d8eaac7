/**
 * The request/response loop STUN and TURN share (RFC 5389 / 8489 over UDP):
 * one request on an open socket, retransmitted at 250, 500, 1000, ... ms
 * (the doubling RTO, a shorter first step, at most 4 s) until an answer, the
 * time limit or the abort signal. What differs between the callers (the
 * request, how a reply is told apart and decoded, the errors and their
 * hints) comes in as parameters.
 */
import type { Socket } from 'node:dgram';
import { PeerdialError } from '../errors.js';

/** What a received datagram means to the transaction: its answer, its failure, or nothing (undefined: ignore it). */
export type StunReply<T> = { value: T } | { error: unknown } | undefined;

export interface StunTransaction<T> {
  /** The encoded request, sent again on each retransmission. */
  request: Buffer;
  /** Where to send it. */
  address: string;
  port: number;
  /** Milliseconds from now until the transaction gives up with `timeoutError`. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Sorts a received datagram. */
  reply: (msg: Buffer) => StunReply<T>;
  /** The error when sending fails. */
  sendError: (err: Error) => unknown;
  /** The error when the socket reports one. */
  socketError: (err: Error) => unknown;
  /** The error when no answer came within `timeoutMs`. */
  timeoutError: () => unknown;
}

/** The error a cancelled transaction rejects with. */
export function abortedError(signal: AbortSignal): PeerdialError {
  return new PeerdialError('ABORTED', 'cancelled', { cause: signal.reason });
}

/** Runs one transaction on `socket`; leaves no listener or timer behind when it settles. */
export function stunTransaction<T>(socket: Socket, t: StunTransaction<T>): Promise<T> {
  const { signal } = t;
  return new Promise<T>((resolve, reject) => {
    let rto = 250;
    let retransmit: NodeJS.Timeout | undefined;
    const finish = (err: unknown, value?: T) => {
      clearTimeout(retransmit);
      clearTimeout(deadline);
      socket.off('message', onMessage);
      socket.off('error', onSocketError);
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(value!);
    };
    const send = () => {
      socket.send(t.request, t.port, t.address, (err) => {
        if (err) finish(t.sendError(err));
      });
      retransmit = setTimeout(send, rto);
      rto = Math.min(rto * 2, 4000);
    };
    const onMessage = (msg: Buffer) => {
      const r = t.reply(msg);
      if (r === undefined) return;
      if ('value' in r) finish(undefined, r.value);
      else finish(r.error);
    };
    const onSocketError = (err: Error) => finish(t.socketError(err));
    const onAbort = () => finish(abortedError(signal!));
    const deadline = setTimeout(() => finish(t.timeoutError()), t.timeoutMs);
    socket.on('message', onMessage);
    socket.on('error', onSocketError);
    signal?.addEventListener('abort', onAbort, { once: true });
    send();
  });
}
