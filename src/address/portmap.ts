/**
 * Router port mapping: asks the home router to forward a UDP port from its
 * public address to this machine, with NAT-PMP (RFC 6886, portmap-natpmp.ts)
 * or UPnP-IGD v2 (portmap-upnp.ts), through `@achingbrain/nat-port-mapper`.
 * With a mapping, peers reach the port even when this side sits behind a
 * symmetric or port-restricted NAT (notes/nat.md: miniupnpd also rewrites
 * the source port of outgoing packets to the external port, so the
 * STUN-reflexive candidate equals the mapping).
 *
 * Every mapping made here is kept in a registry until it is removed:
 * `activeMappings()` lists them and `unmapAll()` removes them all and can be
 * awaited (the agent calls it on shutdown; an 'exit' handler could not wait
 * for the router's answer).
 */
import { isIPv4 } from 'node:net';
import { PeerdialError } from '../errors.js';
import { defaultGateway, localAddressToward } from './gateway.js';
import { natpmpMap, natpmpUnmap } from './portmap-natpmp.js';
import { aborted, type Mapped } from './portmap-request.js';
import { findUpnpGateway, upnpDelete, upnpMap, type UpnpGateway } from './portmap-upnp.js';

export type PortMapMethod = 'natpmp' | 'upnp';

export interface PortMapping {
  method: PortMapMethod;
  /** The router's public address: where peers send to. */
  externalHost: string;
  externalPort: number;
  /** This machine's address toward the router, and the mapped local port. */
  internalHost: string;
  internalPort: number;
  /** The router that holds the mapping (NAT-PMP: its address; UPnP: the IGD's host). */
  gateway: string;
  /** When the router drops the mapping unless it is renewed. */
  expiresAt: Date;
  /** Removes the mapping from the router (and from the registry); a second call does nothing. */
  unmap(): Promise<void>;
}

export interface MapUdpPortOptions {
  internalPort: number;
  /** This machine's address toward the router (default: the one the kernel would use to reach it). */
  internalHost?: string;
  /** The router (default: the IPv4 default gateway from /proc/net/route). Also restricts UPnP to that host. */
  gateway?: string;
  /** 'auto' (default): NAT-PMP to the gateway first, then UPnP. */
  method?: 'auto' | 'upnp' | 'natpmp';
  /** Requested lifetime (default 3600 s). */
  ttlSeconds?: number;
  /** Overall time for the attempt (default 5000 ms); in 'auto', NAT-PMP gets up to 40 % of it (at most 2 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * UPnP only: the external port to ask for (default: the internal port);
   * the router may choose another. (NAT-PMP through the library always
   * suggests the internal port.)
   */
  externalPort?: number;
  /** Renew the mapping at half its lifetime until unmap() (timers do not keep the process alive). */
  renew?: boolean;
  /** Called after a renewal changed the external address or port (or failed: `error`). */
  onChange?: (m: PortMapping, error?: PeerdialError) => void;
}

/** What a mapping means for reachability, for `peerdial address` and doctor. */
export const MAPPING_MEANING = 'peers can reach this port even behind a symmetric NAT';

export const PORTMAP_HINT =
  'enable UPnP or NAT-PMP on your router, or forward a UDP port by hand and set [ice] port_range_begin/end';

/** "EXT:PORT -> INT:PORT via natpmp" */
export function describeMapping(m: Pick<PortMapping, 'externalHost' | 'externalPort' | 'internalHost' | 'internalPort' | 'method'>): string {
  return `${m.externalHost}:${m.externalPort} -> ${m.internalHost}:${m.internalPort} via ${m.method}`;
}

/** A plain-data view of a mapping (for JSON). */
export function mappingInfo(m: PortMapping): Omit<PortMapping, 'unmap' | 'expiresAt'> & { expiresAt: string } {
  return {
    method: m.method,
    externalHost: m.externalHost,
    externalPort: m.externalPort,
    internalHost: m.internalHost,
    internalPort: m.internalPort,
    gateway: m.gateway,
    expiresAt: m.expiresAt.toISOString(),
  };
}

// ---------------------------------------------------------------------------
// The registry.

const registry = new Set<Mapping>();

/** Mappings made by this process and not yet removed. */
export function activeMappings(): PortMapping[] {
  return [...registry];
}

/**
 * Removes every mapping of this process from its router, each bounded by
 * `timeoutMs` (default 3000), all at once. Never throws: failures are listed.
 */
export async function unmapAll(opts: { timeoutMs?: number } = {}): Promise<{ removed: PortMapping[]; failed: Array<{ mapping: PortMapping; error: string }> }> {
  const all = [...registry];
  const results = await Promise.allSettled(all.map((m) => m.unmap(opts.timeoutMs)));
  const removed: PortMapping[] = [];
  const failed: Array<{ mapping: PortMapping; error: string }> = [];
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') removed.push(all[i]!);
    else failed.push({ mapping: all[i]!, error: (r.reason as Error)?.message ?? String(r.reason) });
  });
  return { removed, failed };
}

// ---------------------------------------------------------------------------
// Errors.

function failed(message: string, cause?: unknown): PeerdialError {
  return new PeerdialError('PORTMAP_FAILED', message, { hint: `${PORTMAP_HINT[0]!.toUpperCase()}${PORTMAP_HINT.slice(1)}.`, cause });
}

// ---------------------------------------------------------------------------
// The mapping object.

