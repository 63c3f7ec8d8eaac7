/** Waiting on a connected call: for a channel the peer opens, for its end. */
import { PeerdialError } from '../errors.js';
import type { Channel } from '../session/types.js';
import type { ActiveCall } from './phone-types.js';

/** Waits for the peer to open a channel with this label. */
export function channelNamed(call: ActiveCall, label: string): Promise<Channel> {
  return new Promise((resolve, reject) => {
    call.session.onChannel((ch) => {
      if (ch.label === label) resolve(ch);
    });
    void call.ended.then((state) => reject(new PeerdialError('SESSION_CLOSED', `the call ended (${state}) before the peer opened channel "${label}"`)));
  });
}

/** Resolves when the call has ended or after `ms`, whichever comes first. */
export async function waitEnded(call: ActiveCall, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([call.ended, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
