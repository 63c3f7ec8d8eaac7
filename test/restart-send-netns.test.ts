/**
 * Issue 14, item 3, end to end: a real `peerdial send` of 256 MiB from
 * alice's site to hitoshi's `peerdial agent` in another site, through the
 * real mail stack (Dovecot + Postfix, reached from the sites through
 * harness/netns-mail.ts). Once a good part of the file is across, alice's
 * namespace loses its address and gets another (ip addr del/add, route).
 * Her `send` notices (netlink), makes a new transport and offers it by mail
 * (the old path is gone, and the control channel with it); hitoshi's agent
 * answers by mail; the transfer resumes on the new transport. The file
 * arrives with its SHA-256, `send` printed the reconnect lines, and both
 * call logs record the restart and how its description travelled.
 *
 * Twice: on DataChannels (PEERDIAL_LANE=datachannel), and on the TLS lane,
 * which is offered again on the new path (the sender listens on its new
 * address, the agent connects to it).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { BIN, introduce, makePeer, runCli, tempDir, waitFor, type Peer } from './harness/peers.js';
import { buildNetwork, type Network, type Site } from './harness/netns.js';
import { bridgeMail, type MailBridge } from './harness/netns-mail.js';
import { SiteCli } from './harness/site-cli.js';
import { accountStateDir } from '../src/store/paths.js';
import type { CallLogEntry } from '../src/store/calllog.js';

const MiB = 1024 * 1024;
const FILE_BYTES = 256 * MiB;
const NEW_ADDRESS = '198.18.0.111';
/** Generous: mail through Postfix and Dovecot, 256 MiB over usrsctp, on a busy machine. */
const LONG = 1_200_000;

let stack: MailStack;
let net: Network;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
const bridges: MailBridge[] = [];

type Lane = 'datachannel' | 'tls';

/** A peerdial command in a site; with the lane `datachannel` it never offers a TLS lane. */
function cli(site: Site, peer: Peer, args: string[], lane: Lane): SiteCli {
  return new SiteCli(net.spawnCmdInNs(site.hostNs, 'env', [`PEERDIAL_LANE=${lane === 'datachannel' ? 'datachannel' : 'auto'}`, process.execPath, BIN, '--config', peer.configFile, ...args]));
}

/** ICE on any address of the site (a configured bind address would not follow a change of it). */
async function placeIn(peer: Peer): Promise<void> {
  const text = await fs.readFile(peer.configFile, 'utf8');
  expect(text).toContain('bind_address = "127.0.0.1"\n');
  await fs.writeFile(peer.configFile, text.replace('bind_address = "127.0.0.1"\n', ''));
}

/** 256 MiB of random bytes on disk, and their SHA-256. */
async function bigFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  for (let i = 0; i < FILE_BYTES / (4 * MiB); i++) {
    const chunk = randomBytes(4 * MiB);
    hash.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return hash.digest('hex');
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of (await fs.open(file)).createReadStream()) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Bytes in the files of a folder (the receiver's partial file grows there). */
async function bytesIn(folder: string): Promise<number> {
  let n = 0;
  for (const name of await fs.readdir(folder).catch(() => [] as string[])) n += (await fs.stat(path.join(folder, name)).catch(() => undefined))?.size ?? 0;
  return n;
}

/** A peer's call log, oldest first (none yet before its first call). */
const callLog = async (p: Peer) =>
  ((await fs.readFile(path.join(accountStateDir(p.stateDir, p.email), 'calls.jsonl'), 'utf8').catch(() => '')) as string)
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as CallLogEntry);

beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice', 'hitoshi'] });
  dir = await tempDir('restart-send');
  alice = await makePeer(stack, 'alice', dir);
  hitoshi = await makePeer(stack, 'hitoshi', dir, { answer: 'auto-answer' });
  await introduce(alice, hitoshi);
  const allowed = await runCli(['--config', hitoshi.configFile, 'contacts', 'allow', 'alice', 'file-max=300M'], { timeoutMs: 60_000 });
  expect(allowed.code, allowed.stderr).toBe(0);
  net = await buildNetwork({ sites: [{ name: 'moving', kind: 'public' }, { name: 'staying', kind: 'public' }] });
  for (const site of net.sites) bridges.push(await bridgeMail(net, site, stack, dir));
  await placeIn(alice);
  await placeIn(hitoshi);
}, 300_000);

