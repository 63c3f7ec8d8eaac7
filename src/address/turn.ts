/**
 * A small TURN client (RFC 8656 over UDP, long-term credentials, no
 * dependency), for `peerdial doctor`: asks a relay the user configured for
 * an allocation, reports the relayed address it got, and releases it again.
 * Calls do not use this: libjuice allocates its own relays during ICE.
 *
 * Only TURN over UDP: that is all libjuice can use (no TCP or TLS to the
 * relay), so it is all there is to check.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { PeerdialError } from '../errors.js';
import { compressIPv6, type MappedAddress } from './stun.js';
import { abortedError, stunTransaction } from './stun-transaction.js';

export interface TurnCredentials {
  host: string;
  port: number;
  username: string;
  password: string;
}

export interface TurnAllocation {
  /** The address the relay gave us: where peers send to reach this machine through it. */
  relayed: MappedAddress;
  /** This machine as the relay sees it (server-reflexive). */
  mapped?: MappedAddress;
  /** Seconds the allocation would have lasted. */
  lifetime?: number;
  /** The relay's realm. */
  realm: string;
  /** Whether the allocation was released again (a Refresh with lifetime 0 was answered). */
  released: boolean;
}

export interface TurnAllocateOptions {
  timeoutMs: number;
  localAddress?: string;
  signal?: AbortSignal;
}

// ---------------------------------------------------------------------------
// Wire format (pure).

const MAGIC_COOKIE = 0x2112a442;
const HEADER = 20;
export const TURN_METHOD = { allocate: 0x003, refresh: 0x004 } as const;
const CLASS_SUCCESS = 0x100;
const CLASS_ERROR = 0x110;
export const ATTR = {
  username: 0x0006,
  messageIntegrity: 0x0008,
  errorCode: 0x0009,
  lifetime: 0x000d,
  realm: 0x0014,
  nonce: 0x0015,
  xorRelayedAddress: 0x0016,
  requestedTransport: 0x0019,
  xorMappedAddress: 0x0020,
} as const;

export interface TurnAuth {
  username: string;
  realm: string;
  nonce: Buffer;
  /** MD5(username:realm:password), RFC 8489 long-term credential key. */
  key: Buffer;
}

export function longTermKey(username: string, realm: string, password: string): Buffer {
  return createHash('md5').update(`${username}:${realm}:${password}`, 'utf8').digest();
}

function attribute(type: number, value: Buffer): Buffer {
  const padded = Buffer.alloc(4 + value.length + ((4 - (value.length % 4)) % 4));
  padded.writeUInt16BE(type, 0);
  padded.writeUInt16BE(value.length, 2);
  value.copy(padded, 4);
  return padded;
}

/** A request of `method` with these attributes; with `auth`, USERNAME, REALM, NONCE and MESSAGE-INTEGRITY are added. */
export function encodeTurnRequest(method: number, transactionId: Buffer, attrs: Array<[number, Buffer]>, auth?: TurnAuth): Buffer {
  const parts = attrs.map(([t, v]) => attribute(t, v));
  if (auth) {
    parts.push(attribute(ATTR.username, Buffer.from(auth.username, 'utf8')));
    parts.push(attribute(ATTR.realm, Buffer.from(auth.realm, 'utf8')));
    parts.push(attribute(ATTR.nonce, auth.nonce));
  }
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(HEADER);
  header.writeUInt16BE(method, 0);
  header.writeUInt16BE(body.length + (auth ? 24 : 0), 2); // the length covers MESSAGE-INTEGRITY
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(header, 8);
  const msg = Buffer.concat([header, body]);
  if (!auth) return msg;
  const mac = createHmac('sha1', auth.key).update(msg).digest();
  return Buffer.concat([msg, attribute(ATTR.messageIntegrity, mac)]);
}

export type TurnResponse =
  | { kind: 'success'; attrs: Map<number, Buffer> }
  | { kind: 'error'; code: number; reason: string; attrs: Map<number, Buffer> }
  | { kind: 'ignore'; why: string };

