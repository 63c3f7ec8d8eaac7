/**
 * Router port mapping: asks the home router to forward a UDP port from its
 * public address to this machine, with NAT-PMP (RFC 6886) or UPnP-IGD v2,
 * through `@achingbrain/nat-port-mapper`. With a mapping, peers reach the
 * port even when this side sits behind a symmetric or port-restricted NAT
 * (notes/nat.md: miniupnpd also rewrites the source port of outgoing packets
 * to the external port, so the STUN-reflexive candidate equals the mapping).
 *
 * Every mapping made here is kept in a registry until it is removed:
 * `activeMappings()` lists them and `unmapAll()` removes them all and can be
 * awaited (the agent calls it on shutdown; an 'exit' handler could not wait
 * for the router's answer).
 *
 * How the library is used, and where it is worked around (4.0.5):
 * - NAT-PMP: the library sends one request and never retransmits; here each
 *   attempt is a fresh gateway object with its own deadline (250, 500,
 *   1000 ms, ... as RFC 6886 asks) within `timeoutMs`. Its lifetime option
 *   goes on the wire as seconds (its refresh timer reads it as ms), so its
 *   auto-refresh stays off and the lifetime is passed in seconds. It binds
 *   the NAT-PMP client port 5350 (SO_REUSEADDR), so two requests of one
 *   process at a time would steal each other's answers: requests are made
 *   one after the other here. A socket error is caught (the library would
 *   emit it unhandled). Its unmap() removes a TCP mapping whatever was
 *   mapped, so removal sends the RFC 6886 deletion (UDP, lifetime 0) itself.
 *   Its map() ignores `externalPort` (the suggested port is always the
 *   internal one); a renewal re-requests the same internal port, which
 *   routers answer with the mapping they already hold.
 * - UPnP: the library finds InternetGatewayDevice:2 routers by SSDP and
 *   speaks SOAP; the AddAnyPortMapping and DeletePortMapping calls are made
 *   here, because its own map() forces a lease of at least 3600 s and its
 *   unmap() deletes the internal port number with an empty protocol and
 *   swallows the error. Routers offering only IGD v1 are not found.
 */
import { createSocket } from 'node:dgram';
import type { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import type { Gateway } from '@achingbrain/nat-port-mapper';
import { PeerdialError } from '../errors.js';

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
// The default gateway.

/** The IPv4 default gateway in the text of /proc/net/route (lowest metric), or undefined. */
export function parseProcNetRoute(text: string): { gateway: string; iface: string } | undefined {
  let best: { gateway: string; iface: string; metric: number } | undefined;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dest, gw, flags, , , metric, mask] = f as [string, string, string, string, string, string, string, string];
    const fl = Number.parseInt(flags, 16);
    // RTF_UP (1) and RTF_GATEWAY (2), destination and mask 0.0.0.0
    if (dest !== '00000000' || mask !== '00000000' || (fl & 3) !== 3) continue;
    const n = Number.parseInt(gw, 16);
    if (!Number.isFinite(n) || n === 0) continue;
    // little-endian on every Linux machine peerdial runs on
    const gateway = [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.');
    const m = Number(metric);
    if (!best || m < best.metric) best = { gateway, iface, metric: m };
  }
  return best && { gateway: best.gateway, iface: best.iface };
}

export function defaultGateway(routeFile = '/proc/net/route'): string | undefined {
  try {
    return parseProcNetRoute(readFileSync(routeFile, 'utf8'))?.gateway;
  } catch {
    return undefined;
  }
}

/** The local address the kernel would use to reach `host` (a connected UDP socket sends nothing). */
function localAddressToward(host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', (err) => {
      s.close();
      reject(err);
    });
    s.connect(5351, host, () => {
      const a = s.address().address;
      s.close();
      resolve(a);
    });
  });
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
// Errors and signals.

function failed(message: string, cause?: unknown): PeerdialError {
  return new PeerdialError('PORTMAP_FAILED', message, { hint: `${PORTMAP_HINT[0]!.toUpperCase()}${PORTMAP_HINT.slice(1)}.`, cause });
}

function aborted(signal: AbortSignal): PeerdialError {
  return new PeerdialError('ABORTED', 'cancelled', { cause: signal.reason });
}

function combine(ms: number, signal?: AbortSignal): AbortSignal {
  const t = AbortSignal.timeout(Math.max(1, Math.round(ms)));
  return signal ? AbortSignal.any([t, signal]) : t;
}

// Loaded on first use (~50 ms): every CLI command imports this module.
const library = () => import('@achingbrain/nat-port-mapper');