afterAll(async () => {
  for (const b of bridges) await b.close();
  await net?.destroy();
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe.each<Lane>(['datachannel', 'tls'])("alice's address changes while `peerdial send` gives hitoshi's agent a 256 MiB file (%s)", (lane) => {
  it('the call restarts (its description by mail), the transfer resumes on the new transport, the file arrives whole', async () => {
    const moving = net.site('moving');
    // each run starts from the site's first address, an empty download folder, and looks at its own call log lines
    await net.exec(moving.hostNs, 'ip', ['-4', 'addr', 'flush', 'dev', 'eth0']);
    await net.exec(moving.hostNs, 'ip', ['addr', 'add', `${moving.ip}/24`, 'dev', 'eth0']);
    await fs.rm(hitoshi.downloadDir, { recursive: true, force: true });
    await fs.mkdir(hitoshi.downloadDir, { recursive: true });
    const logged = { alice: (await callLog(alice)).length, hitoshi: (await callLog(hitoshi)).length };
    const file = path.join(dir, 'payload.bin');
    const sha = await bigFile(file);

    const agent = cli(net.site('staying'), hitoshi, ['agent'], lane);
    await waitFor(`hitoshi's agent up\n${agent.text()}`, () => agent.out.includes('mailbox connected'), LONG);
    const send = cli(moving, alice, ['send', 'hitoshi', file], lane);
    const both = () => `alice's send ${send.text()}\n\nhitoshi's agent ${agent.text()}`;
    try {
      await waitFor(`the call connected\n${both()}`, () => send.err.includes('connected to') || send.exit !== undefined, LONG);
      expect(send.err, both()).toContain('connected to');
      await waitFor(`the carrier's way\n${both()}`, () => /^via (tls|datachannel)$/m.test(send.err) || send.exit !== undefined, LONG);
      expect(send.err, both()).toMatch(new RegExp(`^via ${lane}$`, 'm'));

      // a good part of the file is across: alice's namespace is re-addressed
      await waitFor(`32 MiB across\n${both()}`, async () => send.exit !== undefined || (await bytesIn(hitoshi.downloadDir)) >= 32 * MiB, LONG, 500);
      expect(send.exit, both()).toBeUndefined();
      await net.exec(moving.hostNs, 'ip', ['addr', 'del', `${moving.ip}/24`, 'dev', 'eth0']);
      await net.exec(moving.hostNs, 'ip', ['addr', 'add', `${NEW_ADDRESS}/24`, 'dev', 'eth0']);
      await net.exec(moving.hostNs, 'ip', ['route', 'replace', '198.18.0.0/24', 'dev', 'eth0', 'src', NEW_ADDRESS]);

      await send.exited;
      expect(send.exit, both()).toBe(0);

      // what alice was told: the change (or the loss, if her old transport failed first), then the reconnect by mail
      expect(send.err, both()).toMatch(/(address changed|connection lost), reconnecting\.\.\./);
      expect(send.err, both()).toMatch(/reconnected via mail in \d+\.\d s/);
      // on the new transport the file goes the same way again
      expect(send.err.slice(send.err.search(/reconnected via mail/)), both()).toMatch(new RegExp(`^via ${lane}$`, 'm'));
      // the file: sent whole, resumed on the new transport rather than sent again
      const sent = /sent payload\.bin \(268435456 bytes, sha256 ([0-9a-f]{16})\.\.\.\), resumed at byte (\d+)/.exec(send.out);
      expect(sent, both()).not.toBeNull();
      expect(sent![1]).toBe(sha.slice(0, 16));
      expect(Number(sent![2])).toBeGreaterThan(0);

      // hitoshi's agent kept it, resumed, and it is the same file
      await waitFor(`hitoshi's agent saved the file\n${both()}`, () => /saved .*payload\.bin, resumed from byte \d+/.test(agent.out), LONG);
      expect(agent.out).toMatch(/: the peer's address changed, reconnecting\.\.\.|: connection lost, reconnecting\.\.\./);
      expect(agent.out).toMatch(/: reconnected via mail in \d+\.\d s/);
      expect(await sha256Of(path.join(hitoshi.downloadDir, 'payload.bin'))).toBe(sha);

      console.log(`restart during peerdial send (${lane}): alice "${(send.err.match(/^.*reconnect.*$/gm) ?? []).join('" / "')}"; resumed at byte ${sent![2]} of ${FILE_BYTES}`);

      // both call logs record the restart and how its description travelled
      await waitFor('the call logs', async () => (await callLog(hitoshi)).slice(logged.hitoshi).some((e) => e.outcome === 'hung-up'), LONG);
      const restarted = (entries: CallLogEntry[], from: number) => entries.slice(from).filter((e) => e.outcome === 'restarted');
      expect(restarted(await callLog(alice), logged.alice)).toEqual([
        expect.objectContaining({ direction: 'out', peer: hitoshi.email, detail: expect.stringMatching(/^restart 1: (address changed|connection lost); new description by mail; reconnected in \d+\.\d s$/) }),
      ]);
      expect(restarted(await callLog(hitoshi), logged.hitoshi)).toEqual([
        expect.objectContaining({ direction: 'in', peer: alice.email, detail: expect.stringMatching(/^restart 1: (the peer's address changed|connection lost); new description by mail; reconnected in \d+\.\d s$/) }),
      ]);
    } finally {
      if (send.exit === undefined) send.child.kill('SIGTERM');
      agent.child.kill('SIGTERM');
      await Promise.all([send.exited, agent.exited]);
    }
  }, 1_800_000);
});
