/**
 * TCP port forwarding over a session, like `ssh -L`.
 *
 * Local side: forwardLocal() listens on a local port; every accepted TCP
 * connection gets its own channel (protocol 'peerdial-forward') whose first
 * frame names the target {t:'connect', host, port}. Remote side:
 * serveForward() connects to the target only if `allow` says so and answers
 * {t:'connected'}, or sends an ERROR frame and closes. Then bytes flow both
 * ways with half-close (see pipe.ts).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { PeerdialError, isPeerdialError } from '../errors.js';
import type { Channel } from '../session/types.js';
import {
  FORWARD_PROTOCOL,
  decodeFrame,
  encodeControl,
  encodeError,
  isHostName,
  isPort,
  parseForwardControl,
} from './frames.js';
import { abortError, inboxOf } from './channel-inbox.js';
import { runPipe, type PipeProgress } from './pipe.js';

export interface ForwardSpec {
  /** Local address to listen on; default 127.0.0.1. */
  listenHost?: string;
  listenPort: number;
  /** Target as seen from the peer. IPv6 without brackets. */
  host: string;
  port: number;
}

/**
 * Parses `LPORT:HOST:PORT` or `LHOST:LPORT:HOST:PORT` (IPv6 hosts in
 * brackets, e.g. `8080:[::1]:80`). Throws PeerdialError('USAGE').
 */
export function parseForwardSpec(spec: string): ForwardSpec {
  const example = 'Write it as LPORT:HOST:PORT, e.g. 8080:localhost:80 (or 127.0.0.1:8080:localhost:80).';
  const parts = splitSpec(spec);
  if (parts === undefined || (parts.length !== 3 && parts.length !== 4)) {
    throw new PeerdialError('USAGE', `'${spec}' is not a forward spec`, { hint: example });
  }
  const [listenHost, lport, host, port] = parts.length === 4 ? parts : [undefined, ...parts];
  const listenPort = parsePort(lport ?? '', 'local port', spec);
  const targetPort = parsePort(port ?? '', 'target port', spec);
  if (host === undefined || !isHostName(host)) {
    throw new PeerdialError('USAGE', `'${host ?? ''}' in '${spec}' is not a host name or IP address`, { hint: example });
  }
  if (listenHost !== undefined && !isHostName(listenHost)) {
    throw new PeerdialError('USAGE', `'${listenHost}' in '${spec}' is not a local address to listen on`, { hint: example });
  }
  return listenHost === undefined ? { listenPort, host, port: targetPort } : { listenHost, listenPort, host, port: targetPort };
}

function parsePort(text: string, what: string, spec: string): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!isPort(n)) throw new PeerdialError('USAGE', `${what} '${text}' in '${spec}' is not a number from 1 to 65535`);
  return n;
}

/** Splits at ':' outside brackets; brackets are removed. Undefined if brackets do not match. */
function splitSpec(spec: string): string[] | undefined {
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    let part: string;
    if (spec[i] === '[') {
      const close = spec.indexOf(']', i);
      if (close < 0) return undefined;
      part = spec.slice(i + 1, close);
      i = close + 1;
      if (i < spec.length && spec[i] !== ':') return undefined;
    } else {
      const colon = spec.indexOf(':', i);
      part = spec.slice(i, colon < 0 ? spec.length : colon);
      if (part.includes('[') || part.includes(']')) return undefined;
      i = colon < 0 ? spec.length : colon;
    }
    parts.push(part);
    if (i >= spec.length) return parts;
    i++; // skip ':'
  }
}

/** An allow rule from `HOST:PORT` or `HOST:*` strings (IPv6 in brackets); host names compare case-insensitively. */
export function allowTargets(targets: readonly string[]): (host: string, port: number) => boolean {
  const rules = targets.map((t) => {
    const parts = splitSpec(t);
    if (parts?.length !== 2 || !isHostName(parts[0] ?? '') || (parts[1] !== '*' && !isPort(Number(parts[1])))) {
      throw new PeerdialError('CONFIG_INVALID', `'${t}' is not an allowed forward target`, { hint: 'Write HOST:PORT or HOST:*, e.g. localhost:22.' });
    }
    return { host: (parts[0] ?? '').toLowerCase(), port: parts[1] === '*' ? undefined : Number(parts[1]) };
  });
  return (host, port) => rules.some((r) => r.host === host.toLowerCase() && (r.port === undefined || r.port === port));
}

