/**
 * When a call's session closes: a connection the peer closes in order ends
 * the call, unless a restart is under way (the peer has just left that
 * transport for the new one, and its close may come before this side has
 * switched); a lost one restarts.
 */
import { describe, expect, it } from 'vitest';
import { watchSession } from '../../src/agent/phone-session.js';
import type { AnyRecord } from '../../src/agent/call-record.js';
import type { PhoneParts } from '../../src/agent/phone-parts.js';
import type { CallSession } from '../../src/session/index.js';

function scene(restartState: string) {
  const fed: unknown[] = [];
  const lost: string[] = [];
  let close: (reason: string) => void = () => undefined;
  const session = { onClose: (cb: (reason: string) => void) => (close = cb) } as unknown as CallSession;
  const rec = {
    m: { state: 'connected' },
    restart: { state: restartState, transportLost: (r: string) => lost.push(r) },
  } as unknown as AnyRecord;
  const parts = { feed: (_rec: AnyRecord, e: unknown) => fed.push(e) } as unknown as PhoneParts;
  watchSession(parts, rec, session);
  return { close: (reason: string) => close(reason), fed, lost };
}

describe('a call session closing', () => {
  it('closed in order by the peer, no restart under way: the call ends', () => {
    const s = scene('steady');
    s.close('the connection closed');
    expect(s.fed).toEqual([{ type: 'session-closed', reason: 'the connection closed' }]);
    expect(s.lost).toEqual([]);
  });

  it('closed in order by the peer while a restart connects the new transport: the restart goes on, the call does not end', () => {
    const s = scene('connecting');
    s.close('the connection closed');
    expect(s.fed).toEqual([]);
    expect(s.lost).toEqual(['the connection closed']);
  });

  it('lost: the call restarts', () => {
    const s = scene('steady');
    s.close('ICE failed');
    expect(s.fed).toEqual([]);
    expect(s.lost).toEqual(['ICE failed']);
  });
});
