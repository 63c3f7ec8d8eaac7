/**
 * `peerdial init --turn`: the relay the user chose goes into `[ice] turn`
 * with its password source, and a relay libjuice cannot use (TLS, TCP) is
 * refused before anything is written. No mail is needed: nothing listens
 * on port 1 and --skip-check saves the account anyway.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseConfig } from '../src/config/config.js';
import { runCli, tempDir } from './harness/peers.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir('turn-init');
});
afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const base = (config: string) => [
  '--config', config, '--quiet', 'init', '--email', 'alice@example.test', '--password-env', 'PEERDIAL_TEST_PW',
  '--imap-host', '127.0.0.1', '--imap-port', '1', '--imap-tls', 'none', '--smtp-host', '127.0.0.1', '--smtp-port', '1', '--smtp-tls', 'none',
  '--state-dir', path.join(dir, 'state'), '--stun', 'none', '--skip-check',
];

it('init --turn writes the relays and where their password comes from; without --turn there is none', async () => {
  const plain = path.join(dir, 'plain.toml');
  const p = await runCli(base(plain), { env: { PEERDIAL_TEST_PW: 'unused' } });
  expect(p.code, p.stderr).toBe(0);
  expect(parseConfig(await fs.readFile(plain, 'utf8'), plain, {}).ice.turn).toBeUndefined();

  const config = path.join(dir, 'relay.toml');
  const r = await runCli([...base(config), '--turn', 'turn:alice@198.51.100.7:3478', '--turn', 'turn:bob:pw@[2001:db8::7]:3479', '--turn-password-file', 'relay-password'], {
    env: { PEERDIAL_TEST_PW: 'unused' },
  });
  expect(r.code, r.stderr).toBe(0);
  const text = await fs.readFile(config, 'utf8');
  const cfg = parseConfig(text, config, {});
  expect(cfg.ice.turn).toEqual(['turn:alice@198.51.100.7:3478', 'turn:bob:pw@[2001:db8::7]:3479']);
  expect(cfg.ice.turnSecret).toEqual({ file: path.resolve('relay-password') });
  expect((await fs.stat(config)).mode & 0o077).toBe(0);
});

it.each([
  [['--turn', 'turns:alice:pw@relay.example.org:5349'], /--turn: TURN server "turns:alice:\*\*\*@relay\.example\.org:5349": TURN over TLS is not supported: peerdial \(libjuice\) relays over UDP only/],
  [['--turn', 'turn:alice:pw@relay.example.org?transport=tcp'], /transport=tcp is not supported/],
  [['--stun', 'turn:alice:pw@relay.example.org'], /--stun takes STUN servers: give "turn:alice:\*\*\*@relay\.example\.org" with --turn instead/],
])('init %j is refused and writes nothing', async (extra, why) => {
  const config = path.join(dir, `bad-${Math.random().toString(36).slice(2)}.toml`);
  const r = await runCli([...base(config), ...extra], { env: { PEERDIAL_TEST_PW: 'unused' } });
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(why);
  expect(r.stderr).not.toContain(':pw@');
  await expect(fs.stat(config)).rejects.toThrow(/ENOENT/);
});
