/** Pure pieces: the config file, the provider table, address classification, backoff. */
import { describe, expect, it } from 'vitest';
import { parseConfig, configToToml } from '../../src/config/config.js';
import { providerFor } from '../../src/config/providers.js';
import { classifyAddress, isAnnounceable } from '../../src/address/classify.js';
import { interfaceAddresses } from '../../src/address/interfaces.js';
import { addressesFromSdp } from '../../src/agent/sdp-addresses.js';
import { backoffMs } from '../../src/mail/outbox-sender.js';
import { reconnectDelayMs } from '../../src/agent/mailbox.js';
import { isPeerdialError } from '../../src/errors.js';

const GOOD = `
[defaults]
ring_seconds = 60
who_may_call = "everybody"
state_dir = "/var/lib/peerdial"

[ice]
servers = ["stun:127.0.0.2:3478"]
bind_address = "127.0.0.1"

[forward]
allow = ["127.0.0.1:554", "[::1]:*"]

[[accounts]]
email = "Alice@Example.ORG"
[accounts.imap]
host = "mail.example.org"
port = 993
password_command = "pass show mail"
[accounts.smtp]
host = "mail.example.org"
port = 587
tls = "starttls"
password_env = "MAILPW"
`;

describe('the config file', () => {
  it('reads every section, fills defaults, lower-cases addresses', () => {
    const c = parseConfig(GOOD, '/etc/peerdial.toml', {});
    expect(c).toMatchObject({ ringSeconds: 60, whoMayCall: 'everybody', answer: 'ring', stateDir: '/var/lib/peerdial', forwardAllow: ['127.0.0.1:554', '[::1]:*'] });
    expect(c.ice).toEqual({ servers: ['stun:127.0.0.2:3478'], bindAddress: '127.0.0.1' });
    expect(c.accounts[0]).toMatchObject({ email: 'alice@example.org', folder: 'Peerdial' });
    expect(c.accounts[0]!.imap).toMatchObject({ tls: 'tls', user: 'alice@example.org', command: 'pass show mail' });
    expect(c.accounts[0]!.smtp).toMatchObject({ tls: 'starttls', env: 'MAILPW' });
  });

  it('survives a round trip through its own writer', () => {
    const c = parseConfig(GOOD, '/etc/peerdial.toml', {});
    const again = parseConfig(configToToml(c), '/etc/peerdial.toml', {});
    expect({ ...again, file: '' }).toEqual({ ...c, file: '' });
  });

  it.each([
    ['ring_seconds = 60', 'ring_seconds = 2', 'defaults.ring_seconds'],
    ['who_may_call = "everybody"', 'who_may_call = "strangers"', 'defaults.who_may_call'],
    ['ring_seconds = 60', 'ring_seconds = 60\nanswer = 7', 'defaults.answer'],
  ])('names the key that is wrong: %s -> %s', (from, to, key) => {
    const text = GOOD.replace(from, to);
    try {
      parseConfig(text, '/x.toml', {});
      expect.unreachable();
    } catch (err) {
      expect(isPeerdialError(err, 'CONFIG_INVALID')).toBe(true);
      expect((err as Error).message).toContain(key);
    }
  });

  it('reports broken TOML and bad forward targets clearly', () => {
    expect(() => parseConfig('[defaults\nx=1', '/x.toml', {})).toThrow(/not valid TOML/);
    expect(() => parseConfig(GOOD.replace('"127.0.0.1:554"', '"127.0.0.1"'), '/x.toml', {})).toThrow(/forward.allow/);
    expect(() => parseConfig(GOOD.replace('port = 993\n', ''), '/x.toml', {})).toThrow(/accounts\[0\]\.imap\.port is missing/);
  });
});

describe('the provider table', () => {
  it('fills in well-known providers and knows nothing else', () => {
    expect(providerFor('someone@gmail.com')).toMatchObject({ imap: { host: 'imap.gmail.com', port: 993, tls: 'tls' }, smtp: { host: 'smtp.gmail.com', port: 465, tls: 'tls' } });
    expect(providerFor('x@Posteo.de')?.imap.host).toBe('posteo.de');
    expect(providerFor('x@outlook.com')?.smtp).toEqual({ host: 'smtp-mail.outlook.com', port: 587, tls: 'starttls' });
    expect(providerFor('x@example.org')).toBeUndefined();
  });
});

describe('address classification', () => {
  it.each([
    // just past the private 10/8: the boundary of a range (a pure classification, nothing is sent)
    ['11.0.0.1', 'public'],
    ['10.1.2.3', 'private'],
    ['172.20.0.1', 'private'],
    ['192.168.1.10', 'private'],
    ['100.64.0.1', 'cgnat'],
    ['127.0.0.1', 'loopback'],
    ['169.254.3.4', 'link-local'],
    ['198.18.0.1', 'benchmarking'],
    ['203.0.113.9', 'documentation'],
    ['::1', 'loopback'],
    ['fe80::1%eth0', 'link-local'],
    ['fd12:3456::1', 'ula'],
    ['2a01:4f8::1', 'ipv6-global'],
    ['2001:db8::1', 'documentation'],
    ['::ffff:192.168.0.1', 'private'],
    ['ff02::1', 'multicast'],
  ])('%s is %s', (ip, scope) => {
    expect(classifyAddress(ip)).toBe(scope);
  });

  it('leaves loopback and link-local out of announcements', () => {
    expect(isAnnounceable('loopback')).toBe(false);
    expect(isAnnounceable('link-local')).toBe(false);
    expect(isAnnounceable('cgnat')).toBe(true);
    const list = interfaceAddresses({ lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }], eth0: [{ address: '10.0.0.5', netmask: '255.0.0.0', family: 'IPv4', mac: 'aa:bb:cc:dd:ee:ff', internal: false, cidr: '10.0.0.5/8' }] });
    expect(list.map((a) => [a.ip, a.scope])).toEqual([['10.0.0.5', 'private'], ['127.0.0.1', 'loopback']]);
  });

  it('reads the readable address list of a mail from its SDP candidates', () => {
    const sdp = 'v=0\r\na=candidate:1 1 UDP 2122317823 192.168.1.5 50000 typ host\r\na=candidate:2 1 UDP 1686052607 203.0.113.7 41000 typ srflx raddr 0.0.0.0 rport 0\r\na=candidate:3 1 TCP 1 10.0.0.1 9 typ host tcptype active\r\n';
    expect(addressesFromSdp(sdp)).toEqual([
      { ip: '192.168.1.5', port: 50000, source: 'interface', scope: 'private' },
      { ip: '203.0.113.7', port: 41000, source: 'stun', scope: 'documentation' },
    ]);
  });
});

describe('backoff', () => {
  it('grows, is capped, and is jittered', () => {
    expect(backoffMs(1, () => 0.5)).toBe(2000);
    expect(backoffMs(3, () => 0.5)).toBe(8000);
    expect(backoffMs(30, () => 0.5)).toBe(300_000);
    // the jitter spans -25 %..+25 % of the 4 s step
    expect(backoffMs(2, () => 0)).toBe(3000);
    expect(backoffMs(2, () => 1)).toBe(5000);
    expect(reconnectDelayMs(0, () => 0.5)).toBe(1000);
    expect(reconnectDelayMs(20, () => 0.5)).toBe(60_000);
  });
});
