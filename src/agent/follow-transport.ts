/**
 * Carriers that follow a call onto a new transport (phone-restart.ts):
 * the work runs on the call's present transport; when the call moves to a
 * new one under it, the work is aborted and runs again there. A file
 * transfer then resumes after the bytes the receiver kept (carriers/file-*.ts).
 * A call that cannot restart (no ActiveCall.transport) runs the work once.
 */
import type { ActiveCall } from './phone-types.js';

/** How long a failure of the work waits for a restart to begin (the transport's loss may be told after its channel's). */
const RESTART_NOTICE_MS = 2_000;

export interface Followed<T> {
  result: T;
  /** On how many transports the work ran (1: the call never moved). */
  attempts: number;
}

/** Runs `work` on the call's present transport, and again on each new one it moves to before the work is done. */
export async function onEveryTransport<T>(call: ActiveCall, work: (signal: AbortSignal, attempt: number) => Promise<T>): Promise<Followed<T>> {
  const t = call.transport;
  if (!t) return { result: await work(new AbortController().signal, 1), attempts: 1 };
  let ended = false;
  void call.ended.then(() => (ended = true));
  for (let attempt = 1; ; attempt++) {
    const generation = t.generation;
    const aborted = new AbortController();
    let switched!: () => void;
    const next = new Promise<'switched'>((r) => (switched = () => r('switched')));
    const off = t.onSwitch(() => {
      aborted.abort();
      switched();
    });
    try {
      return { result: await work(aborted.signal, attempt), attempts: attempt };
    } catch (err) {
      if (t.generation === generation) {
        // the transport went under the work: a restart is (or is about to be) under way
        for (let waited = 0; !t.restarting && !ended && t.generation === generation && waited < RESTART_NOTICE_MS; waited += 100) await new Promise((r) => setTimeout(r, 100));
        if (t.generation === generation) {
          if (!t.restarting) throw err;
          const how = await Promise.race([next, call.ended.then(() => 'ended' as const)]);
          if (how === 'ended') throw err;
        }
      }
    } finally {
      off();
    }
  }
}

/** `p`, or a rejection once `signal` aborts (a step that waits on a transport the call has left). */
export function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('the call moved to a new transport'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('the call moved to a new transport'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}

/**
 * `channel`, closed when `signal` aborts: a TLS lane's TCP connection does
 * not go with the old transport's session, and a transfer blocked on it
 * would not notice the abort.
 */
export function closedOnAbort<C extends { close(): void }>(channel: C, signal: AbortSignal): C {
  if (signal.aborted) channel.close();
  else signal.addEventListener('abort', () => channel.close(), { once: true });
  return channel;
}
