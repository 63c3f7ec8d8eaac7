/**
 * Figure 2: bulk transfer through the real CLI (`peerdial send` into
 * `peerdial listen`, `peerdial call --pipe` into `peerdial listen --pipe`)
 * against a plain TCP copy of the same file between two processes; and the
 * measured try of gap-closing ideas on raw node-datachannel.
 */
import { closeSync, createWriteStream, openSync, promises as fs } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fork } from 'node:child_process';
import type { Peer } from '../test/harness/peers.js';
import { CLI, HERE, PROBE, log, now, startNode, stopChild, summarize, type Child, type Summary } from './lib.js';

export interface TransferRun {
  ms: number;
  mbps: number;
  senderCpuMs: number;
  receiverCpuMs: number;
}

export interface TransferSummary {
  bytes: number;
  runs: TransferRun[];
  mbps: Summary;
  ms: Summary;
  /** CPU seconds per GiB, whole processes (start-up and call set-up included for the CLI) */
  senderCpuPerGiB: Summary;
  receiverCpuPerGiB: Summary;
}

const GIB = 1024 ** 3;

export function summarizeTransfers(bytes: number, runs: TransferRun[]): TransferSummary {
  const perGiB = (ms: number) => ms / 1000 / (bytes / GIB);
  return {
    bytes,
    runs,
    mbps: summarize(runs.map((r) => r.mbps)),
    ms: summarize(runs.map((r) => r.ms)),
    senderCpuPerGiB: summarize(runs.map((r) => perGiB(r.senderCpuMs))),
    receiverCpuPerGiB: summarize(runs.map((r) => perGiB(r.receiverCpuMs))),
  };
}

const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

export async function makeSource(file: string, bytes: number): Promise<void> {
  const out = createWriteStream(file);
  const chunk = 16 * 1024 * 1024;
  for (let left = bytes; left > 0; left -= chunk) {
    if (!out.write(randomBytes(Math.min(chunk, left)))) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

/** Which carrier a transfer must use: the TLS lane, or the DataChannel (PEERDIAL_LANE=datachannel). */
export type Lane = 'tls' | 'datachannel';

function cli(peer: Peer, args: string[], stdio: ('ignore' | 'pipe' | number)[], lane: Lane = 'tls'): Child {
  return startNode(CLI, ['--config', peer.configFile, ...args], { stdio, probe: true, env: { PEERDIAL_LANE: lane } });
}

/** The sender said which carrier it used: a run on the wrong one is an error, not a figure. */
async function checkLane(sender: Child, lane: Lane): Promise<void> {
  const { match } = await sender.waitStderr(/via (tls|datachannel)\n/, 60_000);
  if (match[1] !== lane) throw new Error(`the transfer went via ${match[1]}, not ${lane}:\n${sender.stderr()}`);
}

async function bothExit(children: Child[], timeoutMs: number): Promise<void> {
  const timer = new Promise<'hung'>((r) => setTimeout(() => r('hung'), timeoutMs).unref());
  const r = await Promise.race([Promise.all(children.map((c) => c.exited)), timer]);
  if (r === 'hung') {
    for (const c of children) stopChild(c);
    throw new Error(`transfer did not finish in ${timeoutMs} ms:\n${children.map((c) => c.stderr()).join('\n---\n')}`);
  }
  for (const c of children) {
    const e = await c.exited;
    if (e.code !== 0) throw new Error(`a process exited with ${e.code ?? e.signal}:\n${c.stderr()}`);
  }
}

const CONNECTED = /connected to \S+ via .* in (\d+) ms/;

/** `peerdial send` of `file` into `peerdial listen --dir`; time from "connected" to the sender's exit. */
export async function cliSend(from: Peer, to: Peer, file: string, bytes: number, dir: string, lane: Lane = 'tls'): Promise<TransferRun> {
  const into = await fs.mkdtemp(path.join(dir, 'recv-'));
  const listener = cli(to, ['listen', '--dir', into], ['ignore', 'pipe', 'pipe']);
  try {
    await listener.waitStderr(/waiting for a call/, 30_000);
    const sender = cli(from, ['send', to.name, file], ['ignore', 'pipe', 'pipe'], lane);
    const { at } = await sender.waitStderr(CONNECTED, 60_000);
    await checkLane(sender, lane);
    await bothExit([sender, listener], 600_000);
    const ms = (await sender.exited).at - at;
    const saved = await fs.stat(path.join(into, path.basename(file)));
    if (saved.size !== bytes) throw new Error(`received ${saved.size} bytes, not ${bytes}`);
    return { ms, mbps: mbps(bytes, ms), senderCpuMs: sender.probe()!.cpuMs, receiverCpuMs: listener.probe()!.cpuMs };
  } finally {
    stopChild(listener);
    await fs.rm(into, { recursive: true, force: true });
  }
}

/** `peerdial call --pipe` with `file` on stdin into `peerdial listen --pipe` writing a file; "connected" -> both exited. */
export async function cliPipe(from: Peer, to: Peer, file: string, bytes: number, dir: string, lane: Lane = 'tls'): Promise<TransferRun> {
  const outFile = path.join(dir, 'pipe-out.bin');
  const outFd = openSync(outFile, 'w');
  const inFd = openSync(file, 'r');
  const listener = cli(to, ['listen', '--pipe'], ['ignore', outFd, 'pipe']);
  closeSync(outFd);
  try {
    await listener.waitStderr(/waiting for a call/, 30_000);
    const caller = cli(from, ['call', to.name, '--pipe'], [inFd, 'ignore', 'pipe'], lane);
    closeSync(inFd);
    const { at } = await caller.waitStderr(CONNECTED, 60_000);
    await checkLane(caller, lane);
    await bothExit([caller, listener], 600_000);
    const ms = Math.max((await caller.exited).at, (await listener.exited).at) - at;
    const size = (await fs.stat(outFile)).size;
    if (size !== bytes) throw new Error(`received ${size} bytes, not ${bytes}`);
    return { ms, mbps: mbps(bytes, ms), senderCpuMs: caller.probe()!.cpuMs, receiverCpuMs: listener.probe()!.cpuMs };
  } finally {
    stopChild(listener);
    await fs.rm(outFile, { force: true });
  }
}

/** Plain TCP copy between two processes: `src` (file or mem:BYTES) -> `out` (file or "-"). */
export async function tcpCopy(src: string, out: string, bytes: number, tlsFiles?: { cert: string; key: string }): Promise<TransferRun> {
  const script = path.join(HERE, 'tcp-copy.js');
  const env = tlsFiles ? { TCP_COPY_TLS_CERT: tlsFiles.cert, TCP_COPY_TLS_KEY: tlsFiles.key } : {};
  const recv = startNode(script, ['recv', out], { probe: true, env });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const t = setInterval(() => {
        const m = /port (\d+)/.exec(recv.stdout());
        if (m) {
          clearInterval(t);
          resolve(Number(m[1]));
        }
      }, 5);
      void recv.exited.then(() => (clearInterval(t), reject(new Error(`tcp receiver ended: ${recv.stderr()}`))));
    });
    const send = startNode(script, ['send', String(port), src], { probe: true, env });
    await bothExit([send, recv], 300_000);
    const r = JSON.parse(recv.stdout().split('\n').find((l) => l.startsWith('{'))!) as { bytes: number; ms: number };
    if (r.bytes !== bytes) throw new Error(`tcp copy: ${r.bytes} bytes, not ${bytes}`);
    return { ms: r.ms, mbps: mbps(bytes, r.ms), senderCpuMs: send.probe()!.cpuMs, receiverCpuMs: recv.probe()!.cpuMs };
  } finally {
    stopChild(recv);
    if (out !== '-') await fs.rm(out, { force: true });
  }
}