// ---------------------------------------------------------------------------
// Local side

export interface ForwardConnectionEnd {
  /** Address:port of the local TCP client. */
  from: string;
  sent: number;
  received: number;
  /** Set when the connection failed (refused by the peer, target unreachable, ...). */
  error?: PeerdialError;
}

export interface ForwardLocalOptions {
  listenPort: number;
  listenHost?: string;
  /** Target as seen from the peer. */
  targetHost: string;
  targetPort: number;
  /** Opens a new channel over the session for one TCP connection. */
  openStream: (info: { protocol: string; label: string }) => Promise<Channel>;
  signal?: AbortSignal;
  onConnection?: (from: string) => void;
  onConnectionEnd?: (end: ForwardConnectionEnd) => void;
}

export interface LocalForward {
  readonly host: string;
  /** The port actually listened on (useful with listenPort 0). */
  readonly port: number;
  /** Open TCP connections. */
  readonly connections: number;
  /** Stops listening and drops every open connection. */
  close(): Promise<void>;
}

export async function forwardLocal(opts: ForwardLocalOptions): Promise<LocalForward> {
  const listenHost = opts.listenHost ?? '127.0.0.1';
  const { targetHost, targetPort } = opts;
  if (!isHostName(targetHost) || !isPort(targetPort)) {
    throw new PeerdialError('USAGE', `'${targetHost}:${targetPort}' is not a forward target`);
  }
  const stop = new AbortController();
  const sockets = new Set<Socket>();
  const channels = new Set<Channel>();

  const handle = async (socket: Socket): Promise<void> => {
    const from = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    sockets.add(socket);
    socket.on('error', () => undefined); // read back by the pipe
    opts.onConnection?.(from);
    let channel: Channel | undefined;
    try {
      channel = await opts.openStream({ protocol: FORWARD_PROTOCOL, label: `forward ${targetHost}:${targetPort}` });
      channels.add(channel);
      const inbox = inboxOf(channel);
      await channel.send(encodeControl({ t: 'connect', host: targetHost, port: targetPort }));
      const raw = await inbox.next(stop.signal);
      if (raw === null) throw new PeerdialError('SESSION_CLOSED', `the peer closed the forward to ${targetHost}:${targetPort} without answering`);
      const frame = decodeFrame(raw);
      if (frame.type === 'error') {
        throw new PeerdialError('TRANSFER_FAILED', `the peer refused the forward to ${targetHost}:${targetPort}: ${frame.message}`, {
          hint: 'The peer must allow this target.',
        });
      }
      const reply = frame.type === 'control' ? parseForwardControl(frame.body) : undefined;
      if (reply === undefined || 'type' in reply || reply.t !== 'connected') {
        throw new PeerdialError('TRANSFER_FAILED', `the peer answered the forward request with something unexpected`);
      }
      const { sent, received } = await runPipe(channel, socket, socket, { signal: stop.signal });
      opts.onConnectionEnd?.({ from, sent, received });
      socket.destroy();
    } catch (err) {
      const error = isPeerdialError(err) ? err : new PeerdialError('TRANSFER_FAILED', `forward failed: ${(err as Error).message}`, { cause: err });
      // A reset tells the local client that the connection did not work out.
      if (!socket.destroyed) socket.resetAndDestroy();
      opts.onConnectionEnd?.({ from, sent: 0, received: 0, error });
    } finally {
      sockets.delete(socket);
      if (channel !== undefined) {
        channels.delete(channel);
        channel.close();
      }
    }
  };

  const server: Server = createServer({ allowHalfOpen: true }, (socket) => void handle(socket));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        new PeerdialError('TCP_FAILED', `cannot listen on ${listenHost}:${opts.listenPort}: ${err.code ?? err.message}`, {
          hint: err.code === 'EADDRINUSE' ? 'Pick another local port.' : undefined,
          cause: err,
        }),
      );
    });
    server.listen(opts.listenPort, listenHost, () => resolve());
  });
  server.on('error', () => undefined);

  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : opts.listenPort;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      stop.abort(new PeerdialError('ABORTED', 'forward closed'));
      opts.signal?.removeEventListener('abort', onAbort);
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
      for (const c of channels) c.close();
    });
    return closing;
  };
  const onAbort = (): void => void close();
  if (opts.signal?.aborted) await close();
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  return {
    host: listenHost,
    port,
    get connections() {
      return sockets.size;
    },
    close,
  };
}

