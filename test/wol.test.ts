/**
 * Wake-on-LAN: the magic packet, and the relay that wakes hitoshi's
 * sleeping machine when alice's offer arrives in hitoshi's INBOX (a UDP
 * socket of the test stands in for the sleeping network card). A stranger's
 * mail does not wake it, nor does a mail whose From names alice but whose
 * signature is not her pinned key's (or that is not signed at all); and
 * hitoshi's INBOX is exactly as it was: no flag set, nothing moved.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createSocket, type Socket } from 'node:dgram';
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { magicPacket, parseMac, sendWakeOnLan } from '../src/address/wol.js';
import { parseConfig } from '../src/config/config.js';
import { OutboxLoop } from '../src/agent/mailbox.js';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { BIN, introduce, makePeer, mailboxSnapshot, tempDir, waitFor, type Peer } from './harness/peers.js';
import { forgedOffer } from './harness/hostile.js';

const MAC = '00:11:22:aa:bb:cc';
const MAC_BYTES = Buffer.from([0x00, 0x11, 0x22, 0xaa, 0xbb, 0xcc]);

describe('the magic packet', () => {
  it('is six 0xFF bytes and the MAC sixteen times, from any usual spelling', () => {
    const expected = Buffer.concat([Buffer.alloc(6, 0xff), ...Array.from({ length: 16 }, () => MAC_BYTES)]);
    for (const spelling of [MAC, '00-11-22-AA-BB-CC', '0011.22aa.bbcc', '001122aabbcc']) {
      const p = magicPacket(spelling);
      expect(p.length).toBe(102);
      expect(p.equals(expected)).toBe(true);
    }
  });

  it('rejects junk', () => {
    for (const junk of ['', '00:11:22:aa:bb', '00:11:22:aa:bb:cc:dd', '00:11-22:aa:bb:cc', 'zz:11:22:aa:bb:cc', '0011.22aa.bbc', 'camera']) {
      expect(() => parseMac(junk), junk).toThrow(/not a MAC address/);
    }
  });

  it('goes out as one UDP datagram', async () => {
    const sock = await listen();
    const got = nextPacket(sock.socket);
    await sendWakeOnLan(MAC, { address: '127.0.0.1', port: sock.port });
    expect((await got).equals(magicPacket(MAC))).toBe(true);
    sock.socket.close();
  });

  it('[[wake]] in the config: a bad MAC or an unknown key names the key', () => {
    expect(() => parseConfig('[[wake]]\nemail = "c@x.org"\nmac = "nope"\n', '/r.toml', {})).toThrow(/wake\[0\]\.mac must be a MAC address/);
    expect(() => parseConfig('[[wake]]\nemail = "c@x.org"\nmac = "00:11:22:33:44:55"\nadress = "1.2.3.4"\n', '/r.toml', {})).toThrow(/line 4: unknown key adress in \[wake\]; did you mean address\?/);
    const cfg = parseConfig('[[wake]]\nemail = "Cam@x.org"\nmac = "00:11:22:33:44:55"\nconfig = "cam.toml"\n', '/etc/r.toml', {});
    expect(cfg.wake).toEqual([{ email: 'cam@x.org', mac: '00:11:22:33:44:55', address: '255.255.255.255', port: 9, config: '/etc/cam.toml' }]);
  });
});

async function listen(): Promise<{ socket: Socket; port: number }> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  return { socket, port: socket.address().port };
}

function nextPacket(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => socket.once('message', (m) => resolve(m)));
}

describe('the wake relay on the real mail stack', () => {
  let stack: MailStack;
  let dir: string;
  let alice: Peer;
  let hitoshi: Peer;
  let carol: Peer;
  let relay: ChildProcess | undefined;

  beforeAll(async () => {
    ensureMailServers();
    stack = await startMailStack({ users: ['alice', 'hitoshi', 'carol'] });
    dir = await tempDir('wol');
    alice = await makePeer(stack, 'alice', dir);
    hitoshi = await makePeer(stack, 'hitoshi', dir);
    carol = await makePeer(stack, 'carol', dir);
    // hitoshi knows alice (her key introduced: a wake needs that); carol is a stranger to him
    await introduce(alice, hitoshi);
  }, 120_000);

  afterAll(async () => {
    if (relay && relay.exitCode === null) relay.kill('SIGKILL');
    await stack?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  async function sendOffer(from: Peer): Promise<void> {
    const acc = await from.open();
    // no keys here: the test is about the relay, so the offers go in clear text, as `call --plain` sends them
    await acc.queue({ kind: 'offer', plain: true, to: hitoshi.email, sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n', purpose: 'chat' });
    const r = await new OutboxLoop(acc).drainOnce({ force: true });
    expect(r.sent, JSON.stringify(r)).toBe(1);
  }

  it('alice\'s offer wakes hitoshi\'s machine; carol\'s does not; hitoshi\'s INBOX is untouched', async () => {
    const sock = await listen();
    const packets: Buffer[] = [];
    sock.socket.on('message', (m) => packets.push(m));
    const relayHome = path.join(dir, 'relay');
    await fs.mkdir(relayHome, { recursive: true });
    const relayConfig = path.join(relayHome, 'config.toml');
    await fs.writeFile(
      relayConfig,
      `[defaults]\nstate_dir = "${path.join(relayHome, 'state')}"\n\n[[wake]]\nemail = "${hitoshi.email}"\nmac = "${MAC}"\naddress = "127.0.0.1"\nport = ${sock.port}\nconfig = "${hitoshi.configFile}"\n`,
    );
    const hitoshiState = await snapshotDir(hitoshi.stateDir);
    let out = '';
    relay = spawn(process.execPath, [BIN, '--config', relayConfig, 'wake-relay'], { stdio: ['ignore', 'pipe', 'pipe'] });
    relay.stdout!.on('data', (d) => (out += d));
    relay.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => relay!.on('close', (c) => r(c)));
    try {
      await waitFor('relay watching', () => out.includes('watching the INBOX of hitoshi@example.test read-only (IDLE)'), 30_000);

      await sendOffer(carol);
      await waitFor('stranger ignored', () => out.includes('from carol@example.test for hitoshi@example.test ignored: not a contact'), 30_000);
      expect(packets).toHaveLength(0);

      // carol forges alice: From alice, signed by carol's key, the outer header claiming alice's key
      const carolKey = (await carol.open()).identity.privateKey;
      const aliceFp = (await alice.open()).identity.fingerprint;
      await stack.deliverRaw('hitoshi', await forgedOffer({ from: alice.email, to: hitoshi.email, signer: carolKey, claimedFingerprint: aliceFp }));
      await waitFor('forgery ignored', () => /from alice@example\.test for hitoshi@example\.test ignored: key-mismatch: signed by key \S+, not by the pinned key/.test(out), 30_000);
      // ... and an unsigned "offer" from alice
      await stack.deliverRaw('hitoshi', await forgedOffer({ from: alice.email, to: hitoshi.email }));
      await waitFor('unsigned ignored', () => /from alice@example\.test for hitoshi@example\.test ignored: bad-signature: payload is not signed/.test(out), 30_000);
      expect(packets).toHaveLength(0);

      await sendOffer(alice);
      await waitFor('magic packet', () => packets.length > 0, 30_000);
      expect(packets).toHaveLength(1);
      expect(packets[0]!.equals(Buffer.concat([Buffer.alloc(6, 0xff), ...Array.from({ length: 16 }, () => MAC_BYTES)]))).toBe(true);
      // the packet may arrive before the relay has written its line
      await waitFor('the relay logs the wake', () => out.includes(`magic packet for ${MAC} sent to 127.0.0.1:${sock.port}`), 30_000);

      // a second offer within 30 s: no second packet
      await sendOffer(alice);
      await waitFor('rate limit', () => out.includes('not waking again'), 30_000);
      expect(packets).toHaveLength(1);

      // hitoshi's INBOX: all five mails there, no flag on any (read-only: EXAMINE, BODY.PEEK)
      const inbox = await mailboxSnapshot(stack, 'hitoshi');
      expect(inbox).toHaveLength(5);
      for (const m of inbox) expect(m.flags).toEqual([]);
      // nothing of hitoshi's peerdial state was written (ledger, contacts)
      expect(await snapshotDir(hitoshi.stateDir)).toEqual(hitoshiState);
    } finally {
      relay.kill('SIGTERM');
      expect(await exited).toBe(0);
      sock.socket.close();
    }
    expect(out).toContain('wake relay stopped');
    // and still nothing changed after the relay logged out
    for (const m of await mailboxSnapshot(stack, 'hitoshi')) expect(m.flags).toEqual([]);
  }, 120_000);
});

/** Every file under dir with its size and mtime. */
async function snapshotDir(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name);
    const st = await fs.stat(p);
    out[path.relative(dir, p)] = `${st.size}:${st.mtimeMs}`;
  }
  return out;
}
