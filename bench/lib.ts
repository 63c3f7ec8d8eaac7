/** Small shared helpers of the benchmark: statistics, formatting, timing, child processes. */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** bench/.build/bench: where the compiled bench scripts live. */
export const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repository (bench/.build/bench -> ../../..). */
export const REPO = path.resolve(HERE, '..', '..', '..');
/** The real CLI, built into dist/ by `npm run build`. */
export const CLI = path.join(REPO, 'bin', 'peerdial.js');
export const PROBE = pathToFileURL(path.join(HERE, 'probe.js')).href;

export const QUICK = process.env.BENCH_QUICK === '1';

export function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not ${JSON.stringify(v)}`);
  return n;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const now = () => performance.now();

export interface Summary {
  n: number;
  p50: number;
  p95: number;
  min: number;
  max: number;
}

/** Nearest-rank quantile of sorted values. */
function quantile(sorted: number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

/** Median (the mean of the middle two for an even count), nearest-rank p95, min, max. */
export function summarize(xs: number[]): Summary {
  if (xs.length === 0) return { n: 0, p50: NaN, p95: NaN, min: NaN, max: NaN };
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length / 2;
  const p50 = s.length % 2 ? s[Math.floor(mid)]! : (s[mid - 1]! + s[mid]!) / 2;
  return { n: s.length, p50, p95: quantile(s, 0.95), min: s[0]!, max: s[s.length - 1]! };
}

export function round(x: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function fmt(x: number | undefined, digits = 0): string {
  if (x === undefined || Number.isNaN(x)) return '-';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits, useGrouping: false });
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export function sizeText(bytes: number): string {
  return bytes >= GiB ? `${fmt(bytes / GiB, bytes % GiB ? 2 : 0)} GiB` : `${fmt(bytes / MiB)} MiB`;
}

/** CPU time and peak RSS of a child, written by probe.js when it exits. */
export interface ProbeReport {
  userMs: number;
  systemMs: number;
  cpuMs: number;
  maxRssKb: number;
}

export interface Child {
  child: ChildProcess;
  stderr: () => string;
  stdout: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** Resolves with the time (performance.now) at which stderr first matched. */
  waitStderr(re: RegExp, timeoutMs: number): Promise<{ at: number; match: RegExpExecArray }>;
  /** The probe's report; only after exit. */
  probe(): ProbeReport | undefined;
}

let probeCounter = 0;

/** Spawns `node [--import probe] script args` and records output, exit time and (with probe) CPU. */
export function startNode(script: string, args: string[], opts: { stdio?: StdioOptions; env?: NodeJS.ProcessEnv; probe?: boolean; ipc?: boolean } = {}): Child {
  const probeOut = opts.probe ? path.join(os.tmpdir(), `peerdial-bench-probe-${process.pid}-${++probeCounter}.json`) : undefined;
  const nodeArgs = [...(opts.probe ? ['--import', PROBE] : []), script, ...args];
  const stdio: StdioOptions = opts.stdio ?? ['ignore', 'pipe', 'pipe'];
  const child = spawn(process.execPath, nodeArgs, {
    stdio: opts.ipc ? [...(stdio as unknown[]).slice(0, 3), 'ipc'] as StdioOptions : stdio,
    env: { ...process.env, ...opts.env, ...(probeOut ? { BENCH_PROBE_OUT: probeOut } : {}) },
  });
  let err = '';
  let out = '';
  const watchers: { re: RegExp; done: (v: { at: number; match: RegExpExecArray }) => void }[] = [];
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    for (const w of [...watchers]) {
      const m = w.re.exec(err);
      if (m) {
        watchers.splice(watchers.indexOf(w), 1);
        w.done({ at: now(), match: m });
      }
    }
  });
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: now() })),
  );
  return {
    child,
    stderr: () => err,
    stdout: () => out,
    exited,
    waitStderr(re, timeoutMs) {
      const m = re.exec(err);
      if (m) return Promise.resolve({ at: now(), match: m });
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${re} on stderr of ${path.basename(script)} ${args.join(' ')}:\n${err}`)), timeoutMs);
        watchers.push({ re, done: (v) => (clearTimeout(t), resolve(v)) });
        exited.then(() => setTimeout(() => reject(new Error(`process ended before ${re} on stderr:\n${err}`)), 50));
      });
    },
    probe() {
      if (!probeOut) return undefined;
      try {
        return JSON.parse(readFileSync(probeOut, 'utf8')) as ProbeReport;
      } catch {
        return undefined;
      } finally {
        rmSync(probeOut, { force: true });
      }
    },
  };
}

/** Kills a child we started (by its own handle) if it is still running. */
export function stopChild(c: Child, sig: NodeJS.Signals = 'SIGKILL'): void {
  if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill(sig);
}

export function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}
