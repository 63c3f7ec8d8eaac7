/**
 * A carrier following a call onto a new transport (src/agent/follow-transport.ts):
 * a transfer is running when the call moves; the running attempt is aborted
 * and the work starts again on the new transport. A failure that no restart
 * explains, or a call that ends instead of moving, is the carrier's failure.
 */
import { describe, expect, it } from 'vitest';
import { onEveryTransport } from '../../src/agent/follow-transport.js';
import type { ActiveCall, CallTransport } from '../../src/agent/phone-types.js';

/** A call whose transport the test moves by hand. */
function movingCall() {
  let generation = 0;
  let restarting = false;
  const switches = new Set<(g: number) => void>();
  let end!: (state: string) => void;
  const transport: CallTransport = {
    get generation() {
      return generation;
    },
    get restarting() {
      return restarting;
    },
    onSwitch(cb) {
      switches.add(cb);
      return () => switches.delete(cb);
    },
  };
  const call = { transport, ended: new Promise<string>((r) => (end = r)) } as unknown as ActiveCall;
  return {
    call,
    /** The address changed: a restart begins. */
    restartBegins: () => (restarting = true),
    /** The new transport is up: the call moves to it. */
    moves: () => {
      generation++;
      restarting = false;
      for (const cb of [...switches]) cb(generation);
    },
    ends: (state: string) => end(state),
  };
}

/** Work that waits until its attempt is aborted (a transfer stalled on a dead path), or finishes at once from attempt `doneAt`. */
function transfer(doneAt: number, seen: number[]) {
  return (signal: AbortSignal, attempt: number) => {
    seen.push(attempt);
    if (attempt >= doneAt) return Promise.resolve(`done on attempt ${attempt}`);
    return new Promise<string>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted: the call moved')), { once: true }));
  };
}

describe('a transfer on a call whose address changes', () => {
  it('runs once when the call never moves', async () => {
    const c = movingCall();
    const seen: number[] = [];
    await expect(onEveryTransport(c.call, transfer(1, seen))).resolves.toEqual({ result: 'done on attempt 1', attempts: 1 });
    expect(seen).toEqual([1]);
  });

  it('stalls on the old path, is aborted when the call moves, and finishes on the new transport', async () => {
    const c = movingCall();
    const seen: number[] = [];
    const running = onEveryTransport(c.call, transfer(2, seen));
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([1]);
    c.restartBegins();
    c.moves();
    await expect(running).resolves.toEqual({ result: 'done on attempt 2', attempts: 2 });
    expect(seen).toEqual([1, 2]);
  });

  it('fails on the old path while a restart is under way, waits, and starts again once the call has moved', async () => {
    const c = movingCall();
    const seen: number[] = [];
    c.restartBegins();
    const running = onEveryTransport(c.call, async (_signal, attempt) => {
      seen.push(attempt);
      if (attempt === 1) throw new Error('the channel closed');
      return 'resumed';
    });
    await new Promise((r) => setTimeout(r, 50));
    // nothing runs again until there is a new transport
    expect(seen).toEqual([1]);
    c.moves();
    await expect(running).resolves.toEqual({ result: 'resumed', attempts: 2 });
  });

  it('a failure no restart explains is the transfer\'s failure', async () => {
    const c = movingCall();
    await expect(onEveryTransport(c.call, async () => Promise.reject(new Error('the receiver refused the file')))).rejects.toThrow('the receiver refused the file');
  });

  it('a call that ends instead of moving (the restart failed) ends the transfer with its error', async () => {
    const c = movingCall();
    c.restartBegins();
    const running = onEveryTransport(c.call, async () => Promise.reject(new Error('the channel closed')));
    await new Promise((r) => setTimeout(r, 50));
    c.ends('closed');
    await expect(running).rejects.toThrow('the channel closed');
  });

  it('a call that cannot restart runs the work once, failure and all', async () => {
    const call = { ended: new Promise<string>(() => undefined) } as unknown as ActiveCall;
    await expect(onEveryTransport(call, async () => Promise.reject(new Error('lost')))).rejects.toThrow('lost');
  });
});
