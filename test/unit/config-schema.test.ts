/** The config schema: one table reads, writes and checks the file; a typo is an error with its line. */
import { describe, expect, it } from 'vitest';
import { parseConfig, configToToml } from '../../src/config/config.js';
import { DEFAULTS, ICE, LINK, SERVER, WAKE, ACCOUNTS, FORWARD, keyLines, nearest } from '../../src/config/schema.js';
import { isPeerdialError, type PeerdialError } from '../../src/errors.js';

const FILE = `# alice's peerdial
[defaults]
ring_seconds = 60
state_dir = "/var/lib/peerdial"

[defaults.extra]
`;

const ACCOUNT = `
[[accounts]]
email = "alice@example.org"
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

function errorOf(text: string): PeerdialError {
  try {
    parseConfig(text, '/home/alice/.config/peerdial/config.toml', {});
  } catch (err) {
    expect(isPeerdialError(err, 'CONFIG_INVALID')).toBe(true);
    return err as PeerdialError;
  }
  throw new Error('the config was accepted');
}

describe('a config typo is an error', () => {
  it('alice writes who_mai_call = "nobody": the file, line 7 and who_may_call are named, nothing runs with the default', () => {
    const text = `# alice's peerdial
[defaults]
ring_seconds = 60
answer = "ring"


who_mai_call = "nobody"
${ACCOUNT}`;
    const err = errorOf(text);
    expect(err.message).toBe('/home/alice/.config/peerdial/config.toml line 7: unknown key who_mai_call in [defaults]; did you mean who_may_call?');
    expect(err.hint).toContain('who_may_call');
    expect(err.hint).toContain('line 7');
  });

  it.each([
    ['[ice]\nbind_adress = "127.0.0.1"\n', 2, 'unknown key bind_adress in [ice]; did you mean bind_address?'],
    ['[forward]\nallows = ["127.0.0.1:22"]\n', 2, 'unknown key allows in [forward]; did you mean allow?'],
    ['[link]\nup = "pon"\n\npoll_minute = 5\n', 4, 'unknown key poll_minute in [link]; did you mean poll_minutes?'],
    ['[defualts]\nring_seconds = 60\n', 1, 'unknown table or key defualts; did you mean defaults?'],
    ['ring_seconds = 60\n', 1, 'unknown table or key ring_seconds; it belongs in [defaults]'],
    ['[ice]\nwho_may_call = "nobody"\n', 2, 'unknown key who_may_call in [ice]; it belongs in [defaults]'],
    [ACCOUNT.replace('tls = "starttls"', 'tsl = "starttls"'), 11, 'unknown key tsl in [accounts.smtp]; did you mean tls?'],
    [ACCOUNT.replace('password_command', 'pasword_command'), 7, 'unknown key pasword_command in [accounts.imap]; did you mean password_command?'],
    [ACCOUNT + '\n[[accounts]]\nemail = "b@example.org"\nimap = { host = "h", port = 993, passwd = "x" }\n', 16, 'unknown key passwd in [accounts.imap]; did you mean password?'],
  ])('an unknown key or table is named with its line and the nearest valid one: %j', (text, line, what) => {
    expect(errorOf(text).message).toBe(`/home/alice/.config/peerdial/config.toml line ${line}: ${what}`);
  });

  it.each([
    ['[defaults]\nsingle_call = "yes"\n', 2, 'defaults.single_call must be true or false'],
    ['[defaults]\nring_seconds = "long"\n', 2, 'defaults.ring_seconds must be a whole number from 5 to 3600'],
    ['[defaults]\nwho_may_call = "strangers"\n', 2, 'defaults.who_may_call must be one of: everybody, contacts, nobody'],
    ['[ice]\nservers = "stun:127.0.0.1"\n', 2, 'ice.servers must be a list of strings'],
    ['[ice]\nport_mapping = true\n', 2, 'ice.port_mapping must be one of: auto, upnp, natpmp, off'],
    ['[defaults]\n\nwho_may_call = "contact"\n', 3, 'defaults.who_may_call must be one of: everybody, contacts, nobody; did you mean "contacts"?'],
    ['defaults = 3\n', 1, 'defaults must be a table ([defaults])'],
    [ACCOUNT.replace('password_env = "MAILPW"', 'password_prompt = "yes"'), 12, 'accounts[0].smtp.password_prompt must be true or false'],
    [ACCOUNT.replace('port = 587\n', ''), 8, 'accounts[0].smtp.port is missing'],
  ])('a wrong type is an error at its line: %j', (text, line, what) => {
    expect(errorOf(text).message).toBe(`/home/alice/.config/peerdial/config.toml line ${line}: ${what}`);
  });

  it('a table under a known one that does not exist is an error too', () => {
    expect(errorOf(FILE).message).toBe('/home/alice/.config/peerdial/config.toml line 6: unknown key extra in [defaults]; known here: ' + DEFAULTS.keys.map((k) => k.key).join(', '));
  });
});

describe('one table drives reading and writing', () => {
  it('every key of the table is written by the writer and read back the same', () => {
    const cfg = parseConfig(
      `[defaults]
