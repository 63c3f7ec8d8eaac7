/**
 * A call's session as the phone (phone.ts) watches it: the ICE settings it
 * starts with, and its machine fed when it connects, fails to, closes, or
 * its session process crashes.
 */
import type { CallSession } from '../session/index.js';
import type { Channel, IceConfig } from '../session/types.js';
import { callIce } from './mapped-ice.js';
import { withRelays } from './relays.js';
import { CONTROL_BYE, failureEvent, type AnyRecord } from './call-record.js';
import type { PhoneParts } from './phone-parts.js';

/**
 * ICE settings for one attempt: with `port_mapping`, a local UDP port the
 * router forwards (a failure is reported and the call goes on without).
 */
export function iceFor(p: PhoneParts, rec: AnyRecord): Promise<IceConfig> {
  const onError = (error: Error) => p.emit({ type: 'error', error });
  return withRelays(p.o.ice, p.o.relays, onError).then((ice) => callIce(rec, ice, p.o.portMapping, onError));
}

/** The session connected (a bye on its control channel is the peer hanging up), or failed to within `timeoutMs`. */
export function awaitConnected(p: PhoneParts, rec: AnyRecord, session: CallSession, timeoutMs: number): void {
  session.connected({ timeoutMs }).then(
    (c) => {
      rec.connected = c;
      hookControl(p, rec, c.channel);
      p.feed(rec, { type: 'session-connected' });
    },
    (err) => p.feed(rec, failureEvent(rec, err)),
  );
}

/** How a session says its connection was closed in order (session.ts), not lost. */
const PEER_CLOSED = 'the connection closed';

/**
 * The session closed (its process may have crashed). A connected call that
 * can restart (phone-restart.ts) gets a new transport instead of ending;
 * a session the call has already left for a new one is no longer its.
 */
export function watchSession(p: PhoneParts, rec: AnyRecord, session: CallSession): void {
  session.onClose((reason) => {
    const crash = 'crash' in session && Boolean(session.crash);
    if (crash) void crashed(p, rec, reason);
    if (rec.left?.has(session)) return;
    // closed in order by the peer (its hang-up whose bye did not come first): the call ends as before,
    // unless a restart is under way: then the peer closed the transport it has just left for the new one
    const restarting = rec.restart !== undefined && rec.restart.state !== 'steady';
    if (!crash && rec.restart && rec.m.state === 'connected' && (reason !== PEER_CLOSED || restarting)) rec.restart.transportLost(reason);
    else p.feed(rec, { type: 'session-closed', reason });
  });
}

/** The session process of this call crashed: the call log and the agent's log say so. */
async function crashed(p: PhoneParts, rec: AnyRecord, reason: string): Promise<void> {
  p.emit({ type: 'session-crashed', callId: rec.callId, direction: rec.direction, peer: rec.peer, detail: reason });
  await p.o.account.calls
    .append({ at: p.timers.now().toISOString(), direction: rec.direction, peer: rec.peer, callId: rec.callId, outcome: 'session-crashed', detail: reason })
    .catch((err) => p.emit({ type: 'error', error: err as Error }));
}

/** The control channel of a call's (present) transport: a bye is the peer hanging up, an update frame goes to the call's restarts. */
export function hookControl(p: PhoneParts, rec: AnyRecord, channel: Channel): void {
  channel.onMessage((data) => {
    if (typeof data === 'string' && data === CONTROL_BYE) p.feed(rec, { type: 'peer-hangup', how: 'channel' });
    else rec.restart?.fromControl(data);
  });
}
