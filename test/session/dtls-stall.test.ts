/**
 * A DTLS handshake that never finishes once ICE is connected: libdatachannel
 * 0.24.5 deadlocks its own threads when the DTLS server (the callee) answers
 * a ClientHello it held before its ICE connected through a TURN relay
 * (session/options.ts DTLS_STALL_MS; seen under gdb in the netns harness).
 * Nothing moves on that connection after it, so the connect step reports it
 * as stalled, a failure the phone answers with its one fresh offer, instead
 * of waiting for the connect timeout (a timeout gets no fresh offer). The
 * connect step is driven here by hand: the deadlock itself is a native race.
 */
import { describe, expect, it } from 'vitest';
import { freshOfferCures } from '../../src/agent/call-record.js';
import { PeerdialError } from '../../src/errors.js';
import { ConnectStep, DTLS_STALLED } from '../../src/session/connect-step.js';
import type { Connection } from '../../src/session/connection.js';
import { nativeStalled } from '../../src/session/registry.js';

function scene(stallMs: number) {
  const failures: Array<{ reason: string; error?: PeerdialError }> = [];
  let closed = false;
  const conn = {} as Connection;
  const step = new ConnectStep(
    {
      carried: { verified: true, release: () => undefined, addRemoteChannel: () => undefined } as never,
      conn: () => conn,
      isClosed: () => closed,
      fail: (reason, error) => {
        failures.push({ reason, ...(error ? { error } : {}) });
        closed = true;
        step.ready.reject(error ?? new Error(reason));
      },
      progress: () => undefined,
      remoteSetAt: () => undefined,
    },
    stallMs,
  );
  step.ready.promise.catch(() => undefined);
  return { step, failures };
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the DTLS handshake after ICE has connected', () => {
  it('never finishes: the session fails as stalled, a failure a fresh offer cures, and the process is marked', async () => {
    const { step, failures } = scene(40);
    expect(nativeStalled()).toBe(false);
    step.iceState('checking');
    step.iceState('connected');
    step.iceState('completed');
    await wait(150);
    expect(failures).toHaveLength(1);
    expect(failures[0]!.reason).toBe(DTLS_STALLED);
    expect(failures[0]!.error?.code).toBe('SESSION_FAILED');
    expect(freshOfferCures(failures[0]!.reason)).toBe(true);
    expect(nativeStalled()).toBe(true);
    await expect(step.ready.promise).rejects.toThrow(/stalled/);
  });

  it('finishes in time (DTLS connected): nothing is reported', async () => {
    const { step, failures } = scene(40);
    step.iceState('connected');
    step.connectionUp();
    await wait(150);
    expect(failures).toEqual([]);
  });

  it('ICE still checking: no clock runs (the connect timeout is the judge there)', async () => {
    const { step, failures } = scene(40);
    step.iceState('checking');
    await wait(150);
    expect(failures).toEqual([]);
  });

  it('a timeout is not something a fresh offer cures; a stall and a lost handshake are', () => {
    expect(freshOfferCures('no direct connection within 20 s')).toBe(false);
    expect(freshOfferCures(DTLS_STALLED)).toBe(true);
    expect(freshOfferCures('the direct connection failed')).toBe(true);
  });
});