ring_seconds = 33
who_may_call = "nobody"
answer = "auto-answer"
download_dir = "/srv/in"
state_dir = "/srv/state"
poll_seconds = 7
idle_seconds = 99
single_call = true
account = "alice@example.org"
[ice]
servers = ["stun:127.0.0.1:3478"]
turn = ["turn:alice@127.0.0.1:3478"]
turn_password_command = "pass show relay"
turn_password_env = "RELAY_PW"
turn_password_file = "/etc/relay-password"
bind_address = "127.0.0.1"
port_range_begin = 40000
port_range_end = 40100
port_mapping = "natpmp"
[forward]
allow = ["127.0.0.1:22"]
[link]
up = "pon"
down = "poff"
timeout_seconds = 9
idle_down_seconds = 8
poll_minutes = 7
[[wake]]
email = "cam@example.org"
mac = "00:11:22:33:44:55"
address = "192.0.2.255"
port = 7
config = "/etc/cam.toml"
[[accounts]]
email = "alice@example.org"
name = "Alice"
folder = "Calls"
sieve_port = 4190
[accounts.imap]
host = "h"
port = 993
tls = "none"
user = "al"
ca_file = "/etc/ca.pem"
password = ""
[accounts.smtp]
host = "h"
port = 465
auth = "oauth2"
oauth2_provider = "custom"
oauth2_client_id = "id"
oauth2_client_secret = "sec"
oauth2_token_url = "https://auth.example.org/token"
oauth2_device_url = "https://auth.example.org/device"
oauth2_scope = "mail"
`,
      '/etc/p.toml',
      {},
    );
    const written = configToToml(cfg);
    const all = [DEFAULTS, ICE, FORWARD, LINK, WAKE, ACCOUNTS].flatMap((s) => s.keys.map((k) => k.key));
    for (const key of all) expect(written).toMatch(new RegExp(`^${key} = `, 'm'));
    const serverKeys = SERVER.keys.map((k) => k.key).filter((k) => !['password_command', 'password_env', 'password_prompt', 'token_command'].includes(k));
    for (const key of serverKeys) expect(written).toMatch(new RegExp(`^${key} = `, 'm'));
    expect({ ...parseConfig(written, '/etc/p.toml', {}), file: '' }).toEqual({ ...cfg, file: '' });
  });

  it('finds the lines of keys in tables, arrays of tables and dotted keys', () => {
    const lines = keyLines('a = 1\n[x]\nb = 2\n[[acc]]\nc.d = 3\n[acc.imap]\n"e" = 4\n[[acc]]\nf = """\ng = 1\n"""\n[acc.smtp]\nh = 5\n');
    expect(Object.fromEntries(lines)).toEqual({
      a: 1,
      x: 2,
      'x.b': 3,
      'acc[0]': 4,
      'acc[0].c.d': 5,
      'acc[0].imap': 6,
      'acc[0].imap.e': 7,
      'acc[1]': 8,
      'acc[1].f': 9,
      'acc[1].smtp': 12,
      'acc[1].smtp.h': 13,
    });
  });

  it('suggests only what is close enough to be a typo', () => {
    expect(nearest('who_mai_call', ['ring_seconds', 'who_may_call'])).toBe('who_may_call');
    expect(nearest('colour', ['ring_seconds', 'who_may_call'])).toBeUndefined();
  });
});

describe('[web]: the local web page', () => {
  it('alice turns the page on at port 8765: read, written back the same, and absent when she writes nothing', () => {
    const cfg = parseConfig(`[web]\nenable = true\nport = 8765\n${ACCOUNT}`, '/home/alice/.config/peerdial/config.toml', {});
    expect(cfg.web).toEqual({ enable: true, port: 8765 });
    const again = parseConfig(configToToml(cfg), '/home/alice/.config/peerdial/config.toml', {});
    expect(again.web).toEqual({ enable: true, port: 8765 });
    expect(parseConfig(ACCOUNT, '/home/alice/.config/peerdial/config.toml', {}).web).toBeUndefined();
    expect(parseConfig(`[web]\nenable = true\n${ACCOUNT}`, '/home/alice/.config/peerdial/config.toml', {}).web).toEqual({ enable: true, port: 0 });
  });

  it('a port out of range or a typo is an error with its line', () => {
    expect(errorOf(`[web]\nport = 70000\n${ACCOUNT}`).message).toContain('line 2');
    expect(errorOf(`[web]\nenabled = true\n${ACCOUNT}`).message).toContain('unknown key enabled in [web]; did you mean enable?');
  });
});
