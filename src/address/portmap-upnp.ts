/**
 * UPnP-IGD v2 through `@achingbrain/nat-port-mapper` (4.0.5): the library
 * finds InternetGatewayDevice:2 routers by SSDP and speaks SOAP; the
 * AddAnyPortMapping and DeletePortMapping calls are made here, because its
 * own map() forces a lease of at least 3600 s and its unmap() deletes the
 * internal port number with an empty protocol and swallows the error.
 * Routers offering only IGD v1 are not found.
 */
import { isIPv4 } from 'node:net';
import type { Gateway } from '@achingbrain/nat-port-mapper';
import { aborted, combine, library, type Mapped, type MapRequest } from './portmap-request.js';

const WAN_IP_CONNECTION_2 = 'urn:schemas-upnp-org:service:WANIPConnection:2';

export interface SoapDevice {
  run(service: string, action: string, args: Array<[string, string | number]>, options?: { signal?: AbortSignal }): Promise<Record<string, Record<string, unknown>>>;
  close(): void;
}

/** The library's gateway with its (untyped) device for SOAP calls. */
export type UpnpGateway = Gateway & { getGateway(options?: { signal?: AbortSignal }): Promise<SoapDevice> };

function soapField(body: Record<string, Record<string, unknown>>, action: string, field: string): unknown {
  const key = Object.keys(body).find((k) => k === action || k.endsWith(`:${action}`));
  return key ? body[key]?.[field] : undefined;
}

export async function findUpnpGateway(gateway: string | undefined, strict: boolean, budgetMs: number, signal?: AbortSignal): Promise<UpnpGateway> {
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

export async function upnpMap(g: UpnpGateway, internalHost: string, o: MapRequest, ttlSeconds: number, budgetMs: number): Promise<Mapped> {
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

export async function upnpDelete(device: SoapDevice, externalPort: number, timeoutMs: number): Promise<void> {
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
