import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { channelPair } from '../harness/memory-channel.js';
import { runPipe } from '../../src/carriers/pipe.js';
import { isPeerdialError } from '../../src/errors.js';

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A readable that yields `data` in uneven chunks; the last chunk waits for `beforeLast`. */
function source(data: Buffer, chunk = 100_003, beforeLast?: Promise<unknown>): Readable {
  return Readable.from(
    (async function* () {
      for (let off = 0; off < data.length; off += chunk) {
        if (off + chunk >= data.length && beforeLast) await beforeLast;
        yield data.subarray(off, off + chunk);
      }
    })(),
  );
}

/** A writable that hashes what it gets and remembers when it was ended. */
function sink(): Writable & { digest: () => string; bytes: () => number; endedAt: () => number | undefined } {
  const hash = createHash('sha256');
  let bytes = 0;
  let endedAt: number | undefined;
  const w = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      setImmediate(cb); // a slow-ish consumer
    },
    final(cb) {
      endedAt = performance.now();
      cb();
    },
  });
  return Object.assign(w, { digest: () => hash.digest('hex'), bytes: () => bytes, endedAt: () => endedAt });
}

describe('pipe', () => {
  it('alice and bob pipe 8 MiB of random bytes each way; alice finishes sending first and still receives all of bob', async () => {
    const [a, b] = channelPair({ maxMessageSize: 16 * 1024, highWater: 256 * 1024 });
    const aliceData = randomBytes(8 * 1024 * 1024);
    const bobData = randomBytes(8 * 1024 * 1024);
    const aliceOut = sink();
    const bobOut = sink();
    const progress: number[] = [];

    const [alice, bob] = await Promise.all([
      runPipe(a, source(aliceData), aliceOut, { onProgress: (p) => progress.push(p.sent) }),
      // Bob's last chunk is only read once alice's direction has fully ended at bob:
      // without a true half-close this would wait forever.
      runPipe(b, source(bobData, 1024 * 1024, once(bobOut, 'finish')), bobOut),
    ]);

    expect(alice).toEqual({ sent: aliceData.length, received: bobData.length });
    expect(bob).toEqual({ sent: bobData.length, received: aliceData.length });
    expect(bobOut.digest()).toBe(sha256(aliceData));
    expect(aliceOut.digest()).toBe(sha256(bobData));
    expect(bobOut.endedAt()!).toBeLessThan(aliceOut.endedAt()!);
    expect(progress.at(-1)).toBe(aliceData.length);
  });

  it('alice, done sending, returns only once bob holds all of it: she may hang up then without cutting off what is still on its way', async () => {
    const [a, b] = channelPair({ maxMessageSize: 16 * 1024, highWater: 256 * 1024 });
    const aliceData = randomBytes(4 * 1024 * 1024);
    const bobOut = sink(); // slow: bob is still writing long after alice's last frame left
    let aliceReturnedAt = 0;
    const alice = runPipe(a, source(aliceData), sink()).then((r) => {
      aliceReturnedAt = performance.now();
      a.close(); // as the CLI does: hang up as soon as the pipe is done
      return r;
    });
    // bob has nothing to send: his EOS reaches alice at once
    const bob = runPipe(b, source(Buffer.alloc(0)), bobOut);
    expect(await alice).toEqual({ sent: aliceData.length, received: 0 });
    expect(await bob).toEqual({ sent: 0, received: aliceData.length });
    expect(bobOut.digest()).toBe(sha256(aliceData));
    expect(bobOut.endedAt()!).toBeLessThanOrEqual(aliceReturnedAt);
  });

  it('a peer of an older version never says done: its close after the end of the pipe ends ours', async () => {
    const [a, b] = channelPair();
    const out = sink();
    const pipe = runPipe(a, source(Buffer.from('hello')), out);
    // the older peer: reads until our EOS, sends its own, closes
    const seen: string[] = [];
    b.onMessage((m) => seen.push(typeof m === 'string' ? m : m.subarray(0, 1).toString('hex')));
    await b.send(Buffer.from([0x02]));
    await new Promise<void>((r) => {
      const t = setInterval(() => {
        if (seen.length >= 2) (clearInterval(t), r());
      }, 5);
    });
    b.close();
    expect(await pipe).toEqual({ sent: 5, received: 0 });
  });

  it('an empty input sends only the end of stream', async () => {
    const [a, b] = channelPair();
    const out = sink();
    const [r1, r2] = await Promise.all([runPipe(a, source(Buffer.alloc(0)), sink()), runPipe(b, source(Buffer.from('hi')), out)]);
    expect(r1).toEqual({ sent: 0, received: 2 });
    expect(r2).toEqual({ sent: 2, received: 0 });
    expect(out.bytes()).toBe(0);
  });

  it('the peer hangs up mid-stream: the pipe fails with SESSION_CLOSED', async () => {
    const [a, b] = channelPair();
    const never = new PassThrough();
    const pipe = runPipe(a, never, sink());
    setTimeout(() => b.close(), 10);
    await expect(pipe).rejects.toSatisfy((e) => isPeerdialError(e, 'SESSION_CLOSED'));
  });

  it('a cancelled pipe tells the peer, who fails with TRANSFER_FAILED', async () => {
    const [a, b] = channelPair();
    const ac = new AbortController();
    const left = runPipe(a, new PassThrough(), sink(), { signal: ac.signal });
    const right = runPipe(b, new PassThrough(), sink());
    setTimeout(() => ac.abort(), 10);
    await expect(left).rejects.toSatisfy((e) => isPeerdialError(e, 'ABORTED'));
    await expect(right).rejects.toSatisfy((e) => isPeerdialError(e, 'TRANSFER_FAILED') && /cancelled/.test((e as Error).message));
  });
});
