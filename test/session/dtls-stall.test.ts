/**
 * A DTLS handshake that never finishes once ICE is connected: libdatachannel
 * 0.24.5 deadlocks its own threads when the DTLS server (the callee) answers
 * a ClientHello it held before its ICE connected through a TURN relay
 * (session/options.ts DTLS_STALL_MS; seen under gdb in the netns harness).
 * Nothing moves on that connection after it, so the caller's connect step
 * (the DTLS client, which sent its ClientHello as its ICE connected) reports
 * it as stalled, a failure the phone answers with its one fresh offer,
 * instead of waiting for the connect timeout (a timeout gets no fresh offer).
 * The connect step is driven here by hand: the deadlock is a native race.
 */
import { describe, expect, it } from 'vitest';
import { freshOfferCures } from '../../src/session/session-errors.js';
import { PeerdialError } from '../../src/errors.js';
import { ConnectStep, DTLS_STALLED } from '../../src/session/connect-step.js';
import type { Connection } from '../../src/session/connection.js';

function scene(stallMs: number, role: 'offerer' | 'answerer' = 'offerer') {
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
      remoteSetAt: () => 0,
      isOfferer: () => role === 'offerer',
    },
    stallMs,
  );
  step.ready.promise.catch(() => undefined);
  return { step, failures };
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the DTLS handshake after ICE has connected', () => {
  it("never finishes on the caller's side: the session fails as stalled, a failure a fresh offer cures", async () => {
    const { step, failures } = scene(40);
    step.iceState('checking');
    step.iceState('connected');
    step.iceState('completed');
    await wait(150);
    expect(failures).toHaveLength(1);
    expect(failures[0]!.reason).toBe(DTLS_STALLED);
    expect(failures[0]!.error?.code).toBe('SESSION_FAILED');
    expect(freshOfferCures(failures[0]!.reason)).toBe(true);
    await expect(step.ready.promise).rejects.toThrow(/stalled/);
  });

  it('finishes in time (DTLS connected): nothing is reported', async () => {
    const { step, failures } = scene(40);
    step.iceState('connected');
    step.connectionUp();
    await wait(150);
    expect(failures).toEqual([]);
  });

  it("on the callee's side no clock runs: its ICE may connect with the caller's first connection while the answer is still in the mail", async () => {
    const { step, failures } = scene(40, 'answerer');
    step.iceState('connected');
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