/** Sorts a datagram: the answer to this transaction (success or error, with its attributes) or something to ignore. */
export function decodeTurnResponse(msg: Buffer, method: number, transactionId: Buffer): TurnResponse {
  if (msg.length < HEADER || (msg[0]! & 0xc0) !== 0) return { kind: 'ignore', why: 'not STUN' };
  if (msg.readUInt32BE(4) !== MAGIC_COOKIE) return { kind: 'ignore', why: 'no magic cookie' };
  if (!msg.subarray(8, 20).equals(transactionId)) return { kind: 'ignore', why: 'another transaction' };
  const type = msg.readUInt16BE(0);
  const length = msg.readUInt16BE(2);
  if (length % 4 !== 0 || HEADER + length > msg.length) return { kind: 'ignore', why: 'bad length' };
  if (type !== (method | CLASS_SUCCESS) && type !== (method | CLASS_ERROR)) return { kind: 'ignore', why: `message type 0x${type.toString(16)}` };
  const attrs = new Map<number, Buffer>();
  for (let off = HEADER; off + 4 <= HEADER + length; ) {
    const t = msg.readUInt16BE(off);
    const n = msg.readUInt16BE(off + 2);
    const value = msg.subarray(off + 4, off + 4 + n);
    if (value.length !== n) return { kind: 'ignore', why: 'truncated attribute' };
    if (!attrs.has(t)) attrs.set(t, Buffer.from(value));
    off += 4 + n + ((4 - (n % 4)) % 4);
  }
  if (type === (method | CLASS_SUCCESS)) return { kind: 'success', attrs };
  const e = attrs.get(ATTR.errorCode);
  const code = e && e.length >= 4 ? (e[2]! & 0x07) * 100 + e[3]! : 0;
  return { kind: 'error', code, reason: e ? e.subarray(4).toString('utf8') : '', attrs };
}

/** An XOR-*-ADDRESS value of a response to `transactionId`. */
export function xorAddress(value: Buffer | undefined, transactionId: Buffer): MappedAddress | undefined {
  if (!value || value.length < 8) return undefined;
  const size = value[1] === 0x01 ? 4 : value[1] === 0x02 ? 16 : 0;
  if (size === 0 || value.length < 4 + size) return undefined;
  const port = value.readUInt16BE(2) ^ (MAGIC_COOKIE >>> 16);
  const key = Buffer.alloc(16);
  key.writeUInt32BE(MAGIC_COOKIE, 0);
  transactionId.copy(key, 4);
  const bytes = Buffer.from(value.subarray(4, 4 + size));
  for (let i = 0; i < size; i++) bytes[i] = bytes[i]! ^ key[i]!;
  if (size === 4) return { address: [...bytes].join('.'), port };
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return { address: compressIPv6(groups), port };
}

// ---------------------------------------------------------------------------
// Network edge.

function turnError(message: string, hint: string, cause?: unknown): PeerdialError {
  return new PeerdialError('SESSION_FAILED', message, { hint, cause });
}

const UNREACHABLE_HINT = 'check the host and port of the TURN server in [ice] turn, and that outgoing UDP to it is allowed (peerdial relays over UDP only)';

/** One request/response on an open socket, retransmitted at 250, 500, 1000, ... ms until an answer or the deadline. */
function transact(socket: Socket, request: Buffer, method: number, transactionId: Buffer, to: { address: string; port: number; shown: string }, deadline: number, signal?: AbortSignal): Promise<TurnResponse & { kind: 'success' | 'error' }> {
  return stunTransaction<TurnResponse & { kind: 'success' | 'error' }>(socket, {
    request,
    address: to.address,
    port: to.port,
    timeoutMs: Math.max(1, deadline - Date.now()),
    signal,
    reply: (msg) => {
      const r = decodeTurnResponse(msg, method, transactionId);
      return r.kind !== 'ignore' ? { value: r } : undefined;
    },
    sendError: (err) => turnError(`cannot send to the TURN server ${to.shown}: ${err.message}`, UNREACHABLE_HINT, err),
    socketError: (err) => turnError(`TURN socket error: ${err.message}`, UNREACHABLE_HINT, err),
    timeoutError: () => turnError(`no answer from the TURN server ${to.shown} over UDP`, UNREACHABLE_HINT),
  });
}

/**
 * Asks the relay for an allocation over UDP with the user's credentials
 * and releases it again. Rejects with a PeerdialError: AUTH_FAILED when
 * the relay refuses the user name or password, SESSION_FAILED when it does
 * not answer or refuses otherwise, DNS_FAILED, ABORTED.
 */
