/**
 * A session's UDP port is picked up front and bound by libjuice only at
 * setLocalDescription. When another program takes it in between (a busy
 * machine, other calls), libjuice cannot bind it, and node-datachannel lets
 * that error abort the whole process on this path ("Failed to gather local
 * ICE candidates": a CI run lost a whole peer process to it). Here another
 * program holds the port before the description is made: the offer moves to
 * another free port and the call connects; where the port cannot move (the
 * configured single port) the session fails with a clear error, and this
 * process (the test's) lives on. Traffic on 127.0.0.1 only.
 */
import { createSocket } from 'node:dgram';
import { afterAll, describe, expect, it } from 'vitest';
import { PeerdialError } from '../../src/errors.js';
import { Connection, rtcConfig } from '../../src/session/connection.js';
import { type IceConfig, Session, shutdownSessions } from '../../src/session/index.js';
import { register, unregister } from '../../src/session/registry.js';

const ice: IceConfig = { iceServers: [], bindAddress: '127.0.0.1' };
afterAll(() => shutdownSessions());

/** Another program's socket on 127.0.0.1: its port, and how to let it go. */
async function heldPort(): Promise<{ port: number; release: () => void }> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  return { port: sock.address().port, release: () => sock.close() };
}

function hostPort(sdp: string): number {
  return Number(/^a=candidate:\S+ \d+ UDP \d+ 127\.0\.0\.1 (\d+) typ host/m.exec(sdp)?.[1]);
}

const noEvents = { state: () => undefined, ice: () => undefined, dataChannel: () => undefined, track: () => undefined, internalError: () => undefined };

/** A session's connection on its own, pinned to `port`; counted as live (registry.ts) until `run` ends, as a session's is. */
async function withConnection(role: 'offerer' | 'answerer', port: number, run: (conn: Connection) => Promise<void>): Promise<void> {
  const conn = new Connection(role, rtcConfig({ ...ice, portRangeBegin: port, portRangeEnd: port }), { begin: undefined, end: undefined }, noEvents);
  const live = { close: () => conn.pc.close() };
  register(live);
  try {
    await run(conn);
  } finally {
    live.close();
    unregister(live);
  }
}

describe('the UDP port picked for a call is taken by another program before the description is made', () => {
  it('an offer not made yet moves to another free port; its description is made and gathered there', async () => {
    const held = await heldPort();
    try {
      await withConnection('offerer', held.port, async (conn) => {
        await conn.portReady(true);
        expect(conn.rtc.portRangeBegin).not.toBe(held.port);
        expect(conn.rtc.portRangeBegin).toBe(conn.rtc.portRangeEnd);
        conn.pc.createDataChannel('control');
        conn.pc.setLocalDescription('offer');
        expect(await conn.gathered(undefined, 5000)).toBe(true);
        expect(hostPort(conn.localSdp())).toBe(conn.rtc.portRangeBegin);
      });
    } finally {
      held.release();
    }
  });

  it('a description whose port is already promised (a standing answer) fails with SESSION_FAILED naming the port, and the process lives', async () => {
    const held = await heldPort();
    try {
      await withConnection('answerer', held.port, async (conn) => {
        const err = await conn.portReady(false).then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(PeerdialError);
        expect((err as PeerdialError).code).toBe('SESSION_FAILED');
        expect((err as PeerdialError).message).toContain(`UDP port ${held.port} is taken`);
      });
    } finally {
      held.release();
    }
  });

  it('the configured single ICE port is in use: createOffer rejects with a hint about the port, instead of aborting the process', async () => {
    const held = await heldPort();
    try {
      const err = await Session.createOffer({ ice: { ...ice, portRangeBegin: held.port, portRangeEnd: held.port } }).then(
        (r) => {
          r.session.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(PeerdialError);
      expect((err as PeerdialError).code).toBe('SESSION_FAILED');
      expect((err as PeerdialError).hint).toMatch(/configured ICE port/);
    } finally {
      held.release();
    }
    // and the next call, with the port free again, connects
    const { session: alice, sdp: offer } = await Session.createOffer({ ice });
    const { session: bob, sdp: answer } = await Session.acceptOffer(offer, { ice });
    alice.acceptAnswer(answer);
    const [a, b] = await Promise.all([alice.connected({ timeoutMs: 20_000 }), bob.connected({ timeoutMs: 20_000 })]);
    const got = new Promise((r) => b.channel.onMessage(r));
    await a.channel.send('still here');
    expect(await got).toBe('still here');
    alice.close();
    bob.close();
  });
});
