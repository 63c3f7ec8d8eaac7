/**
 * The TLS lane (carriers/tls-lane.ts) between two calls whose control
 * channels are an in-memory pair and whose certificates are real per-call
 * certificates (session/certificate.ts), on loopback: files go over TLS with
 * their SHA-256 and resume; a certificate that is not the one the signed
 * description names is refused on either side, and the carrier falls back
 * to the DataChannel.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCallCertificate, type CallCertificate } from '../../src/session/index.js';
import type { Channel } from '../../src/session/types.js';
import {
  answerLanes,
  carrierChannelNamed,
  openCarrierChannel,
  receiveFiles,
  sendFiles,
  settleChannel,
  viaOf,
  PARTIAL_SUFFIX,
  type LaneCall,
} from '../../src/carriers/index.js';
import { connectLane, laneIdentity, listenLane } from '../../src/carriers/tls-lane.js';
import { channelPair } from '../harness/memory-channel.js';
import { tempDir } from '../harness/peers.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sdpNaming = (cert: CallCertificate) => `v=0\r\na=fingerprint:sha-256 ${cert.fingerprint}\r\n`;

let dir: string;
let alice: CallCertificate;
let hitoshi: CallCertificate;
let mallory: CallCertificate;

beforeAll(async () => {
  dir = await tempDir('tls-lane');
  [alice, hitoshi, mallory] = await Promise.all([createCallCertificate(), createCallCertificate(), createCallCertificate()]);
});

afterAll(async () => {
  for (const c of [alice, hitoshi, mallory]) c?.remove();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

interface FakeCall extends LaneCall {
  /** DataChannels this side opened (the fallback). */
  opened: string[];
  hangup(): void;
}

/**
 * Two connected calls on loopback. `aliceShows`/`hitoshiShows` is the
 * certificate each really uses for TLS; the other side expects the one its
 * signed description named (alice's and hitoshi's).
 */
function callPair(opts: { aliceShows?: CallCertificate; hitoshiShows?: CallCertificate } = {}): { caller: FakeCall; callee: FakeCall } {
  const [aliceControl, hitoshiControl] = channelPair({ label: 'control' });
  const [aliceData, hitoshiData] = channelPair({ label: 'file' });
  let endCall!: (state: string) => void;
  const ended = new Promise<string>((r) => (endCall = r));
  const pair = { local: 'host 127.0.0.1:40000/udp', remote: 'host 127.0.0.1:40001/udp' };
  const side = (control: Channel, data: Channel, shows: CallCertificate, peer: CallCertificate, p: typeof pair): FakeCall => {
    const opened: string[] = [];
    const dataListeners: Array<(c: Channel) => void> = [];
    return {
      control,
      pair: p,
      ended,
      opened,
      hangup: () => endCall('hung-up'),
      tls: { certPemFile: shows.certPemFile, keyPemFile: shows.keyPemFile, peerSdp: sdpNaming(peer) },
      session: {
        openChannel: async (label: string) => {
          opened.push(label);
          // the peer sees the DataChannel arrive
          queueMicrotask(() => calleeDataListeners.forEach((cb) => cb(hitoshiData)));
          return data;
        },
        onChannel: (cb) => dataListeners.push(cb),
      },
    };
  };
  const caller = side(aliceControl, aliceData, opts.aliceShows ?? alice, hitoshi, pair);
  const callee = side(hitoshiControl, hitoshiData, opts.hitoshiShows ?? hitoshi, alice, { local: pair.remote, remote: pair.local });
  const calleeDataListeners: Array<(c: Channel) => void> = [];
  callee.session.onChannel = (cb) => calleeDataListeners.push(cb);
  return { caller, callee };
}

async function sendOver(caller: FakeCall, callee: FakeCall, file: string, into: string) {
  answerLanes(callee);
  const [opened, received] = await Promise.all([
    (async () => {
      const c = await openCarrierChannel(caller, 'file');
      const sent = await sendFiles(c.channel, [file]);
      await settleChannel(c.channel);
      return { ...c, sent };
    })(),
    (async () => {
      const ch = await carrierChannelNamed(callee, 'file');
      return { via: viaOf(ch), files: await receiveFiles(ch, { dir: into }) };
    })(),
  ]);
  caller.hangup();
  return { opened, received };
}

