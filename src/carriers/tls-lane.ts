/**
 * The TLS lane (issue 17): bulk data over TLS 1.3 on TCP instead of a
 * DataChannel, whose usrsctp is CPU-bound. No new trust: both sides show the
 * per-call certificate their DTLS used (session/certificate.ts), and each
 * checks that the other's is the one named by the `a=fingerprint` lines of
 * the other's signed description (mutual TLS, the certificate chain is not
 * looked at, the fingerprint is). A one-time token, sent over the call's
 * control channel, binds the TCP connection to this call.
 *
 *   offerer (opens the carrier channel)      answerer
 *   listen on TCP, host of the selected
 *   ICE candidate, any port
 *   control: {"t":"tls-offer","at":"host:port","token":..,"label":..}  ->
 *                                             connect (short timeout), TLS 1.3,
 *                                             check the server's fingerprint,
 *                                  <-  token (32 bytes)
 *   check the client's fingerprint and the token
 *   ack (1 byte)                    ->
 *   ... messages as on a channel (tls-channel.ts) ...
 *
 * If anything fails the answerer says {"t":"tls-failed","token":..} on the
 * control channel and the offerer opens a DataChannel as before; the user
 * sees only `via datachannel`. The answerer connects only to the host of
 * its own selected candidate pair's remote side: an offer cannot make it
 * knock on other machines.
 */
import { PeerdialError } from '../errors.js';
import type { CandidatePair, Channel } from '../session/types.js';
import { isHostName, isPort } from './frames.js';
import { TlsChannel } from './tls-channel.js';
import { LANE_CONNECT_TIMEOUT_MS, LANE_HANDSHAKE_GUARD_MS, connectLane, laneIdentity, listenLane, type LaneIdentity, type LaneListener } from './tls-lane-connection.js';

export {
  LANE_CONNECT_TIMEOUT_MS,
  connectLane,
  laneIdentity,
  listenLane,
  refusePeerCertificate,
  type LaneConnection,
  type LaneIdentity,
  type LaneListener,
} from './tls-lane-connection.js';

/** Default wait of the offerer for a lane (an answerer that does not know lanes never answers). */
export const LANE_OFFER_WAIT_MS = 10_000;

/** What a call gives the lane (ActiveCall has all of it). */
export interface LaneCall {
  readonly control: Channel;
  readonly pair: CandidatePair;
  readonly session: {
    openChannel(label: string, opts?: { protocol?: string }): Promise<Channel>;
    onChannel(cb: (channel: Channel) => void): void;
  };
  readonly ended: Promise<string>;
  readonly tls?: { certPemFile: string; keyPemFile: string; peerSdp: string };
}

export type Via = 'tls' | 'datachannel';

export interface CarrierChannel {
  channel: Channel;
  via: Via;
  /** Why the lane was not used (via datachannel). */
  reason?: string;
}

export interface LaneOptions {
  /** The answerer's connect timeout. */
  connectTimeoutMs?: number;
  /** The offerer's wait for the lane. */
  offerWaitMs?: number;
  /** False: do not try a lane, use the DataChannel (PEERDIAL_LANE=datachannel in the CLI). Default true. */
  lane?: boolean;
}

/** Which carrier a channel is: a TLS lane or a DataChannel. */
export function viaOf(channel: Channel): Via {
  return channel instanceof TlsChannel ? 'tls' : 'datachannel';
}

/** Ends a lane gracefully and waits until the peer has read everything; nothing for a DataChannel. */
export async function settleChannel(channel: Channel): Promise<void> {
  if (channel instanceof TlsChannel) await channel.closed();
}

// ---------------------------------------------------------------------------
// Lanes of a call

interface LaneOffer {
  t: 'tls-offer';
  at: string;
  token: string;
  label: string;
  protocol: string;
}

interface CallLanes {
  identity?: Promise<LaneIdentity>;
  /** Offerer: waiting offers by token; called with a reason when the answerer could not connect. */
  failed: Map<string, (reason: string) => void>;
  /** Answerer: lanes that arrived, and who waits for them. */
  arrived: Channel[];
  listeners: Array<(channel: Channel) => void>;
  open: Set<TlsChannel>;
  /** The control channel whose lane messages are read (a call that moves to a new transport has a new one). */
  hooked?: Channel;
  /** Answerer: what an offer from the peer leads to (answerLanes). */
  onOffer?: (offer: LaneOffer) => void;
}