export async function turnAllocate(server: TurnCredentials, opts: TurnAllocateOptions): Promise<TurnAllocation> {
  if (opts.signal?.aborted) throw abortedError(opts.signal);
  const literal = server.host.replace(/^\[(.*)\]$/, '$1');
  let address = literal;
  let family = isIP(literal);
  if (family === 0) {
    try {
      const r = await lookup(literal, opts.localAddress ? { family: isIP(opts.localAddress) === 6 ? 6 : 4 } : {});
      address = r.address;
      family = r.family;
    } catch (err) {
      throw new PeerdialError('DNS_FAILED', `cannot resolve the TURN server ${server.host}`, { hint: 'check the host name in [ice] turn', cause: err });
    }
  }
  const shown = `${family === 6 ? `[${address}]` : address}:${server.port}`;
  const to = { address, port: server.port, shown };
  const socket = createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port: 0, ...(opts.localAddress ? { address: opts.localAddress } : {}) }, () => {
      socket.off('error', reject);
      resolve();
    });
  }).catch((err: Error) => {
    socket.close();
    throw turnError(`cannot open a UDP socket: ${err.message}`, UNREACHABLE_HINT, err);
  });
  const deadline = Date.now() + opts.timeoutMs;
  const udp: Array<[number, Buffer]> = [[ATTR.requestedTransport, Buffer.from([17, 0, 0, 0])]];
  try {
    // 1. Unauthenticated: the relay answers 401 with its realm and a nonce.
    let id = randomBytes(12);
    let r = await transact(socket, encodeTurnRequest(TURN_METHOD.allocate, id, udp), TURN_METHOD.allocate, id, to, deadline, opts.signal);
    if (r.kind === 'success') throw turnError(`the TURN server ${shown} allocated without asking for credentials`, 'a relay that anybody may use is not what peerdial expects here; check the server');
    let auth: TurnAuth | undefined;
    // 2. With the credentials; a stale nonce (438) is answered once more with the new one.
    for (let attempt = 0; attempt < 3; attempt++) {
      if (r.kind === 'success') break;
      if (r.code !== 401 && r.code !== 438) {
        throw turnError(`the TURN server ${shown} refused the allocation: ${r.code} ${r.reason}`.trim(), r.code === 486 ? 'the user has too many allocations on this relay; wait a few minutes' : UNREACHABLE_HINT);
      }
      const realm = r.attrs.get(ATTR.realm)?.toString('utf8');
      const nonce = r.attrs.get(ATTR.nonce);
      if (r.code === 401 && auth) {
        throw new PeerdialError('AUTH_FAILED', `the TURN server ${shown} refused the user name or password (401 ${r.reason || 'Unauthorized'}) for user ${server.username}`, {
          hint: 'check the user and password of this relay in [ice] turn (or turn_password_command / _env / _file)',
        });
      }
      if (realm === undefined || nonce === undefined) throw turnError(`the TURN server ${shown} answered ${r.code} without realm or nonce`, UNREACHABLE_HINT);
      auth = { username: server.username, realm, nonce, key: longTermKey(server.username, realm, server.password) };
      id = randomBytes(12);
      r = await transact(socket, encodeTurnRequest(TURN_METHOD.allocate, id, udp, auth), TURN_METHOD.allocate, id, to, deadline, opts.signal);
    }
    if (r.kind !== 'success' || !auth) throw turnError(`the TURN server ${shown} did not allocate (${r.kind === 'error' ? `${r.code} ${r.reason}` : 'no answer'})`, UNREACHABLE_HINT);
    const relayed = xorAddress(r.attrs.get(ATTR.xorRelayedAddress), id);
    if (!relayed) throw turnError(`the TURN server ${shown} allocated but named no relayed address`, UNREACHABLE_HINT);
    const mapped = xorAddress(r.attrs.get(ATTR.xorMappedAddress), id);
    const life = r.attrs.get(ATTR.lifetime);
    // 3. Release it: a Refresh with lifetime 0.
    let released = false;
    try {
      const rid = randomBytes(12);
      const refresh = encodeTurnRequest(TURN_METHOD.refresh, rid, [[ATTR.lifetime, Buffer.alloc(4)]], auth);
      const rr = await transact(socket, refresh, TURN_METHOD.refresh, rid, to, Math.min(deadline, Date.now() + 2000), opts.signal);
      released = rr.kind === 'success';
    } catch {
      // the relay drops it by itself when its lifetime ends
    }
    return {
      relayed,
      ...(mapped ? { mapped } : {}),
      ...(life && life.length >= 4 ? { lifetime: life.readUInt32BE(0) } : {}),
      realm: auth.realm,
      released,
    };
  } finally {
    socket.close();
  }
}
