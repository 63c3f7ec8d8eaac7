/**
 * The size limit in front of an unattended pipe's file. The file is a slow
 * writer here whose writes finish only when the test says so, like a busy
 * disk.
 */
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { cappedWriter } from '../../src/carriers/streams.js';

/** A writer that holds every write's callback until release() and keeps what it got. */
function slowFile(): Writable & { got: Buffer[]; release(): void } {
  const held: Array<() => void> = [];
  const got: Buffer[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      got.push(chunk);
      held.push(() => cb());
    },
  });
  return Object.assign(w, {
    got,
    release() {
      for (const cb of held.splice(0)) cb();
    },
  });
}

describe('a pipe into a file with a size limit', () => {
  it('takes what fits, then says it is over the limit and drops the rest', async () => {
    const file = slowFile();
    const into = cappedWriter(file, 10);
    into.sink.write(Buffer.alloc(6, 1));
    file.release();
    await new Promise((r) => setImmediate(r));
    into.sink.write(Buffer.alloc(6, 2));
    await new Promise((r) => setImmediate(r));
    expect(into.over.aborted).toBe(true);
    expect(Buffer.concat(file.got)).toEqual(Buffer.alloc(6, 1));
    into.close();
  });

  it('ends the file when the pipe ends', async () => {
    const file = slowFile();
    const into = cappedWriter(file, 100);
    into.sink.end(Buffer.from('all of it'));
    await new Promise((r) => setImmediate(r));
    file.release();
    await once(file, 'finish');
    expect(Buffer.concat(file.got).toString()).toBe('all of it');
    expect(into.over.aborted).toBe(false);
  });

  it('the connection drops while the file still holds a write and the end: closing leaves no error behind to take the agent down', async () => {
    const file = slowFile();
    const into = cappedWriter(file, 100);
    const errors: unknown[] = [];
    into.sink.on('error', (e) => errors.push(e));
    into.sink.write(Buffer.from('first'));
    file.release();
    await new Promise((r) => setImmediate(r));
    into.sink.write(Buffer.from('second'));
    into.sink.end();
    await new Promise((r) => setImmediate(r));
    // the pipe failed here (runPipe has let go of the stream): the agent closes the file
    into.close();
    file.release(); // the disk finishes the write it had; the end still waiting in the file fails
    await new Promise((r) => setTimeout(r, 20));
    expect(errors).toEqual([]);
    expect(file.destroyed && into.sink.destroyed).toBe(true);
  });
});
