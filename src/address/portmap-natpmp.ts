/**
 * NAT-PMP (RFC 6886) through `@achingbrain/nat-port-mapper` (4.0.5), and
 * where the library is worked around: it sends one request and never
 * retransmits; here each attempt is a fresh gateway object with its own
 * deadline (250, 500, 1000 ms, ... as RFC 6886 asks) within `timeoutMs`. Its
 * lifetime option goes on the wire as seconds (its refresh timer reads it as
 * ms), so its auto-refresh stays off and the lifetime is passed in seconds.
 * It binds the NAT-PMP client port 5350 (SO_REUSEADDR), so two requests of
 * one process at a time would steal each other's answers: requests are made
 * one after the other here. A socket error is caught (the library would emit
 * it unhandled). Its unmap() removes a TCP mapping whatever was mapped, so
 * removal sends the RFC 6886 deletion (UDP, lifetime 0) itself. Its map()
 * ignores `externalPort` (the suggested port is always the internal one); a
 * renewal re-requests the same internal port, which routers answer with the
 * mapping they already hold.
 */
import type { EventEmitter } from 'node:events';
import { isIPv4 } from 'node:net';
import type { Gateway } from '@achingbrain/nat-port-mapper';
import { aborted, combine, library, type Mapped, type MapRequest } from './portmap-request.js';

// One NAT-PMP exchange at a time in this process (the library binds port 5350).
let pmpQueue: Promise<unknown> = Promise.resolve();
function serialPmp<T>(fn: () => Promise<T>): Promise<T> {
  const run = pmpQueue.then(fn, fn);
  pmpQueue = run.catch(() => undefined);
  return run;
}

class RefusedError extends Error {}

/**
 * One NAT-PMP operation, retransmitted with deadlines of 250, 500, 1000 ms,
 * ... (each attempt a fresh library object, closed afterwards) within
 * `budgetMs`. A result code from the router ends it at once (RefusedError).
 */
async function pmpOperation<T>(
  gateway: string,
  budgetMs: number,
  signal: AbortSignal | undefined,
  op: (gw: Gateway, signal: AbortSignal) => Promise<T>,
): Promise<T> {
  // The deadline starts now, so waiting for another exchange counts too:
  // unmapAll() of several mappings stays within its timeout.
  const deadline = Date.now() + budgetMs;
  return serialPmp(async () => {
    let wait = 250;
    let attempts = 0;
    for (;;) {
      if (signal?.aborted) throw aborted(signal);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no NAT-PMP answer from ${gateway}:5351 within ${budgetMs} ms (${attempts} request${attempts === 1 ? '' : 's'})`);
      attempts++;
      const gw = (await library()).pmpNat(gateway, { autoRefresh: false });
      let socketError: Error | undefined;
      (gw as unknown as EventEmitter).on('error', (err: Error) => (socketError = err));
      const attempt = combine(Math.min(wait, left), signal);
      try {
        return await op(gw, attempt);
      } catch (err) {
        if (signal?.aborted) throw aborted(signal);
        if (socketError) throw new Error(`NAT-PMP socket error: ${socketError.message}`, { cause: socketError });
        if (attempt.aborted) {
          wait *= 2; // no answer in time: ask again
          continue;
        }
        // The library rejects with the router's result code as `code`.
        const code = (err as { code?: unknown }).code;
        if (typeof code === 'number') throw new RefusedError(`the router ${gateway} refused over NAT-PMP: ${(err as Error).message} (result ${code})`, { cause: err });
        throw err; // a local failure
      } finally {
        try {
          await gw.stop();
        } catch {
          /* socket already closed */
        }
      }
    }
  });
}

export async function natpmpMap(gateway: string, internalHost: string, o: MapRequest, ttlSeconds: number, budgetMs: number): Promise<Mapped> {
  const m = await pmpOperation(gateway, budgetMs, o.signal, (gw, signal) =>
    gw.map(o.internalPort, internalHost, {
      protocol: 'udp',
      externalPort: o.externalPort ?? o.internalPort,
      ttl: ttlSeconds, // seconds on the wire (see the header)
      autoRefresh: false,
      description: 'peerdial',
      signal,
    }),
  );
  if (!m.externalHost || !isIPv4(m.externalHost) || m.externalPort <= 0) {
    throw new Error(`the router ${gateway} answered NAT-PMP with an unusable mapping (${m.externalHost}:${m.externalPort})`);
  }
  return { externalHost: m.externalHost, externalPort: m.externalPort };
}

export async function natpmpUnmap(gateway: string, internalPort: number, timeoutMs: number): Promise<void> {
  // RFC 6886 3.4: a request for the internal port with lifetime 0 and
  // external port 0. (The library's unmap() asks for TCP: opcode 2.)
  await pmpOperation(gateway, timeoutMs, undefined, (gw, signal) =>
    gw.map(internalPort, '', { protocol: 'udp', externalPort: 0, ttl: 0, autoRefresh: false, signal }),
  );
}
