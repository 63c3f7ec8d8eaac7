/**
 * One side of figure 2's measured try: raw node-datachannel between two
 * processes on loopback, to see what closes the gap to TCP. The benchmark
 * drives a sender and a receiver over IPC:
 *
 *   parent -> sender:   {t:'offer', pcs, chans, maxMessageSize, mtu}   -> {t:'offers', sdps}
 *   parent -> receiver: {t:'answer', sdps, maxMessageSize, mtu, total} -> {t:'answers', sdps}
 *   parent -> sender:   {t:'accept', sdps}                        -> {t:'open'}
 *   parent -> both:     {t:'go', total, msgSize}
 *   receiver -> parent: {t:'done', bytes, cpuMs}    (CPU since 'go')
 *   parent -> sender:   {t:'cpu'}                   -> {t:'cpu', cpuMs}
 *   parent -> both:     {t:'close'}                 (cleanup, exit)
 *
 * `pcs` peer connections with `chans` data channels each; the bytes are
 * split evenly over all channels. The offer goes out with a=setup:active
 * (offerer is the DTLS client), as peerdial does.
 */
import { PeerConnection, cleanup, type DataChannel } from 'node-datachannel';
import { randomBytes } from 'node:crypto';

type Msg = { t: string; [k: string]: unknown };

const pcs: PeerConnection[] = [];
const channels: DataChannel[] = [];
let goCpu = process.cpuUsage();
let received = 0;
let total = 0;
let doneSent = false;
let allOpen: Promise<unknown> = Promise.resolve();

const send = (m: Msg) => process.send!(m);
const cpuSince = (base: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(base);
  return (d.user + d.system) / 1000;
};
const safe = <A extends unknown[]>(fn: (...a: A) => void) => (...a: A) => {
  try {
    fn(...a);
  } catch (err) {
    setImmediate(() => {
      throw err;
    });
  }
};

function newPc(i: number, maxMessageSize: number, mtu?: number): PeerConnection {
  const pc = new PeerConnection(`bench-${process.pid}-${i}`, { iceServers: [], bindAddress: '127.0.0.1', maxMessageSize, ...(mtu ? { mtu } : {}) });
  pcs.push(pc);
  return pc;
}

function gathered(pc: PeerConnection): Promise<string> {
  return new Promise((resolve) => {
    const done = () => resolve(pc.localDescription()!.sdp);
    if (pc.gatheringState() === 'complete') return done();
    pc.onGatheringStateChange(safe((s: string) => s === 'complete' && done()));
  });
}

function onReceived(n: number): void {
  received += n;
  if (!doneSent && total > 0 && received >= total) {
    doneSent = true;
    send({ t: 'done', bytes: received, cpuMs: cpuSince(goCpu) });
  }
}

async function pump(dc: DataChannel, bytes: number, msgSize: number): Promise<void> {
  const buf = randomBytes(msgSize);
  const high = 4 * 1024 * 1024;
  const low = 1024 * 1024;
  dc.setBufferedAmountLowThreshold(low);
  let left = bytes;
  let wake: (() => void) | undefined;
  dc.onBufferedAmountLow(safe(() => wake?.()));
  while (left > 0) {
    const part = left >= msgSize ? buf : buf.subarray(0, left);
    dc.sendMessageBinary(part);
    left -= part.length;
    if (dc.bufferedAmount() > high) {
      await new Promise<void>((resolve) => {
        const check = () => {
          if (dc.bufferedAmount() > low) return;
          clearInterval(poll);
          wake = undefined;
          resolve();
        };
        // the event, and a poll in case it was missed
        const poll = setInterval(check, 50);
        wake = check;
      });
    }
  }
}

process.on('message', async (m: Msg) => {
  if (m.t === 'offer') {
    const sdps: string[] = [];
    const opens: Promise<void>[] = [];
    for (let i = 0; i < (m.pcs as number); i++) {
      const pc = newPc(i, m.maxMessageSize as number, m.mtu as number | undefined);
      for (let c = 0; c < (m.chans as number); c++) {
        const dc = pc.createDataChannel(`d${c}`);
        channels.push(dc);
        opens.push(new Promise((resolve) => (dc.isOpen() ? resolve() : dc.onOpen(safe(() => resolve())))));
      }
      sdps.push((await gathered(pc)).replace(/^a=setup:actpass(\r?)$/gm, 'a=setup:active$1'));
    }
    send({ t: 'offers', sdps });
    allOpen = Promise.all(opens);
  } else if (m.t === 'answer') {
    total = m.total as number;
    const sdps: string[] = [];
    const offers = m.sdps as string[];
    for (let i = 0; i < offers.length; i++) {
      const pc = newPc(i, m.maxMessageSize as number, m.mtu as number | undefined);
      pc.onDataChannel(
        safe((dc: DataChannel) => {
          channels.push(dc);
          dc.onMessage(safe((msg: string | Buffer | ArrayBuffer) => onReceived(typeof msg === 'string' ? Buffer.byteLength(msg) : msg.byteLength)));
        }),
      );
      pc.setRemoteDescription(offers[i]!, 'offer');
      sdps.push(await gathered(pc));
    }
    send({ t: 'answers', sdps });
  } else if (m.t === 'accept') {
    const answers = m.sdps as string[];
    answers.forEach((sdp, i) => pcs[i]!.setRemoteDescription(sdp, 'answer'));
    await allOpen;
    send({ t: 'open' });
  } else if (m.t === 'go') {
    goCpu = process.cpuUsage();
    if (total === 0) {
      // sender
      const bytes = m.total as number;
      const per = Math.floor(bytes / channels.length);
      await Promise.all(channels.map((dc, i) => pump(dc, i === channels.length - 1 ? bytes - per * (channels.length - 1) : per, m.msgSize as number)));
    }
  } else if (m.t === 'cpu') {
    send({ t: 'cpu', cpuMs: cpuSince(goCpu) });
  } else if (m.t === 'close') {
    for (const pc of pcs) {
      try {
        pc.close();
      } catch {
        /* gone */
      }
    }
    setTimeout(() => {
      cleanup();
      process.exit(0);
    }, 100);
  }
});
