/** Waiting on a connected call: for a channel the peer opens, for its end. */
import type { Channel } from '../session/types.js';
import { carrierChannelNamed } from '../carriers/index.js';
import type { ActiveCall } from './phone-types.js';

/** Waits for the peer to open a channel with this label. */
export function channelNamed(call: ActiveCall, label: string): Promise<Channel> {
  // a TLS lane (carriers/tls-lane.ts) or a DataChannel, whichever the peer opens
  return carrierChannelNamed(call, label);
}

/** Resolves when the call has ended or after `ms`, whichever comes first. */
export async function waitEnded(call: ActiveCall, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([call.ended, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
