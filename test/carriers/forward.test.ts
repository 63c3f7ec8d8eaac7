import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FORWARD_PROTOCOL } from '../../src/carriers/frames.js';
import { allowTargets, forwardLocal, parseForwardSpec, serveForward, type ForwardConnectionEnd, type LocalForward, type ServedForward } from '../../src/carriers/forward.js';
import { channelPair } from '../harness/memory-channel.js';
import { isPeerdialError } from '../../src/errors.js';

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

let echo: Server;
let echoPort: number;
let forward: LocalForward | undefined;

beforeEach(async () => {
  // A real TCP echo server that honours half-close: it ends its side once the client has ended.
  echo = createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  echoPort = (echo.address() as AddressInfo).port;
});
afterEach(async () => {
  await forward?.close();
  forward = undefined;
  echo.close();
});

/** The session between the two machines: every openStream() makes a channel pair, the far end is served by bob. */
function session(allow: (host: string, port: number) => boolean) {
  const served: Array<PromiseSettledResult<ServedForward>> = [];
  const protocols: string[] = [];
  const pending: Array<Promise<unknown>> = [];
  return {
    served,
    protocols,
    settled: () => Promise.all(pending),
    openStream: async (info: { protocol: string; label: string }) => {
      protocols.push(info.protocol);
      const [alice, bob] = channelPair({ maxMessageSize: 16 * 1024, protocol: info.protocol });
      pending.push(
        serveForward(bob, { allow }).then(
          (value) => served.push({ status: 'fulfilled', value }),
          (reason: unknown) => served.push({ status: 'rejected', reason }),
        ),
      );
      return alice;
    },
  };
}

/** A TCP client: sends `data`, half-closes, and collects everything until the server ends. */
async function client(port: number, data: Buffer): Promise<{ reply: Buffer; ended: 'end' | 'error' }> {
  const socket: Socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'connect');
  socket.end(data);
  const ended = await new Promise<'end' | 'error'>((resolve) => {
    socket.on('end', () => resolve('end'));
    socket.on('error', () => resolve('error'));
    socket.on('close', () => resolve('error'));
  });
  socket.destroy();
  return { reply: Buffer.concat(chunks), ended };
}

describe('port forwarding', () => {
  it('alice reaches the echo server on bob’s machine through 127.0.0.1:<port>; two connections at once, 1 MiB each, half-closed', async () => {
    const net = session((host, port) => host === '127.0.0.1' && port === echoPort);
    const ends: ForwardConnectionEnd[] = [];
    forward = await forwardLocal({ listenPort: 0, targetHost: '127.0.0.1', targetPort: echoPort, openStream: net.openStream, onConnectionEnd: (e) => ends.push(e) });
    const one = randomBytes(1024 * 1024);
    const two = randomBytes(1024 * 1024 + 1);

    const [r1, r2] = await Promise.all([client(forward.port, one), client(forward.port, two)]);

    expect(r1.ended).toBe('end');
    expect(sha256(r1.reply)).toBe(sha256(one));
    expect(sha256(r2.reply)).toBe(sha256(two));
    await net.settled();
    expect(net.protocols).toEqual([FORWARD_PROTOCOL, FORWARD_PROTOCOL]);
    expect(net.served.map((s) => s.status === 'fulfilled' && s.value.sent + s.value.received).sort()).toEqual([2 * one.length, 2 * two.length].sort());
    await vi.waitFor(() => expect(ends).toHaveLength(2));
    expect(ends.every((e) => e.error === undefined)).toBe(true);
  });

  it('bob does not allow the target: alice’s client is cut off, nothing is connected, both sides say why', async () => {
    let echoConnections = 0;
    echo.on('connection', () => echoConnections++);
    const net = session(allowTargets(['localhost:22']));
    const ends: ForwardConnectionEnd[] = [];
    forward = await forwardLocal({ listenPort: 0, targetHost: '127.0.0.1', targetPort: echoPort, openStream: net.openStream, onConnectionEnd: (e) => ends.push(e) });

    const r = await client(forward.port, Buffer.from('hello?'));

    expect(r.reply.length).toBe(0);
    await net.settled();
    const served = net.served[0]!;
    expect(served.status === 'rejected' && isPeerdialError(served.reason, 'TRANSFER_FAILED') && /not allowed/.test((served.reason as Error).message)).toBe(true);
    await vi.waitFor(() => expect(ends).toHaveLength(1));
    expect(ends[0]!.error?.code).toBe('TRANSFER_FAILED');
    expect(ends[0]!.error?.message).toMatch(/refused.*not allowed/);
    expect(echoConnections).toBe(0);
  });

  it('the allowed target is down: bob answers TCP_FAILED, alice’s client is cut off', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const deadPort = (closed.address() as AddressInfo).port;
    closed.close();
    await once(closed, 'close');
    const net = session(() => true);
    forward = await forwardLocal({ listenPort: 0, targetHost: '127.0.0.1', targetPort: deadPort, openStream: net.openStream });

    const r = await client(forward.port, Buffer.from('anyone?'));

    expect(r.reply.length).toBe(0);
    await net.settled();
    const served = net.served[0]!;
    expect(served.status === 'rejected' && isPeerdialError(served.reason, 'TCP_FAILED')).toBe(true);
  });

  it('a busy local port is reported as TCP_FAILED', async () => {
    await expect(forwardLocal({ listenPort: echoPort, targetHost: 'localhost', targetPort: 80, openStream: () => Promise.reject(new Error('unused')) })).rejects.toSatisfy(
      (e) => isPeerdialError(e, 'TCP_FAILED'),
    );
  });
});

describe('forward spec', () => {
  it.each([
    ['8080:localhost:80', { listenPort: 8080, host: 'localhost', port: 80 }],
    ['2222:10.0.0.5:22', { listenPort: 2222, host: '10.0.0.5', port: 22 }],
    ['8080:[::1]:80', { listenPort: 8080, host: '::1', port: 80 }],
    ['127.0.0.1:8080:db.internal:5432', { listenHost: '127.0.0.1', listenPort: 8080, host: 'db.internal', port: 5432 }],
  ])('%s', (spec, expected) => {
    expect(parseForwardSpec(spec)).toEqual(expected);
  });

  it.each([
    ['8080', /not a forward spec/],
    ['8080:localhost', /not a forward spec/],
    ['x:localhost:80', /local port 'x'/],
    ['8080:localhost:99999', /target port '99999'/],
    ['0:localhost:80', /local port '0'/],
    ['8080::80', /'' in '8080::80' is not a host/],
    ['8080:bad_host!:80', /not a host/],
    ['8080:[::1:80', /not a forward spec/],
  ])('%s is refused with a clear USAGE error', (spec, message) => {
    expect(() => parseForwardSpec(spec)).toThrow(message);
    try {
      parseForwardSpec(spec);
    } catch (err) {
      expect(isPeerdialError(err, 'USAGE')).toBe(true);
    }
  });

  it('allowTargets matches host:port and host:*', () => {
    const allow = allowTargets(['localhost:22', '127.0.0.1:*', '[::1]:8080']);
    expect([allow('localhost', 22), allow('LOCALHOST', 22), allow('localhost', 23), allow('127.0.0.1', 5), allow('::1', 8080), allow('::1', 80)]).toEqual([
      true, true, false, true, true, false,
    ]);
  });
});
