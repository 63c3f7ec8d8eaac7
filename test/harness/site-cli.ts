/**
 * A CLI process running in a site of a network made by netns.ts: its
 * output gathered as text, lines typed into its stdin.
 */
import type { ChildProcess } from 'node:child_process';

export class SiteCli {
  out = '';
  err = '';
  exit: number | null | undefined;
  readonly exited: Promise<void>;
  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => (this.out += d.toString('utf8')));
    child.stderr!.on('data', (d: Buffer) => (this.err += d.toString('utf8')));
    child.stdin?.on('error', () => undefined);
    this.exited = new Promise((r) => child.once('exit', (code) => ((this.exit = code), r())));
  }
  type(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }
  text(): string {
    return `stdout:\n${this.out}\nstderr:\n${this.err}`;
  }
}
