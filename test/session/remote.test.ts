/**
 * Sessions in session processes (src/session/remote.ts, host.ts), on
 * loopback: the agent's side behaves like an in-process Session (channels,
 * backpressure, media), and a session process that dies ends its sessions
 * with a named error, while everything else goes on. The session processes
 * run the built host (dist/session/host.js: `npm test` builds first).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isPeerdialError } from '../../src/errors.js';
import {
  SessionHosts,
  defaultMediaSpec,
  type Channel,
  type IceConfig,
  type SessionCrash,
  type SessionProgress,
} from '../../src/session/index.js';

const ice: IceConfig = { iceServers: [], bindAddress: '127.0.0.1' };
const factories: SessionHosts[] = [];

function hosts(opts: ConstructorParameters<typeof SessionHosts>[0] = {}): SessionHosts {
  const h = new SessionHosts(opts);
  factories.push(h);
  return h;
}

/** True while `pid` runs (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterEach(async () => {
  await Promise.all(factories.splice(0).map((f) => f.shutdown()));
});

describe('a call whose sessions run in session processes', () => {
  it('alice and bob talk, send 8 MiB, open a channel; bob\'s process dies of SIGSEGV: his session ends with the crash, alice\'s process lives on', async () => {
    const crashes: SessionCrash[] = [];
    const aliceSide = hosts();
    const bobSide = hosts({ onCrash: (c) => crashes.push(c) });
    const progress: SessionProgress['type'][] = [];
    const { session: alice, sdp: offer } = await aliceSide.createOffer({ ice, onProgress: (e) => progress.push(e.type) });
    const { session: bob, sdp: answer } = await bobSide.acceptOffer(offer, { ice });
    // a process per session, none shared
    expect(aliceSide.pids()).toHaveLength(1);
    expect(bobSide.pids()).toHaveLength(1);
    expect(alice.hostPid).not.toBe(bob.hostPid);
    alice.acceptAnswer(answer);
    const [a, b] = await Promise.all([alice.connected({ timeoutMs: 30_000 }), bob.connected({ timeoutMs: 30_000 })]);
    expect(progress).toContain('gathered');
    expect(progress).toContain('connected');
    expect(a.pair.local).toMatch(/127\.0\.0\.1/);
    expect(alice.selectedPair()).toEqual(a.pair);
    expect(a.channel.maxMessageSize).toBeGreaterThan(0);

    // text both ways on the control channel
    const toBob = new Promise((r) => b.channel.onMessage(r));
    await a.channel.send('hello bob');
    expect(await toBob).toBe('hello bob');
    const toAlice = new Promise((r) => a.channel.onMessage(r));
    await b.channel.send(Buffer.from([1, 2, 3]));
    expect(await toAlice).toEqual(Buffer.from([1, 2, 3]));

    // a channel of its own with a small low-water mark: send() waits for the session process
    const incoming = new Promise<Channel>((r) => bob.onChannel((ch) => ch.label === 'file' && r(ch)));
    const out = await alice.openChannel('file', { protocol: 'peerdial-file', lowWaterMark: 64 * 1024 });
    const into = await incoming;
    expect(into.protocol).toBe('peerdial-file');
    const data = randomBytes(8 * 1024 * 1024);
    const parts: Buffer[] = [];
    let got = 0;
    const whole = new Promise<void>((resolve) =>
      into.onMessage((d) => {
        parts.push(d as Buffer);
        got += (d as Buffer).length;
        if (got >= data.length) resolve();
      }),
    );
    const first = out.send(data.subarray(0, 128 * 1024));
    let firstDone = false;
    void first.then(() => (firstDone = true));
    await Promise.resolve();
    // 128 KiB handed over, more than the 64 KiB mark: only the session process's ack releases it
    expect(firstDone).toBe(false);
    await first;
    for (let at = 128 * 1024; at < data.length; at += 128 * 1024) await out.send(data.subarray(at, at + 128 * 1024));
    await whole;
    expect(sha(Buffer.concat(parts))).toBe(sha(data));
    const tooBig = await out.send(Buffer.alloc(out.maxMessageSize + 1)).catch((e: unknown) => e);
    expect(isPeerdialError(tooBig, 'TRANSFER_FAILED')).toBe(true);

    // Ctrl-C in a terminal or `systemctl stop` signal every process of the agent: the
    // session processes leave the ending to the agent
    process.kill(bob.hostPid, 'SIGINT');
    process.kill(bob.hostPid, 'SIGTERM');
    const still = new Promise((r) => b.channel.onMessage(r));
    await a.channel.send('still there?');
    expect(await still).toBe('still there?');

    // bob's session process dies mid-call
    const bobPid = bob.hostPid;
    const bobClosed = new Promise<string>((r) => bob.onClose(r));
    const intoClosed = new Promise<void>((r) => into.onClose(r));
    process.kill(bobPid, 'SIGSEGV');
    expect(await bobClosed).toBe(`the session process (pid ${bobPid}) crashed (SIGSEGV)`);
    await intoClosed;
    expect(crashes).toEqual([{ pid: bobPid, signal: 'SIGSEGV', code: null, sessions: 1, reason: `the session process (pid ${bobPid}) crashed (SIGSEGV)` }]);
    expect(bob.isClosed).toBe(true);
    expect(isPeerdialError(bob.crash, 'SESSION_FAILED')).toBe(true);
    const late = await b.channel.send('anyone?').catch((e: unknown) => e);
    expect(isPeerdialError(late, 'SESSION_CLOSED')).toBe(true);
    expect(bobSide.pids()).toEqual([]);
    // alice's side is another process: it lives on until she hangs up
    expect(alive(alice.hostPid)).toBe(true);
    expect(alice.isClosed).toBe(false);
    const alicePid = alice.hostPid;
    alice.close('hung up');
    await expect(a.channel.send('x')).rejects.toMatchObject({ code: 'SESSION_CLOSED' });
    // a process that carries no session any more exits by itself
    while (aliceSide.pids().length > 0) await sleep(20);
    expect(alive(alicePid)).toBe(false);
  });

  it('media: the camera\'s RTP crosses both processes, the viewer counts frames and asks for a key frame', async () => {
    const side = hosts();
    const { session: viewer, sdp: offer } = await side.createOffer({ ice, media: defaultMediaSpec({ video: true, audio: true }, 'recvonly') });
    const { session: camera, sdp: answer } = await side.acceptOffer(offer, { ice, media: { video: { direction: 'sendonly' }, audio: { direction: 'sendonly' } } });
    try {
      expect(viewer.tracks().map((t) => `${t.kind}:${t.direction}`)).toEqual(['video:recvonly', 'audio:recvonly']);
      expect(camera.tracks().map((t) => `${t.kind}:${t.direction}:${t.payloadType}`)).toEqual(['video:sendonly:96', 'audio:sendonly:111']);
      viewer.acceptAnswer(answer);
      await Promise.all([viewer.connected({ timeoutMs: 30_000 }), camera.connected({ timeoutMs: 30_000 })]);
      const sender = camera.track('video')!;
      const receiver = viewer.track('video')!;
      await new Promise<void>((r) => sender.onOpen(r));
      await new Promise<void>((r) => receiver.onOpen(r));
      const asked = new Promise<void>((r) => sender.onKeyframeRequest(r));
      const seen: Buffer[] = [];
      receiver.onRtp((p) => seen.push(p));
      for (let seq = 0; seq < 5; seq++) {
        // marker bit set: one frame per packet
        expect(sender.sendRtp(Buffer.from([0x80, 0x80 | 96, 0, seq, 0, 0, 0, seq, 0, 0, 0, 1, 0x41, 0, 0]))).toBe(true);
      }
      while (receiver.stats().packetsReceived < 5) await sleep(10);
      expect(receiver.stats().framesReceived).toBe(5);
      expect(seen.map((p) => p.readUInt16BE(2))).toEqual([0, 1, 2, 3, 4]);
      expect(sender.stats().packetsSent).toBe(5);
      // RTCP is not RTP: refused here, before it crosses
      expect(sender.sendRtp(Buffer.from([0x80, 200, 0, 6, 0, 0, 0, 1]))).toBe(false);
      expect(receiver.requestKeyframe()).toBe(true);
      await asked;
      expect(sender.stats().keyframeRequestsReceived).toBe(1);
      // the viewer does not send
      expect(receiver.sendRtp(Buffer.alloc(20, 0x80))).toBe(false);
    } finally {
      viewer.close();
      camera.close();
    }
  });
});

describe('session processes that die or are not needed', () => {
  it('the caller\'s session process dies before the answer: connected() rejects with the crash, and the next offer gets a fresh process', async () => {
    const side = hosts();
    const { session } = await side.createOffer({ ice });
    const pid = session.hostPid;
    const waiting = session.connected({ timeoutMs: 60_000 });
    process.kill(pid, 'SIGABRT');
    const err = await waiting.catch((e: unknown) => e);
    expect(isPeerdialError(err, 'SESSION_FAILED')).toBe(true);
    expect((err as Error).message).toBe(`the session process (pid ${pid}) crashed (SIGABRT)`);
    expect(() => session.acceptAnswer('v=0')).toThrow(/crashed \(SIGABRT\)/);
    const next = await side.createOffer({ ice });
    expect(next.session.hostPid).not.toBe(pid);
    expect(next.sdp).toMatch(/a=setup:active/);
    next.session.close();
  });

  it('one process for two sessions (sessionsPerProcess 2): a crash ends both, and says so once', async () => {
    const crashes: SessionCrash[] = [];
    const side = hosts({ sessionsPerProcess: 2, onCrash: (c) => crashes.push(c) });
    const { session: alice, sdp: offer } = await side.createOffer({ ice });
    const { session: bob } = await side.acceptOffer(offer, { ice });
    expect(bob.hostPid).toBe(alice.hostPid);
    expect(side.pids()).toEqual([alice.hostPid]);
    const ends = Promise.all([new Promise<string>((r) => alice.onClose(r)), new Promise<string>((r) => bob.onClose(r))]);
    process.kill(alice.hostPid, 'SIGSEGV');
    const [ra, rb] = await ends;
    expect(ra).toContain('crashed (SIGSEGV)');
    expect(rb).toBe(ra);
    expect(crashes.map((c) => [c.signal, c.sessions])).toEqual([['SIGSEGV', 2]]);
  });

  it('a session process that cannot start: the offer fails with SESSION_FAILED and says why', async () => {
    const crashes: SessionCrash[] = [];
    const side = hosts({ entry: path.join(os.tmpdir(), 'no-such-peerdial-host.js'), onCrash: (c) => crashes.push(c) });
    const err = await side.createOffer({ ice }).catch((e: unknown) => e);
    expect(isPeerdialError(err, 'SESSION_FAILED')).toBe(true);
    expect((err as Error).message).toMatch(/^the session process \(pid \d+\) ended before it was ready \(exit code 1\)$/);
    expect(crashes).toHaveLength(1);
    expect(side.pids()).toEqual([]);
  });

  it('an offer the session refuses: the error keeps its code, and its process exits', async () => {
    const side = hosts();
    const err = await side.acceptOffer('v=0\r\nnot an offer\r\n', { ice }).catch((e: unknown) => e);
    expect(isPeerdialError(err, 'SESSION_FAILED')).toBe(true);
    expect((err as Error).message).toMatch(/unusable offer/);
    while (side.pids().length > 0) await sleep(20);
  });

  it('shutdown closes what is open and waits until no session process is left', async () => {
    const side = hosts();
    const { session } = await side.createOffer({ ice });
    const pid = session.hostPid;
    const closed = new Promise<string>((r) => session.onClose(r));
    await side.shutdown();
    expect(await closed).toBe('shut down');
    expect(alive(pid)).toBe(false);
    await expect(side.createOffer({ ice })).rejects.toMatchObject({ code: 'SESSION_CLOSED' });
  });
});
