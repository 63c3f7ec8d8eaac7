/**
 * A promise with its resolve and reject at hand, settled at most once: what
 * connected() and the session hosts' "made" wait on. Its rejection is
 * observed here, so a deferred nobody awaits is never an unhandled rejection.
 * settledWithin() waits for one with a deadline and a signal.
 */
import { abortedError } from './session-errors.js';

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
  settled: boolean;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const d: Deferred<T> = {
    promise: new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    }),
    resolve: (v) => {
      if (d.settled) return;
      d.settled = true;
      resolve(v);
    },
    reject: (e) => {
      if (d.settled) return;
      d.settled = true;
      reject(e);
    },
    settled: false,
  };
  d.promise.catch(() => undefined); // observed by whoever awaits it; never unhandled
  return d;
}

/**
 * `promise`, or a rejection with timedOut() once `timeoutMs` has passed, or
 * ABORTED on the signal. The promise itself is left as it is.
 */
export function settledWithin<T>(promise: Promise<T>, timeoutMs: number, signal: AbortSignal | undefined, timedOut: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      done();
      reject(abortedError(signal!));
    };
    const timer = setTimeout(() => {
      done();
      reject(timedOut());
    }, timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        done();
        resolve(v);
      },
      (e) => {
        done();
        reject(e);
      },
    );
  });
}