const lanesOf = new WeakMap<LaneCall, CallLanes>();

function lanes(call: LaneCall): CallLanes {
  let state = lanesOf.get(call);
  if (state === undefined) {
    const fresh: CallLanes = { failed: new Map(), arrived: [], listeners: [], open: new Set() };
    state = fresh;
    lanesOf.set(call, fresh);
    // The call is gone: lanes end gracefully (what is in flight still arrives; tls-channel.ts).
    void call.ended.then(() => {
      for (const ch of fresh.open) ch.close();
      for (const fail of fresh.failed.values()) fail('the call ended');
    });
  }
  return state;
}

function identityOf(call: LaneCall, state: CallLanes): Promise<LaneIdentity> | undefined {
  if (call.tls === undefined) return undefined;
  state.identity ??= laneIdentity(call.tls);
  return state.identity;
}

function track(state: CallLanes, channel: TlsChannel): TlsChannel {
  state.open.add(channel);
  channel.onClose(() => state.open.delete(channel));
  return channel;
}

/** "host" of a formatted candidate ("host 127.0.0.1:5000/udp", "srflx [::1]:5000/udp"). */
export function candidateHost(candidate: string): string | undefined {
  const m = /^\S+ (?:\[([0-9a-fA-F:.]+)\]|([^\s:]+)):\d+\//.exec(candidate);
  return m?.[1] ?? m?.[2];
}

/** Reads the lane messages on the call's present control channel (again on a new one after the call moved to a new transport). */
function hookControl(call: LaneCall, state: CallLanes, onOffer?: (offer: LaneOffer) => void): void {
  if (onOffer) state.onOffer = onOffer;
  if (state.hooked === call.control) return;
  state.hooked = call.control;
  call.control.onMessage((data) => {
    if (typeof data !== 'string' || !data.startsWith('{"t":"tls-')) return;
    let body: unknown;
    try {
      body = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof body !== 'object' || body === null) return;
    const b = body as Record<string, unknown>;
    if (b.t === 'tls-failed' && typeof b.token === 'string') {
      state.failed.get(b.token)?.(typeof b.reason === 'string' ? b.reason.slice(0, 200) : 'the peer could not connect');
    } else if (b.t === 'tls-offer' && state.onOffer) {
      const offer = parseOffer(b);
      if (offer) state.onOffer(offer);
    }
  });
}

function parseOffer(b: Record<string, unknown>): LaneOffer | undefined {
  if (typeof b.at !== 'string' || typeof b.token !== 'string' || typeof b.label !== 'string') return undefined;
  if (!/^[0-9a-f]{64}$/.test(b.token)) return undefined;
  if (!/^[\x21-\x7e]{1,64}$/.test(b.label)) return undefined;
  const protocol = typeof b.protocol === 'string' && /^[\x21-\x7e]{0,64}$/.test(b.protocol) ? b.protocol : '';
  return { t: 'tls-offer', at: b.at, token: b.token, label: b.label, protocol };
}

function splitHostPort(at: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(at);
  if (!m) return undefined;
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  return isHostName(host) && isPort(port) ? { host, port } : undefined;
}

/**
 * Offerer: a channel for a carrier, over a TLS lane when the peer can reach
 * us over TCP, else a DataChannel (as before). Never fails because of the
 * lane; fails only as openChannel() does.
 */
export async function openCarrierChannel(call: LaneCall, label: string, opts: LaneOptions & { protocol?: string } = {}): Promise<CarrierChannel> {
  const protocol = opts.protocol ?? '';
  const lane = opts.lane === false ? { reason: 'the TLS lane is turned off' } : await tryLane(call, label, protocol, opts.offerWaitMs ?? LANE_OFFER_WAIT_MS);
  if ('channel' in lane) return { channel: lane.channel, via: 'tls' };
  const channel = await call.session.openChannel(label, protocol ? { protocol } : {});
  return { channel, via: 'datachannel', reason: lane.reason };
}

