/**
 * Issue 14, item 2: a chat call between two sites that cannot reach each
 * other over UDP at all (iptables drops it in both host namespaces; no
 * relay is set), through the real mail stack (Dovecot + Postfix, reached
 * from the sites through harness/netns-mail.ts). The call fails to
 * connect; `peerdial call` says once why and keeps the chat open by mail,
 * and `peerdial listen` on the other side joins it when the caller's
 * chat opens:
 *
 * - chat lines arrive both ways by mail, marked "(by mail)";
 * - a small file (/send) arrives with the right SHA-256;
 * - a file over `[call] mail_fallback_max_kib` is refused with the message,
 *   and nothing of it arrives;
 * - /quit ends the chat on both sides.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { BIN, introduce, makePeer, runCli, tempDir, waitFor, type Peer } from './harness/peers.js';
import { buildNetwork, type Network, type Site } from './harness/netns.js';
import { bridgeMail, type MailBridge } from './harness/netns-mail.js';
import { SiteCli } from './harness/site-cli.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Generous: mail through Postfix and Dovecot, and a 30 s connect wait, on a busy machine. */
const LONG = 300_000;

let stack: MailStack;
let net: Network;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
const bridges: MailBridge[] = [];

function cli(site: Site, peer: Peer, args: string[]): SiteCli {
  return new SiteCli(net.spawnCmdInNs(site.hostNs, process.execPath, [BIN, '--config', peer.configFile, ...args]));
}

/** The peer's config, made for its site: ICE on the site's address, files up to 64 KiB by mail. */
async function placeIn(peer: Peer, site: Site): Promise<void> {
  const text = await fs.readFile(peer.configFile, 'utf8');
  expect(text).toContain('bind_address = "127.0.0.1"');
  await fs.writeFile(peer.configFile, `${text.replace('bind_address = "127.0.0.1"', `bind_address = "${site.bindAddress}"`)}\n[call]\nmail_fallback_max_kib = 64\n`);
}

beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice', 'hitoshi'] });
  dir = await tempDir('mail-chat-netns');
  alice = await makePeer(stack, 'alice', dir);
  hitoshi = await makePeer(stack, 'hitoshi', dir);
  await introduce(alice, hitoshi);
  net = await buildNetwork({
    sites: [
      { name: 'home', kind: 'public' },
      { name: 'away', kind: 'public' },
    ],
  });
  // no UDP between the sites at all, in or out (loopback stays)
  for (const site of net.sites) {
    await net.exec(site.hostNs, 'iptables', ['-A', 'INPUT', '-p', 'udp', '!', '-i', 'lo', '-j', 'DROP']);
    await net.exec(site.hostNs, 'iptables', ['-A', 'OUTPUT', '-p', 'udp', '!', '-o', 'lo', '-j', 'DROP']);
    bridges.push(await bridgeMail(net, site, stack, dir));
  }
  await placeIn(alice, net.site('home'));
  await placeIn(hitoshi, net.site('away'));
}, 180_000);

afterAll(async () => {
  for (const b of bridges) await b.close();
  await net?.destroy();
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('no path at all between two sites, no relay: the chat goes on by mail', () => {
  it(
    'lines both ways marked "(by mail)", a small file with its SHA-256, a too-big file refused, /quit ends both',
    async () => {
      const received = path.join(dir, 'received');
      const small = path.join(dir, 'small.bin');
      const big = path.join(dir, 'big.bin');
      const smallData = randomBytes(20 * 1024);
      await fs.writeFile(small, smallData);
      await fs.writeFile(big, randomBytes(100 * 1024));

      const h = cli(net.site('away'), hitoshi, ['listen', '--dir', received]);
      await waitFor(`hitoshi listening\n${h.text()}`, () => h.err.includes('waiting for a call'), LONG);
      const a = cli(net.site('home'), alice, ['call', 'hitoshi']);
      const both = () => `alice ${a.text()}\n\nhitoshi ${h.text()}`;

      // the call fails to connect; alice is told once why, and the chat stays open
      await waitFor(`alice falls back to mail\n${both()}`, () => a.err.includes('now travel by mail'), LONG);
      expect(a.err).toContain(`no direct path between you and ${hitoshi.email}, and no relay set (see \`[ice] turn\`): chat lines and files under 64 KiB (/send FILE) now travel by mail, slower.`);
      expect(a.err.split('now travel by mail')).toHaveLength(2);
      expect(a.err).not.toContain('connected to');
      // hitoshi's side joins when alice's chat opens
      await waitFor(`hitoshi joins the chat by mail\n${both()}`, () => h.err.includes('now travel by mail'), LONG);
      expect(h.err).toContain(`no direct path between you and ${alice.email}`);

      let t = performance.now();
      a.type('hello from alice, by mail');
      await waitFor(`alice's line at hitoshi\n${both()}`, () => h.out.includes(`${alice.email} (by mail): hello from alice, by mail`), LONG);
      const there = performance.now() - t;
      t = performance.now();
      h.type('hello back from hitoshi \x1b[2J');
      await waitFor(`hitoshi's line at alice\n${both()}`, () => a.out.includes(`${hitoshi.email} (by mail): hello back from hitoshi`), LONG);
      const back = performance.now() - t;
      console.log(`a chat line by mail (typed -> shown on the other side): alice -> hitoshi ${Math.round(there)} ms, hitoshi -> alice ${Math.round(back)} ms`);
      // a terminal escape typed or sent never reaches the other terminal raw
      expect(a.out).toContain('hello back from hitoshi \\x1b[2J');
      expect(a.out).not.toContain('\x1b');

      // too big: refused at once with the message, nothing sent
      a.type(`/send ${big}`);
      await waitFor(`the refusal\n${both()}`, () => a.err.includes('REFUSED big.bin'), LONG);
      expect(a.err).toContain('REFUSED big.bin is 100 KiB: too big to go by mail (only files under 64 KiB, [call] mail_fallback_max_kib). Nothing was sent');
      // small: arrives whole
      a.type(`/send ${small}`);
      await waitFor(`the small file at hitoshi\n${both()}`, () => /sent small\.bin: 20480 bytes, sha256 [0-9a-f]{64}, saved as /.test(h.out), LONG);
      const saved = path.join(received, 'small.bin');
      expect(h.out).toContain(`${alice.email} (by mail) sent small.bin: 20480 bytes, sha256 ${sha256(smallData)}, saved as ${saved}`);
      expect(sha256(await fs.readFile(saved))).toBe(sha256(smallData));
      // the big file never came
      expect((await fs.readdir(received)).sort()).toEqual(['small.bin']);

      // /quit on alice's side ends the chat on both
      a.type('/quit');
      await a.exited;
      await waitFor(`hitoshi sees alice leave\n${both()}`, () => h.err.includes(`${alice.email} left the chat (by mail)`), LONG);
      await h.exited;
      expect(a.exit, both()).toBe(0);
      expect(h.exit, both()).toBe(0);
      console.log(both());
      // what was shown in a chat is not waiting unread in `peerdial messages` too
      const unread = await runCli(['--config', hitoshi.configFile, '--json', 'messages']);
      const list = JSON.parse(unread.stdout) as Array<{ text?: string; read: boolean }>;
      expect(list.filter((m) => !m.read).map((m) => m.text)).toEqual([]);
      expect(list.map((m) => m.text)).toEqual(expect.arrayContaining(['hello from alice, by mail']));
    },
    15 * 60_000,
  );
});