describe('a file over the TLS lane', () => {
  it('arrives whole with its SHA-256 and both sides say "tls"; no DataChannel was opened', async () => {
    const data = randomBytes(24 * 1024 * 1024 + 123);
    const file = path.join(dir, 'lane.bin');
    await fs.writeFile(file, data);
    const into = path.join(dir, 'in-1');
    const { caller, callee } = callPair();
    const { opened, received } = await sendOver(caller, callee, file, into);
    expect(opened.via).toBe('tls');
    expect(received.via).toBe('tls');
    expect(caller.opened).toEqual([]);
    expect(opened.sent[0]).toMatchObject({ status: 'sent', sha256: sha256(data), bytesSent: data.length });
    expect(received.files[0]).toMatchObject({ status: 'saved', sha256: sha256(data), bytesReceived: data.length });
    expect(sha256(await fs.readFile(path.join(into, 'lane.bin')))).toBe(sha256(data));
  });

  it('resumes a kept partial file over the lane', async () => {
    const data = randomBytes(4 * 1024 * 1024);
    const file = path.join(dir, 'resume.bin');
    await fs.writeFile(file, data);
    const into = path.join(dir, 'in-2');
    await fs.mkdir(into, { recursive: true, mode: 0o700 });
    // what an interrupted transfer left: the first 1 MiB and the sidecar
    const kept = 1024 * 1024;
    await fs.writeFile(path.join(into, `resume.bin${PARTIAL_SUFFIX}`), data.subarray(0, kept), { mode: 0o600 });
    await fs.writeFile(path.join(into, `resume.bin${PARTIAL_SUFFIX}.json`), JSON.stringify({ name: 'resume.bin', size: data.length, sha256: sha256(data) }), { mode: 0o600 });
    const { caller, callee } = callPair();
    const { opened, received } = await sendOver(caller, callee, file, into);
    expect(opened.via).toBe('tls');
    expect(opened.sent[0]).toMatchObject({ status: 'sent', resumedFrom: kept, bytesSent: data.length - kept });
    expect(received.files[0]).toMatchObject({ status: 'saved', resumedFrom: kept });
    expect(sha256(await fs.readFile(path.join(into, 'resume.bin')))).toBe(sha256(data));
  });
});

describe('a certificate that is not the one in the signed exchange', () => {
  it('shown by the connecting side: the listener refuses it, and the file goes over the DataChannel', async () => {
    const data = randomBytes(256 * 1024);
    const file = path.join(dir, 'wrong-client.bin');
    await fs.writeFile(file, data);
    // hitoshi's side connects with mallory's certificate; alice expects hitoshi's
    const { caller, callee } = callPair({ hitoshiShows: mallory });
    const { opened, received } = await sendOver(caller, callee, file, path.join(dir, 'in-3'));
    expect(opened.via).toBe('datachannel');
    expect(caller.opened).toEqual(['file']);
    expect(received.via).toBe('datachannel');
    expect(received.files[0]).toMatchObject({ status: 'saved', sha256: sha256(data) });
  });

  it('shown by the listening side: the connecting side refuses it with FINGERPRINT_MISMATCH', async () => {
    const listener = await listenLane({ host: '127.0.0.1', identity: await laneIdentity({ ...mallory, peerSdp: sdpNaming(hitoshi) }) });
    try {
      const hitoshiSide = await laneIdentity({ certPemFile: hitoshi.certPemFile, keyPemFile: hitoshi.keyPemFile, peerSdp: sdpNaming(alice) });
      const err = await connectLane({ host: listener.host, port: listener.port, token: listener.token, identity: hitoshiSide }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'FINGERPRINT_MISMATCH' });
      expect(String((err as Error).message)).toContain('is not the one its signed description names');
    } finally {
      listener.close();
    }
  });

  it('the listener says why it refused a client certificate, and a right one with a wrong token is refused too', async () => {
    const refused: string[] = [];
    const listener = await listenLane({
      host: '127.0.0.1',
      identity: await laneIdentity({ ...alice, peerSdp: sdpNaming(hitoshi) }),
      onRefused: (r) => refused.push(r),
    });
    try {
      const malloryAsHitoshi = await laneIdentity({ ...mallory, peerSdp: sdpNaming(alice) });
      await expect(connectLane({ host: listener.host, port: listener.port, token: listener.token, identity: malloryAsHitoshi })).rejects.toMatchObject({ code: 'TLS_FAILED' });
      const hitoshiSide = await laneIdentity({ ...hitoshi, peerSdp: sdpNaming(alice) });
      await expect(connectLane({ host: listener.host, port: listener.port, token: randomBytes(32).toString('hex'), identity: hitoshiSide })).rejects.toMatchObject({ code: 'TLS_FAILED' });
      expect(refused).toEqual([expect.stringContaining('is not the one its signed description names'), 'wrong token']);
      // the right certificate with the right token still gets the lane
      const ok = await connectLane({ host: listener.host, port: listener.port, token: listener.token, identity: hitoshiSide });
      const server = await listener.accepted;
      expect(server.socket.getPeerX509Certificate()?.fingerprint256.toUpperCase()).toBe(hitoshi.fingerprint);
      ok.socket.destroy();
      server.socket.destroy();
    } finally {
      listener.close();
    }
  });
});