class Mapping implements PortMapping {
  externalHost: string;
  externalPort: number;
  expiresAt: Date;
  private gone = false;
  private removing: Promise<void> | undefined;
  private renewTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly method: PortMapMethod,
    m: Mapped,
    readonly internalHost: string,
    readonly internalPort: number,
    readonly gateway: string,
    private readonly ttlSeconds: number,
    private readonly upnp: UpnpGateway | undefined,
    private readonly opts: MapUdpPortOptions,
  ) {
    this.externalHost = m.externalHost;
    this.externalPort = m.externalPort;
    this.expiresAt = new Date(Date.now() + ttlSeconds * 1000);
    registry.add(this);
    if (opts.renew) this.scheduleRenew(ttlSeconds * 500);
  }

  private scheduleRenew(ms: number): void {
    this.renewTimer = setTimeout(() => void this.renew(), Math.max(1000, ms));
    this.renewTimer.unref();
  }

  private async renew(): Promise<void> {
    if (this.gone) return;
    const before = `${this.externalHost}:${this.externalPort}`;
    const { signal: _ignored, ...rest } = this.opts;
    const o: MapUdpPortOptions = { ...rest, externalPort: this.externalPort }; // UPnP: keep the port
    try {
      const m =
        this.method === 'natpmp'
          ? await natpmpMap(this.gateway, this.internalHost, o, this.ttlSeconds, 5000)
          : await upnpMap(this.upnp!, this.internalHost, o, this.ttlSeconds, 5000);
      if (this.gone) return;
      this.externalHost = m.externalHost;
      this.externalPort = m.externalPort;
      this.expiresAt = new Date(Date.now() + this.ttlSeconds * 1000);
      this.scheduleRenew(this.ttlSeconds * 500);
      if (`${m.externalHost}:${m.externalPort}` !== before) this.opts.onChange?.(this);
    } catch (err) {
      if (this.gone) return;
      // Try again at a quarter of what is left (at least 5 s), until it expires.
      const left = this.expiresAt.getTime() - Date.now();
      if (left > 5000) this.scheduleRenew(Math.max(5000, left / 4));
      this.opts.onChange?.(this, failed(`renewing the router mapping ${describeMapping(this)} failed: ${(err as Error).message}`, err));
    }
  }

  unmap(timeoutMs = 3000): Promise<void> {
    if (this.gone) return this.removing ?? Promise.resolve();
    this.gone = true;
    clearTimeout(this.renewTimer);
    this.removing = (async () => {
      try {
        if (this.method === 'natpmp') await natpmpUnmap(this.gateway, this.internalPort, timeoutMs);
        else {
          const device = await this.upnp!.getGateway({ signal: AbortSignal.timeout(timeoutMs) });
          await upnpDelete(device, this.externalPort, timeoutMs);
        }
      } catch (err) {
        throw failed(`could not remove the router mapping ${describeMapping(this)}: ${(err as Error).message}; the router drops it at ${this.expiresAt.toISOString()}`, err);
      } finally {
        registry.delete(this);
      }
    })();
    return this.removing;
  }
}

// ---------------------------------------------------------------------------
// The entry point.

/**
 * Asks the router to forward UDP `internalPort`. Rejects with PORTMAP_FAILED
 * (with a hint) when no router answers or every router refuses, ABORTED on
 * the signal; never takes much longer than `timeoutMs`.
 */
export async function mapUdpPort(opts: MapUdpPortOptions): Promise<PortMapping> {
  const method = opts.method ?? 'auto';
  const timeoutMs = opts.timeoutMs ?? 5000;
  const ttlSeconds = Math.max(1, Math.min(604_800, Math.round(opts.ttlSeconds ?? 3600)));
  if (!Number.isInteger(opts.internalPort) || opts.internalPort < 1 || opts.internalPort > 65535) {
    throw new PeerdialError('USAGE', `not a UDP port: ${opts.internalPort}`);
  }
  if (opts.signal?.aborted) throw aborted(opts.signal);
  const explicitGateway = opts.gateway !== undefined;
  const gateway = opts.gateway ?? defaultGateway();
  if (gateway !== undefined && !isIPv4(gateway)) throw new PeerdialError('USAGE', `the gateway must be an IPv4 address: ${gateway}`);
  const deadline = Date.now() + timeoutMs;
  const why: string[] = [];

  if (method === 'natpmp' || method === 'auto') {
    if (!gateway) why.push('NAT-PMP: no IPv4 default gateway in /proc/net/route');
    else {
      const budget = method === 'auto' ? Math.min(2000, timeoutMs * 0.4) : timeoutMs;
      try {
        const internalHost = opts.internalHost ?? (await localAddressToward(gateway));
        const m = await natpmpMap(gateway, internalHost, opts, ttlSeconds, budget);
        return new Mapping('natpmp', m, internalHost, opts.internalPort, gateway, ttlSeconds, undefined, opts);
      } catch (err) {
        if (err instanceof PeerdialError && err.code === 'ABORTED') throw err;
        why.push(`NAT-PMP: ${(err as Error).message}`);
      }
    }
  }
  if (method === 'upnp' || method === 'auto') {
    try {
      const g = await findUpnpGateway(gateway, explicitGateway, Math.max(1, deadline - Date.now()), opts.signal);
      const internalHost = opts.internalHost ?? (await localAddressToward(g.host));
      const m = await upnpMap(g, internalHost, opts, ttlSeconds, Math.max(1000, deadline - Date.now()));
      return new Mapping('upnp', m, internalHost, opts.internalPort, g.host, ttlSeconds, g, opts);
    } catch (err) {
      if (err instanceof PeerdialError && err.code === 'ABORTED') throw err;
      if (opts.signal?.aborted) throw aborted(opts.signal);
      why.push(`UPnP: ${(err as Error).message}`);
    }
  }
  throw failed(`no router mapped UDP port ${opts.internalPort}: ${why.join('; ')}`);
}
