/**
 * Poll mode (the camera that only connects on request): every N minutes
 * bring the link up, check the mailbox once, keep the link up while a call
 * is active (and `idle_down_seconds` after it, checking once more then),
 * and bring it down again. The agent uses this instead of watching.
 */
import type { Account } from './account.js';
import { checkOnce, type MailboxEvent, type MailboxOptions } from './mailbox.js';
import type { Link } from '../link/hooks.js';
import { sleep } from '../util/timers.js';

export interface PollOptions {
  account: Account;
  link: Link;
  /** Time between two link-up-and-check rounds. */
  everyMs: number;
  signal: AbortSignal;
  onMail: MailboxOptions['onMail'];
  /** A call is ringing, connecting or connected: keep the link up. */
  busy: () => boolean;
  onEvent?: (e: MailboxEvent) => void;
}


/** Waits while a call is active or our mail waits to be sent (the latter at most `mailMs`); true when a call was seen. */
async function whileBusy(o: PollOptions, mailMs: number): Promise<boolean> {
  let sawCall = false;
  const mailDeadline = Date.now() + mailMs;
  for (;;) {
    if (o.signal.aborted) return sawCall;
    const call = o.busy();
    sawCall ||= call;
    const mailWaiting = !call && Date.now() < mailDeadline && (await o.account.outbox.list().catch(() => [])).length > 0;
    if (!call && !mailWaiting) return sawCall;
    await sleep(250, o.signal);
  }
}

/** Runs rounds until `signal` aborts; the link is down between rounds. */
export async function pollMailbox(o: PollOptions): Promise<void> {
  const settings = o.link.settings;
  const lingerMs = (settings?.idleDownSeconds ?? 0) * 1000;
  const mailMs = (settings?.timeoutSeconds ?? 60) * 1000;
  while (!o.signal.aborted) {
    try {
      o.onEvent?.({ type: 'connecting', attempt: 0 });
      const release = await o.link.hold({ signal: o.signal });
      try {
        for (let round = 0; round < 100 && !o.signal.aborted; round++) {
          const result = await checkOnce(o.account, o.onMail);
          o.onEvent?.({ type: 'checked', result });
          const hadCall = await whileBusy(o, mailMs);
          if (!hadCall || lingerMs === 0) break;
          // A call just ended: stay reachable a while (a call back), then look once more.
          await sleep(lingerMs, o.signal);
        }
      } finally {
        release();
      }
      await o.link.down();
    } catch (err) {
      if (o.signal.aborted) break;
      o.onEvent?.({ type: 'disconnected', error: err as Error, retryInMs: o.everyMs });
      await o.link.down().catch(() => undefined);
    }
    await sleep(o.everyMs, o.signal);
  }
}