export interface RawVariant {
  name: string;
  pcs: number;
  chans: number;
  msgSize: number;
  maxMessageSize: number;
  /** libdatachannel's `mtu` (SCTP packet size); default 1200 */
  mtu?: number;
}

/** One raw node-datachannel transfer between two worker processes (see dc-worker.ts). */
export async function rawDataChannel(v: RawVariant, bytes: number): Promise<TransferRun> {
  const script = path.join(HERE, 'dc-worker.js');
  const spawnWorker = () => fork(script, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: ['--import', PROBE] });
  const sender = spawnWorker();
  const receiver = spawnWorker();
  let errText = '';
  sender.stderr!.on('data', (d) => (errText += d));
  receiver.stderr!.on('data', (d) => (errText += d));
  const next = (p: ReturnType<typeof fork>, t: string, timeoutMs = 30_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const fail = (why: string) => {
        clearTimeout(timer);
        p.off('message', on);
        p.off('exit', onExit);
        reject(new Error(`dc-worker: ${why} (${v.name}): ${errText}`));
      };
      const timer = setTimeout(() => fail(`no ${t} within ${timeoutMs} ms`), timeoutMs);
      const onExit = () => fail(`a worker exited before ${t}`);
      const on = (m: Record<string, unknown>) => {
        if (m.t !== t) return;
        clearTimeout(timer);
        p.off('message', on);
        p.off('exit', onExit);
        resolve(m);
      };
      p.on('message', on);
      p.once('exit', onExit);
    });
  try {
    const offers = next(sender, 'offers');
    sender.send({ t: 'offer', pcs: v.pcs, chans: v.chans, maxMessageSize: v.maxMessageSize, mtu: v.mtu });
    const answers = next(receiver, 'answers');
    receiver.send({ t: 'answer', sdps: (await offers).sdps, maxMessageSize: v.maxMessageSize, mtu: v.mtu, total: bytes });
    const open = next(sender, 'open');
    sender.send({ t: 'accept', sdps: (await answers).sdps });
    await open;
    // a transfer slower than 5 MB/s counts as stuck
    const done = next(receiver, 'done', 30_000 + bytes / 5_000);
    const t0 = now();
    receiver.send({ t: 'go' });
    sender.send({ t: 'go', total: bytes, msgSize: v.msgSize });
    const d = await done;
    const ms = now() - t0;
    const cpu = next(sender, 'cpu');
    sender.send({ t: 'cpu' });
    const senderCpu = (await cpu).cpuMs as number;
    return { ms, mbps: mbps(bytes, ms), senderCpuMs: senderCpu, receiverCpuMs: d.cpuMs as number };
  } finally {
    for (const p of [sender, receiver]) {
      if (p.connected) p.send({ t: 'close' });
    }
    await Promise.all(
      [sender, receiver].map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            const t = setTimeout(() => (p.kill('SIGKILL'), resolve()), 5_000);
            p.once('exit', () => (clearTimeout(t), resolve()));
          }),
      ),
    );
  }
}

export { log };
