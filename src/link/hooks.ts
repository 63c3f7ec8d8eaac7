/**
 * Link hooks: the commands that bring a link up before a call or a mailbox
 * check and down after hang-up or idle time (`pon provider` / `poff`,
 * `nmcli con up ...`), the dial-up of the original invention.
 *
 * `runLinkHook` runs one command via /bin/sh in its own process group, with
 * a timeout that kills the whole group; a failure is a LINK_FAILED error
 * carrying the command's stderr. `Link` runs them in order for one process:
 * `up` and `down` never overlap, `up` runs only when the link is down, and
 * holders keep it up until the last one lets go.
 */
import { spawn } from 'node:child_process';
import type { Config, LinkSettings } from '../config/config.js';
import { PeerdialError } from '../errors.js';

export type LinkDirection = 'up' | 'down';

export interface LinkHookResult {
  /** False when no command is configured for this direction. */
  ran: boolean;
  command?: string;
  ms: number;
}

export interface LinkHookOptions {
  signal?: AbortSignal;
  /** Grace between SIGTERM and SIGKILL at the timeout (ms). */
  killGraceMs?: number;
}

/** Keeps the last `max` bytes of a stream's output. */
function tailOf(chunks: Buffer[], max = 4096): string {
  const all = Buffer.concat(chunks);
  const text = (all.length > max ? all.subarray(all.length - max) : all).toString('utf8').trim();
  return text;
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Runs `link.up` or `link.down` of `cfg` (nothing when not configured).
 * Rejects with LINK_FAILED (exit status or timeout, stderr included) or
 * ABORTED; the command's process group never outlives the call.
 */
export async function runLinkHook(direction: LinkDirection, cfg: Pick<Config, 'link' | 'file'>, opts: LinkHookOptions = {}): Promise<LinkHookResult> {
  const command = cfg.link?.[direction];
  const started = Date.now();
  if (!command) return { ran: false, ms: 0 };
  const timeoutMs = (cfg.link?.timeoutSeconds ?? 60) * 1000;
  const key = `link.${direction}`;
  if (opts.signal?.aborted) throw new PeerdialError('ABORTED', `${key} was not run: cancelled`);
  return new Promise<LinkHookResult>((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    const stderr: Buffer[] = [];
    child.stderr!.on('data', (d: Buffer) => {
      stderr.push(d);
      if (stderr.length > 64) stderr.splice(0, stderr.length - 64);
    });
    let why: 'timeout' | 'aborted' | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const stop = (reason: 'timeout' | 'aborted') => {
      why ??= reason;
      killGroup(child.pid, 'SIGTERM');
      killTimer ??= setTimeout(() => killGroup(child.pid, 'SIGKILL'), opts.killGraceMs ?? 2000);
    };
    const timer = setTimeout(() => stop('timeout'), timeoutMs);
    const onAbort = () => stop('aborted');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    child.once('error', (err) => {
      done();
      reject(new PeerdialError('LINK_FAILED', `${key} could not be started: ${err.message}`, { hint: `Check /bin/sh and ${key} in ${cfg.file}.`, cause: err }));
    });
    child.once('close', (code, signal) => {
      done();
      // Whatever the shell left behind in its group goes with it.
      killGroup(child.pid, 'SIGKILL');
      const err = tailOf(stderr);
      const said = err ? `: ${err}` : ' (no error output)';
      const ms = Date.now() - started;
      if (why === 'aborted') return reject(new PeerdialError('ABORTED', `${key} (${command}) was stopped: cancelled`));
      if (why === 'timeout') {
        return reject(
          new PeerdialError('LINK_FAILED', `${key} (${command}) did not finish within ${timeoutMs / 1000} s and was killed${said}`, {
            hint: `Run the command by hand to see where it hangs, or raise link.timeout_seconds in ${cfg.file}.`,
          }),
        );
      }
      if (code !== 0) {
        return reject(
          new PeerdialError('LINK_FAILED', `${key} (${command}) failed with ${code === null ? `signal ${signal}` : `exit status ${code}`}${said}`, {
            hint: `Bring the link up by hand to see why (${command}), or fix ${key} in ${cfg.file}.`,
          }),
        );
      }
      resolve({ ran: true, command, ms });
    });
  });
}

export type LinkEvent =
  | { type: 'link-up'; command?: string; ms: number }
  | { type: 'link-down'; command?: string; ms: number }
  | { type: 'link-failed'; direction: LinkDirection; error: Error };

/**
 * The link of one process: hooks run one after another in the order asked
 * for; `up` only when down, `down` only when up and nobody holds it.
 */
export class Link {
  private state: 'down' | 'up' = 'down';
  private chain: Promise<unknown> = Promise.resolve();
  private holders = 0;
  private downTimer?: NodeJS.Timeout;

  constructor(
    private readonly cfg: Pick<Config, 'link' | 'file'>,
    private readonly onEvent?: (e: LinkEvent) => void,
  ) {}

  get settings(): LinkSettings | undefined {
    return this.cfg.link;
  }

  /** True when [link] has an `up` or `down` command. */
  get configured(): boolean {
    return !!(this.cfg.link?.up || this.cfg.link?.down);
  }

  get isUp(): boolean {
    return this.state === 'up';
  }

  private queue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async run(direction: LinkDirection, signal?: AbortSignal): Promise<void> {
    try {
      const r = await runLinkHook(direction, this.cfg, signal ? { signal } : {});
      this.state = direction;
      this.onEvent?.({ type: direction === 'up' ? 'link-up' : 'link-down', ...(r.command ? { command: r.command } : {}), ms: r.ms });
    } catch (err) {
      this.onEvent?.({ type: 'link-failed', direction, error: err as Error });
      throw err;
    }
  }

  /** Brings the link up unless it is up. */
  up(opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.cancelDown();
    return this.queue(async () => {
      if (this.state !== 'up') await this.run('up', opts.signal);
    });
  }

  /** Brings the link down unless it is down or somebody holds it. */
  down(): Promise<void> {
    this.cancelDown();
    return this.queue(async () => {
      if (this.state === 'up' && this.holders === 0) await this.run('down');
    });
  }

  /** Up, and kept up until the returned release is called. */
  async hold(opts: { signal?: AbortSignal } = {}): Promise<() => void> {
    this.holders++;
    try {
      await this.up(opts);
    } catch (err) {
      this.holders--;
      throw err;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holders--;
    };
  }

  /** Brings the link down after `ms` unless it is used again before. */
  downAfter(ms: number): void {
    this.cancelDown();
    if (ms <= 0) {
      void this.down().catch(() => undefined);
      return;
    }
    this.downTimer = setTimeout(() => void this.down().catch(() => undefined), ms);
    this.downTimer.unref();
  }

  private cancelDown(): void {
    if (this.downTimer) clearTimeout(this.downTimer);
    this.downTimer = undefined;
  }
}
