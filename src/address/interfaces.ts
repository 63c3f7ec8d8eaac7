/**
 * The machine's interface addresses, classified. STUN-reflexive addresses
 * and router port mappings join this list in src/address/ later; the
 * `DetectedAddress` shape already has room for them.
 */
import os from 'node:os';
import { classifyAddress, describeScope, type AddressScope } from './classify.js';

export interface DetectedAddress {
  ip: string;
  family: 4 | 6;
  interface: string;
  scope: AddressScope;
  meaning: string;
  source: 'interface' | 'stun' | 'mapping';
}

export type InterfaceTable = NodeJS.Dict<os.NetworkInterfaceInfo[]>;

export function interfaceAddresses(table: InterfaceTable = os.networkInterfaces()): DetectedAddress[] {
  const out: DetectedAddress[] = [];
  for (const [name, infos] of Object.entries(table)) {
    for (const info of infos ?? []) {
      const scope = classifyAddress(info.address);
      out.push({
        ip: info.address,
        family: info.family === 'IPv6' ? 6 : 4,
        interface: name,
        scope,
        meaning: describeScope(scope),
        source: 'interface',
      });
    }
  }
  const rank: Record<string, number> = { public: 0, 'ipv6-global': 1, cgnat: 2, private: 3, ula: 4 };
  return out.sort((a, b) => (rank[a.scope] ?? 9) - (rank[b.scope] ?? 9));
}
