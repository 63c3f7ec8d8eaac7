/**
 * TURN relays in a session: the relays the user configured become
 * node-datachannel ICE servers (TURN over UDP, the only kind libjuice
 * speaks), and a connected session's selected candidate pair tells whether
 * the call goes through a relay. Pure: no native code is loaded here.
 */
import type { CandidatePair, TurnRelay } from './types.js';

/** node-datachannel's object form of an ICE server (IPv6 addresses work only in this form). */
export interface RelayIceServer {
  hostname: string;
  port: number;
  username: string;
  password: string;
  relayType: 'TurnUdp';
}

/** The configured relays as ICE servers; none configured, none gathered. */
export function relayIceServers(turn: readonly TurnRelay[] | undefined): RelayIceServer[] {
  return (turn ?? []).map((t) => ({ hostname: t.host, port: t.port, username: t.username, password: t.password, relayType: 'TurnUdp' }));
}

/** How the call's packets travel: through a TURN relay, or directly between the two sites. */
export type CallPath = 'relayed' | 'direct';

/**
 * `relayed` when either end of the selected pair is a relay candidate
 * ("relay 198.51.100.7:49160/udp"): one side sends to its relay, or to
 * the other side's.
 */
export function callPath(pair: CandidatePair | undefined): CallPath | undefined {
  if (!pair || pair.local === 'unknown') return undefined;
  return [pair.local, pair.remote].some((c) => /^relay /.test(c)) ? 'relayed' : 'direct';
}

/** "relayed through 198.51.100.7:49160 (TURN)" or "direct", for the call output. */
export function describePath(pair: CandidatePair | undefined): string {
  const path = callPath(pair);
  if (path === undefined) return 'path unknown';
  if (path === 'direct') return 'direct';
  const relay = [pair!.local, pair!.remote].find((c) => /^relay /.test(c))!;
  return `relayed through ${relay.split(' ')[1]?.replace(/\/udp$/, '')} (TURN)`;
}