// ---------------------------------------------------------------------------
// Remote side

export interface ServeForwardOptions {
  /** Whether the peer may reach host:port from here. Nothing is allowed by default. */
  allow: (host: string, port: number) => boolean | Promise<boolean>;
  signal?: AbortSignal;
  onProgress?: (progress: PipeProgress) => void;
  /** Default 10 s. */
  connectTimeoutMs?: number;
}

export interface ServedForward {
  host: string;
  port: number;
  sent: number;
  received: number;
}

/**
 * Serves one forward channel: reads the target, checks it, connects and pipes.
 * Rejects with TRANSFER_FAILED when the target is not allowed (after telling
 * the peer), TCP_FAILED when it cannot be reached. Always closes the channel.
 */
export async function serveForward(channel: Channel, opts: ServeForwardOptions): Promise<ServedForward> {
  const inbox = inboxOf(channel);
  const signal = opts.signal ?? new AbortController().signal;
  /** Tells the peer why; the channel is closed in `finally`, after the ERROR frame. */
  const refuse = async (message: string): Promise<void> => {
    if (channel.isOpen) await channel.send(encodeError(message)).catch(() => undefined);
  };
  let socket: Socket | undefined;
  try {
    const raw = await inbox.next(signal);
    if (raw === null) throw new PeerdialError('SESSION_CLOSED', 'the forward channel closed before naming a target');
    const frame = decodeFrame(raw);
    const request = frame.type === 'control' ? parseForwardControl(frame.body) : undefined;
    if (request === undefined || 'type' in request || request.t !== 'connect') {
      await refuse('invalid forward request');
      throw new PeerdialError('TRANSFER_FAILED', 'the peer sent an invalid forward request');
    }
    const { host, port } = request;
    if (!(await opts.allow(host, port))) {
      await refuse(`forwarding to ${host}:${port} is not allowed`);
      throw new PeerdialError('TRANSFER_FAILED', `refused the peer's forward to ${host}:${port}: not allowed`, {
        hint: 'Add the target to the allowed forwards if you want to permit it.',
      });
    }
    try {
      socket = await connectTcp(host, port, opts.connectTimeoutMs ?? 10_000, signal);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      await refuse(`cannot reach ${host}:${port}: ${code}`);
      if (isPeerdialError(err, 'ABORTED')) throw err;
      throw new PeerdialError('TCP_FAILED', `cannot reach ${host}:${port} for the peer: ${code}`, { cause: err });
    }
    await channel.send(encodeControl({ t: 'connected' }));
    const { sent, received } = await runPipe(channel, socket, socket, { signal, onProgress: opts.onProgress });
    return { host, port, sent, received };
  } catch (err) {
    if (signal.aborted && !isPeerdialError(err)) throw abortError(signal);
    throw err;
  } finally {
    socket?.destroy();
    channel.close();
  }
}

function connectTcp(host: string, port: number, timeoutMs: number, signal: AbortSignal): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    if (signal.aborted) return reject(abortError(signal));
    const socket = connect({ host, port, allowHalfOpen: true });
    const timer = setTimeout(() => fail(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), timeoutMs);
    timer.unref();
    const onAbort = (): void => fail(abortError(signal));
    const cleanup = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.off('error', fail);
    };
    function fail(err: Error): void {
      cleanup();
      socket.destroy();
      reject(err);
    }
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', fail);
    socket.once('connect', () => {
      cleanup();
      socket.on('error', () => undefined); // read back by the pipe
      resolve(socket);
    });
  });
}
