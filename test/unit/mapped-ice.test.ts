/** Calls through a router port mapping: the description carries the mapped address; ICE is pinned to the mapped port. */
import { describe, expect, it } from 'vitest';
import { addMappedCandidate, pinnedIce } from '../../src/agent/mapped-ice.js';
import { freeUdpPort } from '../../src/session/ports.js';
import { parseConfig } from '../../src/config/config.js';
import type { PortMapping } from '../../src/address/portmap.js';

const SDP = [
  'v=0',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  'a=mid:0',
  'a=candidate:1 1 UDP 2122317823 192.168.1.5 50000 typ host',
  'a=end-of-candidates',
  '',
].join('\r\n');

const mapping = { externalHost: '203.0.113.9', externalPort: 41000, internalHost: '192.168.1.5', internalPort: 50000 };

describe('the mapped address in the description', () => {
  it('is added as a server-reflexive candidate before a=end-of-candidates', () => {
    const out = addMappedCandidate(SDP, mapping);
    const lines = out.split('\r\n');
    const i = lines.indexOf('a=end-of-candidates');
    expect(lines[i - 1]).toBe('a=candidate:pdmap 1 UDP 1694498815 203.0.113.9 41000 typ srflx raddr 192.168.1.5 rport 50000');
    expect(out.endsWith('\r\n')).toBe(true);
  });

  it('is not added twice when STUN already reported it (routers that rewrite the source port)', () => {
    const withSrflx = SDP.replace('a=end-of-candidates', 'a=candidate:2 1 UDP 1686052607 203.0.113.9 41000 typ srflx raddr 0.0.0.0 rport 0\r\na=end-of-candidates');
    expect(addMappedCandidate(withSrflx, mapping)).toBe(withSrflx);
  });

  it('pins ICE to the mapped local port', async () => {
    const port = (await freeUdpPort(0, '127.0.0.1'))!;
    expect(port).toBeGreaterThan(0);
    const ice = pinnedIce({ iceServers: ['stun:127.0.0.2:3478'] }, { ...mapping, internalPort: port } as unknown as PortMapping);
    expect(ice).toEqual({ iceServers: ['stun:127.0.0.2:3478'], portRangeBegin: port, portRangeEnd: port });
  });

  it('is switched on in the config with [ice] port_mapping', () => {
    const base = '[[accounts]]\nemail = "a@example.org"\n[accounts.imap]\nhost = "h"\nport = 993\n[accounts.smtp]\nhost = "h"\nport = 465\n';
    expect(parseConfig(`[ice]\nport_mapping = "natpmp"\n${base}`, '/x.toml', {}).ice.portMapping).toBe('natpmp');
    expect(() => parseConfig(`[ice]\nport_mapping = "yes"\n${base}`, '/x.toml', {})).toThrow(/ice.port_mapping/);
  });
});
