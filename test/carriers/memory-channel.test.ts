import { describe, expect, it } from 'vitest';
import { channelPair } from '../harness/memory-channel.js';
import { isPeerdialError } from '../../src/errors.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('in-memory channel pair', () => {
  it('delivers in order, asynchronously, as Buffer or string', async () => {
    const [a, b] = channelPair();
    const got: Array<Buffer | string> = [];
    b.onMessage((m) => got.push(m));
    void a.send(Uint8Array.from([1, 2, 3]));
    void a.send('hello');
    expect(got).toEqual([]); // not synchronous
    await tick();
    await tick();
    await tick();
    expect(got).toEqual([Buffer.from([1, 2, 3]), 'hello']);
  });

  it('keeps messages that arrive before anyone listens', async () => {
    const [a, b] = channelPair();
    await a.send('early');
    await tick();
    await tick();
    const got: Array<Buffer | string> = [];
    b.onMessage((m) => got.push(m));
    await tick();
    expect(got).toEqual(['early']);
  });

  it('send() waits above the high-water mark until the peer has taken enough', async () => {
    const [a, b] = channelPair({ highWater: 1000, lowWater: 200 });
    b.onMessage(() => undefined);
    let resolved = false;
    await a.send(new Uint8Array(600));
    const second = a.send(new Uint8Array(600)).then(() => (resolved = true));
    await Promise.resolve();
    expect(resolved).toBe(false);
    expect((a as unknown as { bufferedAmount: number }).bufferedAmount).toBe(1200);
    await second;
    expect((a as unknown as { bufferedAmount: number }).bufferedAmount).toBeLessThanOrEqual(200);
  });

  it('refuses messages above maxMessageSize, and sends on a closed channel', async () => {
    const [a, b] = channelPair({ maxMessageSize: 10 });
    await expect(a.send(new Uint8Array(11))).rejects.toSatisfy((e) => isPeerdialError(e, 'TRANSFER_FAILED'));
    a.close();
    await expect(a.send('x')).rejects.toSatisfy((e) => isPeerdialError(e, 'SESSION_CLOSED'));
    expect(b.maxMessageSize).toBe(10);
  });

  it('close delivers what was already sent, then both sides see the close', async () => {
    const [a, b] = channelPair();
    const events: string[] = [];
    b.onMessage((m) => events.push(`b got ${String(m)}`));
    b.onClose(() => events.push('b closed'));
    a.onClose(() => events.push('a closed'));
    void a.send('one');
    void a.send('two');
    a.close();
    expect(a.isOpen).toBe(false);
    await new Promise((r) => setTimeout(r, 5));
    expect(events).toEqual(['b got one', 'b got two', 'b closed', 'a closed']);
    expect(b.isOpen).toBe(false);
    // A listener added after the close still hears of it.
    const late = new Promise<void>((resolve) => b.onClose(resolve));
    await expect(late).resolves.toBeUndefined();
  });
});