async function tryLane(call: LaneCall, label: string, protocol: string, waitMs: number): Promise<{ channel: TlsChannel } | { reason: string }> {
  const state = lanes(call);
  const identity = identityOf(call, state);
  if (identity === undefined) return { reason: 'this call has no certificate for a lane' };
  const host = candidateHost(call.pair.local);
  if (host === undefined) return { reason: `no address in the selected candidate (${call.pair.local})` };
  let listener: LaneListener;
  try {
    listener = await listenLane({ host, identity: await identity });
  } catch (err) {
    return { reason: `cannot listen on ${host}: ${(err as Error).message}` };
  }
  hookControl(call, state);
  let timer: NodeJS.Timeout | undefined;
  const failed = new Promise<{ reason: string }>((resolve) => {
    state.failed.set(listener.token, (reason) => resolve({ reason }));
    timer = setTimeout(() => resolve({ reason: `no lane within ${waitMs} ms` }), waitMs);
    timer.unref();
    // the peer's connection got through: its handshake gets the guard, not the rest of the wait
    void listener.arrived.then(() => {
      clearTimeout(timer);
      timer = setTimeout(() => resolve({ reason: `no TLS handshake within ${LANE_HANDSHAKE_GUARD_MS} ms` }), LANE_HANDSHAKE_GUARD_MS);
      timer.unref();
    });
  });
  try {
    const at = host.includes(':') ? `[${host}]:${listener.port}` : `${host}:${listener.port}`;
    await call.control.send(JSON.stringify({ t: 'tls-offer', at, token: listener.token, label, protocol } satisfies LaneOffer));
    const got = await Promise.race([listener.accepted.then((c) => ({ connection: c })), failed]);
    if ('reason' in got) return got;
    return { channel: track(state, new TlsChannel(got.connection.socket, label, protocol, got.connection.leftover)) };
  } catch (err) {
    return { reason: (err as Error).message };
  } finally {
    clearTimeout(timer);
    state.failed.delete(listener.token);
    listener.close();
  }
}

/**
 * Answerer: from now on, connect to the lanes the peer offers on this call.
 * Call it as soon as the call is connected (before anything awaits): an
 * offer that arrives before it is missed and costs the peer its wait.
 */
export function answerLanes(call: LaneCall, opts: LaneOptions = {}): void {
  const state = lanes(call);
  hookControl(call, state, (offer) => {
    void connectOffered(call, state, offer, opts.connectTimeoutMs ?? LANE_CONNECT_TIMEOUT_MS).catch((err: Error) => {
      if (call.control.isOpen) call.control.send(JSON.stringify({ t: 'tls-failed', token: offer.token, reason: err.message })).catch(() => undefined);
    });
  });
}

async function connectOffered(call: LaneCall, state: CallLanes, offer: LaneOffer, timeoutMs: number): Promise<void> {
  const identity = identityOf(call, state);
  if (identity === undefined) throw new Error('no certificate for a lane');
  const target = splitHostPort(offer.at);
  if (target === undefined) throw new Error('malformed lane address');
  const remote = candidateHost(call.pair.remote);
  if (remote === undefined || remote.toLowerCase() !== target.host.toLowerCase()) {
    throw new Error(`the lane address ${target.host} is not the peer's candidate address`);
  }
  const { socket, leftover } = await connectLane({ ...target, token: offer.token, identity: await identity, timeoutMs });
  const channel = track(state, new TlsChannel(socket, offer.label, offer.protocol, leftover));
  if (state.listeners.length === 0) state.arrived.push(channel);
  else for (const cb of state.listeners) cb(channel);
}

/** Every carrier channel the peer opens on this call: lanes and DataChannels. */
export function onCarrierChannel(call: LaneCall, cb: (channel: Channel) => void): void {
  const state = lanes(call);
  state.listeners.push(cb);
  for (const ch of state.arrived.splice(0)) cb(ch);
  call.session.onChannel(cb);
}

/** The carrier channel called `label` the peer opens, lane or DataChannel, whichever comes. */
export function carrierChannelNamed(call: LaneCall, label: string): Promise<Channel> {
  return new Promise((resolve, reject) => {
    onCarrierChannel(call, (ch) => {
      if (ch.label === label) resolve(ch);
    });
    void call.ended.then((state) => reject(new PeerdialError('SESSION_CLOSED', `the call ended (${state}) before the peer opened channel "${label}"`)));
  });
}
