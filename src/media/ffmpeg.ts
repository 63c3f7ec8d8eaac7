/**
 * Running ffmpeg and ffplay (Debian package `ffmpeg`, which also brings
 * ffplay): checking that a binary is there, and one child process with its
 * stderr tail, its exit and a gentle stop. What the children are asked to do
 * is in source.ts (capture and encoding into RTP) and sink.ts (recording and
 * playback of a session's received RTP).
 *
 * Key frames: the ffmpeg CLI cannot be told to make one when a viewer sends
 * a PLI, so sources use a short key-frame interval instead (source.ts).
 *
 * A missing binary is PeerdialError('MISSING_PACKAGE') with the apt hint.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { PeerdialError } from '../errors.js';

const APT_HINT = 'install it with: sudo apt install ffmpeg (the Debian package brings ffmpeg, ffprobe and ffplay)';

const checked = new Map<string, Promise<void>>();

/**
 * Check that a binary runs (`<path> -version`); PeerdialError('MISSING_PACKAGE')
 * when it is not installed. Cached per path.
 */
export function checkBinary(path: string, name = 'ffmpeg'): Promise<void> {
  let p = checked.get(path);
  if (!p) {
    p = new Promise<void>((resolve, reject) => {
      let child: ChildProcess;
      try {
        child = spawn(path, ['-hide_banner', '-version'], { stdio: 'ignore' });
      } catch (err) {
        reject(missing(path, name, err));
        return;
      }
      child.once('error', (err) => reject(missing(path, name, err)));
      child.once('exit', (code) => {
        if (code === 0) resolve();
        else reject(missing(path, name, new Error(`${path} -version exited with ${code}`)));
      });
    });
    checked.set(path, p);
    p.catch(() => checked.delete(path));
  }
  return p;
}

function missing(path: string, name: string, cause: unknown): PeerdialError {
  return new PeerdialError('MISSING_PACKAGE', `${name} is needed for audio and video but ${path} could not be run`, {
    hint: APT_HINT,
    cause,
  });
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines ffmpeg wrote to stderr. */
  stderr: string;
}

/** One ffmpeg/ffplay child: stderr tail kept, exit awaited, stopped gently (SIGTERM, then SIGKILL). */
export class FfmpegProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<ExitInfo>;
  #stderr = '';
  #running = true;

  /** `outputFd`: an open file the child gets as its fd 3 (written as file:/dev/fd/3). */
  constructor(path: string, args: string[], outputFd?: number) {
    this.child = spawn(path, args, { stdio: outputFd === undefined ? ['ignore', 'ignore', 'pipe'] : ['ignore', 'ignore', 'pipe', outputFd] });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (d: string) => {
      this.#stderr = (this.#stderr + d).slice(-4000);
    });
    this.exited = new Promise<ExitInfo>((resolve) => {
      this.child.once('error', (err) => {
        this.#running = false;
        resolve({ code: null, signal: null, stderr: `${this.#stderr}${String(err)}` });
      });
      this.child.once('exit', (code, signal) => {
        this.#running = false;
        resolve({ code, signal, stderr: this.#stderr.trim() });
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get isRunning(): boolean {
    return this.#running;
  }

  /** SIGTERM (ffmpeg finishes its output file), SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<ExitInfo> {
    if (this.#running) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      const info = await this.exited;
      clearTimeout(timer);
      return info;
    }
    return this.exited;
  }
}

/** The last line ffmpeg wrote (its error, as a rule). */
export function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}
