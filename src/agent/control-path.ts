/**
 * Where the agent's control socket lives. A Unix socket's name must fit in
 * `sun_path` (108 bytes with its NUL on Linux, 104 on macOS); a longer name
 * is cut short by the kernel without an error, the socket lands somewhere
 * else and nothing can find it (a HOME of ~47 characters was enough). So:
 *
 *   - the natural place, `STATE_DIR/accounts/ADDR/agent.sock`, when it fits;
 *   - else a short name, `HASH.sock`, HASH being the first 16 hex digits of
 *     SHA-256 of the account's state dir (so two accounts, or two config
 *     trees, never share one), in a directory of this user's only:
 *       1. `$XDG_RUNTIME_DIR/peerdial/` (the per-user runtime dir, 0700),
 *       2. `/run/user/UID/peerdial/` on Linux (the same dir, for a command
 *          run where XDG_RUNTIME_DIR is not set: a shell under su, cron),
 *       3. `TMPDIR/peerdial-UID/`, created 0700 and refused unless it is a
 *          real directory owned by this user that nobody else may enter.
 *
 * The agent serves on the first of these it can use; every client
 * (`status`, `doctor`, `call`, agentOrAlone) tries them in the same order.
 * The choice (controlSocketCandidates) is pure; preparing the directory is
 * the I/O part (prepareSocketDir).
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PeerdialError } from '../errors.js';

/** Longest socket path, in bytes, that `sun_path` holds with its NUL. */
export function maxSocketPathBytes(platform: NodeJS.Platform = process.platform): number {
  return platform === 'linux' ? 107 : 103;
}

export interface SocketPlace {
  /** The socket's path. */
  file: string;
  /** The directory to create and check before serving there; absent for the natural place (the state dir). */
  dir?: string;
  /** How the directory is to be made: inside a runtime dir that exists, or a per-user dir in the temp dir. */
  kind: 'natural' | 'runtime' | 'temp';
}

export interface PathContext {
  env?: NodeJS.ProcessEnv;
  uid?: number;
  tmpdir?: string;
  platform?: NodeJS.Platform;
}

/** The name of the short socket of an account: 16 hex digits of SHA-256 of its state dir. */
export function shortSocketName(stateDir: string): string {
  return `${createHash('sha256').update(path.resolve(stateDir)).digest('hex').slice(0, 16)}.sock`;
}

/**
 * The places, in order, where the control socket of the account with this
 * state dir may be: only the natural one when it fits, else the short ones
 * whose paths fit. May be empty (every candidate too long).
 */
export function controlSocketCandidates(stateDir: string, ctx: PathContext = {}): SocketPlace[] {
  const env = ctx.env ?? process.env;
  const platform = ctx.platform ?? process.platform;
  const uid = ctx.uid ?? process.getuid?.() ?? 0;
  const max = maxSocketPathBytes(platform);
  const fits = (p: string) => Buffer.byteLength(p) <= max;
  const natural = path.join(stateDir, 'agent.sock');
  if (fits(natural)) return [{ file: natural, kind: 'natural' }];
  const name = shortSocketName(stateDir);
  const places: SocketPlace[] = [];
  const runtimeDirs = [env.XDG_RUNTIME_DIR, platform === 'linux' ? `/run/user/${uid}` : undefined];
  for (const r of runtimeDirs) {
    if (!r || !path.isAbsolute(r)) continue;
    const dir = path.join(r, 'peerdial');
    places.push({ file: path.join(dir, name), dir, kind: 'runtime' });
  }
  const tmp = ctx.tmpdir ?? os.tmpdir();
  const dir = path.join(tmp, `peerdial-${uid}`);
  places.push({ file: path.join(dir, name), dir, kind: 'temp' });
  const seen = new Set<string>();
  return places.filter((p) => fits(p.file) && !seen.has(p.file) && (seen.add(p.file), true));
}

/**
 * Makes the directory of a short socket place ready: created 0700 when
 * missing; refused (PeerdialError CONTROL_SOCKET_FAILED) unless it is a real
 * directory (not a link) owned by this user and closed to everybody else.
 * A runtime place needs its parent (the runtime dir) to exist already.
 */
export async function prepareSocketDir(place: SocketPlace, uid: number = process.getuid?.() ?? 0): Promise<void> {
  if (!place.dir) return;
  if (place.kind === 'runtime') {
    const parent = await fs.stat(path.dirname(place.dir)).catch(() => undefined);
    if (!parent?.isDirectory()) throw new PeerdialError('CONTROL_SOCKET_FAILED', `The runtime directory ${path.dirname(place.dir)} does not exist.`);
  }
  try {
    await fs.mkdir(place.dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new PeerdialError('CONTROL_SOCKET_FAILED', `Cannot create ${place.dir} for the agent's control socket: ${(err as Error).message}.`, { cause: err });
    }
  }
  const st = await fs.lstat(place.dir);
  const problem = !st.isDirectory()
    ? 'it is not a directory'
    : st.uid !== uid
      ? `it belongs to uid ${st.uid}, not to you (uid ${uid})`
      : (st.mode & 0o077) !== 0
        ? `others may enter it (mode ${(st.mode & 0o777).toString(8)})`
        : undefined;
  if (problem) {
    throw new PeerdialError('CONTROL_SOCKET_FAILED', `Will not put the agent's control socket in ${place.dir}: ${problem}.`, {
      hint: `Remove ${place.dir} (or make it yours, mode 0700), or give peerdial a shorter state directory (state_dir in the config).`,
    });
  }
}
