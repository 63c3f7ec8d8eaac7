/**
 * The two ends of one TLS lane connection (the protocol is in tls-lane.ts):
 * the offerer listens and waits for a client that shows the signed
 * certificate and the token; the answerer connects, checks the server's
 * certificate, sends the token and waits for the ack.
 */
import { randomBytes, timingSafeEqual, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { PeerdialError } from '../errors.js';
import { checkPeerFingerprint, descriptionFingerprints, normalizeFingerprint, type Fingerprint } from '../session/fingerprint.js';

/** Default wait of the answerer for TCP connect + TLS handshake + ack. */
export const LANE_CONNECT_TIMEOUT_MS = 3000;
/**
 * Once TCP got through, the TLS handshake and the token are given this long
 * (a hang guard, not a time budget): on a busy machine a handshake may take
 * seconds, and cutting it would send the bytes the slow way for nothing.
 */
export const LANE_HANDSHAKE_GUARD_MS = 60_000;
const TOKEN_BYTES = 32;
const ACK = 0x01;

/** This side's certificate and key, and the fingerprints the peer's signed description names. */
export interface LaneIdentity {
  cert: string;
  key: string;
  peerFingerprints: Fingerprint[];
}

export async function laneIdentity(tls: { certPemFile: string; keyPemFile: string; peerSdp: string }): Promise<LaneIdentity> {
  const [cert, key] = await Promise.all([readFile(tls.certPemFile, 'utf8'), readFile(tls.keyPemFile, 'utf8')]);
  return { cert, key, peerFingerprints: descriptionFingerprints(tls.peerSdp) };
}

/** Why the certificate the peer showed is not acceptable, or undefined when it is the signed one. */
export function refusePeerCertificate(socket: TLSSocket, expected: readonly Fingerprint[]): string | undefined {
  let actual: Fingerprint | undefined;
  try {
    const cert = socket.getPeerX509Certificate();
    if (cert instanceof X509Certificate) actual = normalizeFingerprint('sha-256', cert.fingerprint256);
  } catch {
    actual = undefined;
  }
  const check = checkPeerFingerprint(expected, actual);
  return check.ok ? undefined : check.reason.replace('DTLS certificate', 'TLS certificate');
}

export interface LaneConnection {
  socket: TLSSocket;
  /** Bytes that arrived behind the handshake: the first of the peer's messages. */
  leftover: Buffer;
}

export interface LaneListener {
  host: string;
  port: number;
  /** Hex; what the answerer must send. */
  token: string;
  /** The first connection that showed the signed certificate and the token. */
  accepted: Promise<LaneConnection>;
  /** Resolves when the first TCP connection arrives (its handshake may still be under way). */
  arrived: Promise<void>;
  close(): void;
}

/** Listens for one lane connection on `host`, any port. */
export async function listenLane(opts: { host: string; identity: LaneIdentity; onRefused?: (reason: string) => void }): Promise<LaneListener> {
  const token = randomBytes(TOKEN_BYTES);
  let resolveAccepted!: (c: LaneConnection) => void;
  let rejectAccepted!: (err: Error) => void;
  const accepted = new Promise<LaneConnection>((res, rej) => {
    resolveAccepted = res;
    rejectAccepted = rej;
  });
  accepted.catch(() => undefined);
  let done = false;
  const pending = new Set<TLSSocket>();
  const server = createTlsServer({
    cert: opts.identity.cert,
    key: opts.identity.key,
    requestCert: true,
    // the chain means nothing here (self-signed per call): the fingerprint is checked below
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
    handshakeTimeout: LANE_HANDSHAKE_GUARD_MS,
  });
  let arrivedNow!: () => void;
  const arrived = new Promise<void>((res) => (arrivedNow = res));
  server.on('connection', () => arrivedNow());
  const refuse = (socket: TLSSocket, reason: string): void => {
    pending.delete(socket);
    socket.destroy();
    opts.onRefused?.(reason);
  };
  server.on('tlsClientError', (err) => opts.onRefused?.(`TLS handshake failed: ${err.message}`));
  server.on('secureConnection', (socket: TLSSocket) => {
    socket.on('error', () => undefined);
    if (done) return void socket.destroy();
    const bad = refusePeerCertificate(socket, opts.identity.peerFingerprints);
    if (bad !== undefined) return refuse(socket, bad);
    pending.add(socket);
    const timer = setTimeout(() => refuse(socket, 'no token in time'), LANE_HANDSHAKE_GUARD_MS);
    timer.unref();
    readExactly(socket, TOKEN_BYTES).then(
      ({ head, leftover }) => {
        clearTimeout(timer);
        if (done) return void socket.destroy();
        if (!timingSafeEqual(head, token)) return refuse(socket, 'wrong token');
        done = true;
        pending.delete(socket);
        socket.write(Buffer.from([ACK]));
        server.close();
        resolveAccepted({ socket, leftover });
      },
      (err: Error) => {
        clearTimeout(timer);
        refuse(socket, `no token: ${err.message}`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.host, port: 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', () => undefined);
  const port = (server.address() as AddressInfo).port;
  return {
    host: opts.host,
    port,
    token: token.toString('hex'),
    accepted,
    arrived,
    close: () => {
      server.close();
      for (const s of pending) s.destroy();
      pending.clear();
      if (!done) {
        done = true;
        rejectAccepted(new PeerdialError('SESSION_CLOSED', 'the lane listener was closed'));
      }
    },
  };
}

/** Connects to an offered lane, checks the server's certificate, sends the token, waits for the ack. */
export async function connectLane(opts: { host: string; port: number; token: string; identity: LaneIdentity; timeoutMs?: number }): Promise<LaneConnection> {
  const token = Buffer.from(opts.token, 'hex');
  if (token.length !== TOKEN_BYTES) throw new PeerdialError('TLS_FAILED', 'the lane token is malformed');
  const socket = tlsConnect({
    host: opts.host,
    port: opts.port,
    cert: opts.identity.cert,
    key: opts.identity.key,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
  });
  socket.on('error', () => undefined);
  // the short timeout is for TCP to get through (a filter drops the SYN); after that, the guard
  let timer = setTimeout(() => socket.destroy(new Error(`no TCP connection within ${opts.timeoutMs ?? LANE_CONNECT_TIMEOUT_MS} ms`)), opts.timeoutMs ?? LANE_CONNECT_TIMEOUT_MS);
  timer.unref();
  socket.once('connect', () => {
    clearTimeout(timer);
    timer = setTimeout(() => socket.destroy(new Error(`no TLS handshake within ${LANE_HANDSHAKE_GUARD_MS} ms`)), LANE_HANDSHAKE_GUARD_MS);
    timer.unref();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      socket.once('error', onError);
      socket.once('close', () => reject(new Error('the connection closed during the handshake')));
      socket.once('secureConnect', () => {
        socket.off('error', onError);
        resolve();
      });
    });
    const bad = refusePeerCertificate(socket, opts.identity.peerFingerprints);
    if (bad !== undefined) throw new PeerdialError('FINGERPRINT_MISMATCH', bad);
    socket.write(token);
    const { head, leftover } = await readExactly(socket, 1);
    if (head[0] !== ACK) throw new Error('the lane was not acknowledged');
    return { socket, leftover };
  } catch (err) {
    socket.destroy();
    if (err instanceof PeerdialError) throw err;
    throw new PeerdialError('TLS_FAILED', `no TLS lane to ${opts.host}:${opts.port}: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/** Reads `n` bytes, then leaves the socket paused with whatever came behind them. */
function readExactly(socket: TLSSocket, n: number): Promise<{ head: Buffer; leftover: Buffer }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      have += chunk.length;
      if (have < n) return;
      socket.pause();
      cleanup();
      const all = Buffer.concat(chunks);
      resolve({ head: all.subarray(0, n), leftover: all.subarray(n) });
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error('the connection closed'));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onError);
  });
}
