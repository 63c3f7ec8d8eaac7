/**
 * The TLS lane between two machines (network namespaces, root): a file goes
 * over TLS when TCP gets through, and over the DataChannel when the
 * callee's side drops every TCP packet (iptables), with the same SHA-256
 * either way.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildNetwork, type Network, type Site } from './harness/netns.js';
import { PeerProcess, type PeerEvent } from './harness/netns-call.js';
import { tempDir } from './harness/peers.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let net: Network;
let dir: string;

beforeAll(async () => {
  net = await buildNetwork({
    sites: [
      { name: 'open-a', kind: 'public' },
      { name: 'open-b', kind: 'public' },
      { name: 'closed-a', kind: 'public' },
      { name: 'closed-b', kind: 'public' },
    ],
  });
  dir = await tempDir('tls-lane-netns');
  // closed-b answers calls but drops every TCP packet, in and out
  const ns = net.site('closed-b').hostNs;
  await net.exec(ns, 'iptables', ['-A', 'INPUT', '-p', 'tcp', '-j', 'DROP']);
  await net.exec(ns, 'iptables', ['-A', 'OUTPUT', '-p', 'tcp', '-j', 'DROP']);
}, 120_000);

afterAll(async () => {
  await net?.destroy();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

function peer(site: Site, role: 'offerer' | 'answerer', peerDir: string, file?: string): PeerProcess {
  const config = { role, ice: { iceServers: [], bindAddress: site.bindAddress }, dir: peerDir, file, connectTimeoutMs: 30_000 };
  return new PeerProcess(net.spawnInNs(site.hostNs, ['test/harness/netns-lane-peer.mjs', JSON.stringify(config)]));
}

/** One file from `from` to `to`; what each side reported. */
async function sendBetween(from: Site, to: Site, data: Buffer): Promise<{ sent: PeerEvent; received: PeerEvent; receivedDir: string }> {
  const base = path.join(dir, `${from.name}-${to.name}`);
  const file = path.join(base, 'payload.bin');
  await fs.mkdir(base, { recursive: true });
  await fs.writeFile(file, data);
  const caller = peer(from, 'offerer', path.join(base, 'caller'), file);
  const callee = peer(to, 'answerer', path.join(base, 'callee'));
  const stderr = () => `caller: ${caller.stderr.join('')}\ncallee: ${callee.stderr.join('')}`;
  try {
    const offer = await caller.waitFor(['offer', 'failed'], 60_000);
    expect(offer?.type, JSON.stringify(offer) + stderr()).toBe('offer');
    callee.send({ cmd: 'offer', sdp: offer!.sdp });
    const answer = await callee.waitFor(['answer', 'failed'], 60_000);
    expect(answer?.type, JSON.stringify(answer) + stderr()).toBe('answer');
    caller.send({ cmd: 'answer', sdp: answer!.sdp });
    const [sent, received] = await Promise.all([caller.waitFor(['sent', 'failed'], 120_000), callee.waitFor(['received', 'failed'], 120_000)]);
    expect(sent?.type, JSON.stringify(sent) + stderr()).toBe('sent');
    expect(received?.type, JSON.stringify(received) + stderr()).toBe('received');
    return { sent: sent!, received: received!, receivedDir: path.join(base, 'callee', 'in') };
  } finally {
    await Promise.all([caller.close(), callee.close()]);
  }
}

describe('the TLS lane between two namespaces', () => {
  it('TCP gets through: the file goes via tls and arrives with its SHA-256', async () => {
    const data = randomBytes(8 * 1024 * 1024);
    const r = await sendBetween(net.site('open-a'), net.site('open-b'), data);
    expect(r.sent.via).toBe('tls');
    expect(r.received.via).toBe('tls');
    expect((r.sent.files as Array<{ status: string; sha256: string }>)[0]).toMatchObject({ status: 'sent', sha256: sha256(data) });
    expect(sha256(await fs.readFile(path.join(r.receivedDir, 'payload.bin')))).toBe(sha256(data));
  }, 240_000);

  it('TCP dropped on the callee: the file goes via datachannel and arrives with its SHA-256', async () => {
    const data = randomBytes(8 * 1024 * 1024);
    const r = await sendBetween(net.site('closed-a'), net.site('closed-b'), data);
    expect(r.sent.via).toBe('datachannel');
    // the callee told why: its connect did not get through
    expect(String(r.sent.reason)).toContain('no TLS lane to');
    expect(r.received.via).toBe('datachannel');
    expect((r.received.files as Array<{ status: string; sha256: string }>)[0]).toMatchObject({ status: 'saved', sha256: sha256(data) });
    expect(sha256(await fs.readFile(path.join(r.receivedDir, 'payload.bin')))).toBe(sha256(data));
  }, 240_000);
});
