/**
 * The CLI as a real process, its stdout kept as bytes (pipes carry binary
 * data), stdin fed from a file or closed.
 */
import { createReadStream } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { BIN } from './peers.js';

export interface CliProcess {
  child: ChildProcess;
  stdout: () => Buffer;
  stderr: () => string;
  exited: Promise<number | null>;
}

export function startCli(args: string[], stdin?: string): CliProcess {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d) => (err += d));
  if (stdin) createReadStream(stdin).pipe(child.stdin!);
  else child.stdin!.end();
  return {
    child,
    stdout: () => Buffer.concat(out),
    stderr: () => err,
    exited: new Promise((r) => child.on('close', (code) => r(code))),
  };
}