// One NAT-PMP exchange at a time in this process (the library binds port 5350).
let pmpQueue: Promise<unknown> = Promise.resolve();
function serialPmp<T>(fn: () => Promise<T>): Promise<T> {
  const run = pmpQueue.then(fn, fn);
  pmpQueue = run.catch(() => undefined);
  return run;
}

// ---------------------------------------------------------------------------
// NAT-PMP.

interface Mapped {
  externalHost: string;
  externalPort: number;
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

async function natpmpMap(gateway: string, internalHost: string, o: MapUdpPortOptions, ttlSeconds: number, budgetMs: number): Promise<Mapped> {
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

async function natpmpUnmap(gateway: string, internalPort: number, timeoutMs: number): Promise<void> {
  // RFC 6886 3.4: a request for the internal port with lifetime 0 and
  // external port 0. (The library's unmap() asks for TCP: opcode 2.)
  await pmpOperation(gateway, timeoutMs, undefined, (gw, signal) =>
    gw.map(internalPort, '', { protocol: 'udp', externalPort: 0, ttl: 0, autoRefresh: false, signal }),
  );
}

// ---------------------------------------------------------------------------
// UPnP-IGD v2.

const WAN_IP_CONNECTION_2 = 'urn:schemas-upnp-org:service:WANIPConnection:2';

interface SoapDevice {
  run(service: string, action: string, args: Array<[string, string | number]>, options?: { signal?: AbortSignal }): Promise<Record<string, Record<string, unknown>>>;
  close(): void;
}

/** The library's gateway with its (untyped) device for SOAP calls. */
type UpnpGateway = Gateway & { getGateway(options?: { signal?: AbortSignal }): Promise<SoapDevice> };

function soapField(body: Record<string, Record<string, unknown>>, action: string, field: string): unknown {
  const key = Object.keys(body).find((k) => k === action || k.endsWith(`:${action}`));
  return key ? body[key]?.[field] : undefined;
}

async function findUpnpGateway(gateway: string | undefined, strict: boolean, budgetMs: number, signal?: AbortSignal): Promise<UpnpGateway> {
  const s = combine(budgetMs, signal);
  const client = (await library()).upnpNat({ autoRefresh: false });
  const seen: string[] = [];
  // SSDP over UDP: repeat the search every second in case one is lost.
  for await (const g of client.findGateways({ signal: s, searchInterval: 1000 })) {
    seen.push(g.host);
    if (g.family !== 'IPv4') continue;
    if (strict && gateway && g.host !== gateway) continue;
    return g as UpnpGateway;
  }
  if (signal?.aborted) throw aborted(signal);
  throw new Error(
    seen.length
      ? `UPnP: no IGD v2 gateway at ${gateway} answered SSDP within ${budgetMs} ms (seen: ${seen.join(', ')})`
      : `no UPnP-IGD v2 gateway answered SSDP within ${budgetMs} ms`,
  );
}

async function upnpMap(g: UpnpGateway, internalHost: string, o: MapUdpPortOptions, ttlSeconds: number, budgetMs: number): Promise<Mapped> {
  const signal = combine(budgetMs, o.signal);
  const device = await g.getGateway({ signal });
  const body = await device.run(
    WAN_IP_CONNECTION_2,
    'AddAnyPortMapping',
    [
      ['NewRemoteHost', ''],
      ['NewExternalPort', o.externalPort ?? o.internalPort],
      ['NewProtocol', 'UDP'],
      ['NewInternalPort', o.internalPort],
      ['NewInternalClient', internalHost],
      ['NewEnabled', 1],
      ['NewPortMappingDescription', 'peerdial'],
      ['NewLeaseDuration', ttlSeconds],
    ],
    { signal },
  );
  const externalPort = Number(soapField(body, 'AddAnyPortMappingResponse', 'NewReservedPort'));
  if (!Number.isInteger(externalPort) || externalPort <= 0) throw new Error('UPnP: AddAnyPortMapping returned no port');
  const ext = await device.run(WAN_IP_CONNECTION_2, 'GetExternalIPAddress', [], { signal });
  const externalHost = String(soapField(ext, 'GetExternalIPAddressResponse', 'NewExternalIPAddress') ?? '');
  if (!isIPv4(externalHost)) {
    await upnpDelete(device, externalPort, 2000).catch(() => undefined);
    throw new Error(`UPnP: the router has no usable external address (${externalHost || 'none'})`);
  }
  return { externalHost, externalPort };
}

async function upnpDelete(device: SoapDevice, externalPort: number, timeoutMs: number): Promise<void> {
  await device.run(
    WAN_IP_CONNECTION_2,
    'DeletePortMapping',
    [
      ['NewRemoteHost', ''],
      ['NewExternalPort', externalPort],
      ['NewProtocol', 'UDP'],
    ],
    { signal: AbortSignal.timeout(timeoutMs) },
  );
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
