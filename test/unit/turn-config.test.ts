/**
 * `[ice] turn`: the relays the user chose, read from the config (no relay
 * by default), refused with a reason where libjuice cannot use them (TCP,
 * TLS), and their passwords fetched like the mail password: from the URL,
 * a command, an environment variable or a file only its owner can read.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.js';
import { parseTurnUrl, redact, resolveTurnServers } from '../../src/config/turn.js';
import { callPath, describePath, relayIceServers } from '../../src/session/relay.js';

const FILE = '/home/alice/.config/peerdial/config.toml';
const errorOf = (text: string): Error & { code?: string } => {
  try {
    parseConfig(text, FILE, {});
  } catch (err) {
    return err as Error;
  }
  throw new Error('parsed without an error');
};

describe('reading turn URLs', () => {
  it('user, password (percent-encoded), host and port; 3478 by default; IPv6 in brackets', () => {
    expect(parseTurnUrl('turn:alice:s%40cret%3Ax@127.0.0.2:3479')).toEqual({
      host: '127.0.0.2',
      port: 3479,
      username: 'alice',
      password: 's@cret:x',
      display: 'turn:alice@127.0.0.2:3479',
    });
    // an unencoded "@" in the password: the host is after the last one, and nothing of the password is shown
    expect(parseTurnUrl('turn:carol:p@ss@127.0.0.2')).toMatchObject({ username: 'carol', password: 'p@ss', host: '127.0.0.2', port: 3478 });
    expect(redact('turn:carol:p@ss@127.0.0.2')).toBe('turn:carol:***@127.0.0.2');
    expect(parseTurnUrl('turn:bob@[2001:db8::5]?transport=udp')).toEqual({ host: '2001:db8::5', port: 3478, username: 'bob', display: 'turn:bob@[2001:db8::5]:3478' });
  });

  it.each([
    ['turns:alice:pw@127.0.0.2:5349', /TURN over TLS is not supported: peerdial \(libjuice\) relays over UDP only/],
    ['turn:alice:pw@127.0.0.2?transport=tcp', /transport=tcp is not supported: peerdial \(libjuice\) relays over UDP only/],
    ['turn:127.0.0.2:3478', /names no user/],
    ['turn:alice:pw@127.0.0.2:99999', /port 99999 is out of range/],
    ['turn:alice:pw@127.0.0.2:3478?foo=1', /unknown parameter "foo"/],
    ['stun:127.0.0.2', /is not a turn: URL/],
  ])('%s is refused', (url, why) => {
    let err: (Error & { code?: string; hint?: string }) | undefined;
    try {
      parseTurnUrl(url);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.code).toBe('CONFIG_INVALID');
    expect(err?.message).toMatch(why);
    expect(err?.message).not.toContain(':pw@');
  });
});

describe('[ice] turn in the config file', () => {
  it('is absent by default: no relay is gathered unless the user names one', () => {
    const cfg = parseConfig('[ice]\nservers = ["stun:127.0.0.1:3478"]\n', FILE, {});
    expect(cfg.ice.turn).toBeUndefined();
    expect(relayIceServers(undefined)).toEqual([]);
  });

  it('a bad relay is an error at its line, without its password', () => {
    const err = errorOf('[ice]\nservers = []\nturn = ["turn:alice:pw@127.0.0.2:3478", "turns:alice:pw@127.0.0.2:5349"]\n');
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toBe(
      `${FILE} line 3: ice.turn[1] "turns:alice:***@127.0.0.2:5349": TURN over TLS is not supported: peerdial (libjuice) relays over UDP only: TURN over TCP or TLS (turns:, ?transport=tcp) and ICE-TCP are not supported`,
    );
  });

  it('a TURN URL among the STUN servers is sent to ice.turn', () => {
    expect(errorOf('[ice]\nservers = ["turn:alice:pw@127.0.0.2"]\n').message).toBe(`${FILE} line 2: ice.servers holds STUN servers only: move "turn:alice:***@127.0.0.2" to ice.turn`);
  });
});

describe('the relay password, like the mail password', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'peerdial-turn-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });
  const ice = (extra: Record<string, unknown>) => ({ servers: [], turn: ['turn:alice@127.0.0.1:3478', 'turn:bob:inline@127.0.0.1:3479'], ...extra });

  it('from the URL, a command, an environment variable, or a 0600 file', async () => {
    const file = path.join(dir, 'pw');
    await fs.writeFile(file, 'from-file\nsecond line\n', { mode: 0o600 });
    for (const [src, want] of [
      [{ command: 'printf "from-command\\nnot this"' }, 'from-command'],
      [{ env: 'RELAY_PW' }, 'from-env'],
      [{ file }, 'from-file'],
    ] as const) {
      const got = await resolveTurnServers(ice({ turnSecret: src }), { RELAY_PW: 'from-env', PATH: process.env.PATH });
      expect(got.map((s) => [s.username, s.password, s.port])).toEqual([
        ['alice', want, 3478],
        ['bob', 'inline', 3479],
      ]);
    }
  });

  it('a file others can read, a missing variable or no source at all is SECRET_UNAVAILABLE with what to do', async () => {
    const open = path.join(dir, 'open');
    await fs.writeFile(open, 'pw\n', { mode: 0o644 });
    await fs.chmod(open, 0o644);
    const e1 = await resolveTurnServers(ice({ turnSecret: { file: open } }), {}).catch((e: Error & { code?: string; hint?: string }) => e);
    expect(e1).toMatchObject({ code: 'SECRET_UNAVAILABLE', hint: `Make it private: chmod 600 ${open}` });
    expect((e1 as Error).message).toContain('is readable by others (mode 0644)');
    const e2 = await resolveTurnServers(ice({ turnSecret: { env: 'NOPE' } }), {}).catch((e: Error & { code?: string }) => e);
    expect(e2).toMatchObject({ code: 'SECRET_UNAVAILABLE', message: 'The environment variable NOPE (password for the TURN server turn:alice@127.0.0.1:3478) is not set.' });
    const e3 = await resolveTurnServers(ice({}), {}).catch((e: Error & { code?: string }) => e);
    expect(e3).toMatchObject({ code: 'SECRET_UNAVAILABLE', message: 'No password for the TURN server turn:alice@127.0.0.1:3478.' });
  });
});

describe('what the call output says', () => {
  it('relayed when either end of the selected pair is a relay candidate, else direct', () => {
    expect(callPath({ local: 'relay 198.18.0.2:50001/udp', remote: 'prflx 198.18.0.17:4000/udp' })).toBe('relayed');
    expect(callPath({ local: 'srflx 198.18.0.15:4000/udp', remote: 'relay 198.18.0.2:50001/udp' })).toBe('relayed');
    expect(callPath({ local: 'host 10.0.0.2:4000/udp', remote: 'srflx 198.18.0.9:5000/udp' })).toBe('direct');
    expect(callPath({ local: 'unknown', remote: 'unknown' })).toBeUndefined();
    expect(describePath({ local: 'srflx 198.18.0.15:4000/udp', remote: 'relay 198.18.0.2:50001/udp' })).toBe('relayed through 198.18.0.2:50001 (TURN)');
    expect(describePath({ local: 'host [2001:db8::2]:4000/udp', remote: 'host [2001:db8::3]:4000/udp' })).toBe('direct');
  });

  it('the relays become node-datachannel TURN-over-UDP servers', () => {
    expect(relayIceServers([{ host: '2001:db8::2', port: 3478, username: 'a', password: 'p' }])).toEqual([
      { hostname: '2001:db8::2', port: 3478, username: 'a', password: 'p', relayType: 'TurnUdp' },
    ]);
  });
});
