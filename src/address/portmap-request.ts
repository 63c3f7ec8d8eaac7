/**
 * What a NAT-PMP request (portmap-natpmp.ts) and a UPnP request
 * (portmap-upnp.ts) share: the library, loaded on first use, deadlines and
 * cancelling, and the router's answer.
 */
import { PeerdialError } from '../errors.js';

/** What one request needs of MapUdpPortOptions (portmap.ts). */
export interface MapRequest {
  internalPort: number;
  /** UPnP only: the external port to ask for (default: the internal port). */
  externalPort?: number;
  signal?: AbortSignal;
}

/** Where the router forwards from. */
export interface Mapped {
  externalHost: string;
  externalPort: number;
}

export function aborted(signal: AbortSignal): PeerdialError {
  return new PeerdialError('ABORTED', 'cancelled', { cause: signal.reason });
}

export function combine(ms: number, signal?: AbortSignal): AbortSignal {
  const t = AbortSignal.timeout(Math.max(1, Math.round(ms)));
  return signal ? AbortSignal.any([t, signal]) : t;
}

/** The library, loaded on first use (~50 ms): every CLI command imports portmap.ts. */
export const library = () => import('@achingbrain/nat-port-mapper');
