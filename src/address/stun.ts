/**
 * A small STUN binding client (RFC 5389, no dependency): asks a STUN server
 * which address and port our UDP packets come from (the server-reflexive
 * address), and guesses the NAT's mapping behaviour (RFC 4787 / RFC 5780
 * terms) from the answers of two server addresses to the same socket.
 *
 * Only binding requests without authentication; no TURN. Servers always come
 * from the caller (configuration); nothing is hard-wired.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { PeerdialError } from '../errors.js';
import { abortedError, stunTransaction } from './stun-transaction.js';

export interface StunServer {
  host: string;
  port: number;
}

export interface StunBindingOptions {
  /** Bind the socket to this local address (default: any of the server's family). */
  localAddress?: string;
  /** Bind the socket to this local port (default: an ephemeral port). */
  localPort?: number;
  /** Overall time for the request, retransmissions included. */
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface MappedAddress {
  address: string;
  port: number;
}

/**
 * - `endpoint-independent`: one local socket is seen at the same public
 *   address and port by different destinations (no NAT, full-cone,
 *   restricted and port-restricted cone NATs). A peer can reach the port
 *   that STUN reported.
 * - `endpoint-dependent`: each destination sees another port (symmetric
 *   NAT). The STUN-reported port is useless to a peer; direct calls only
 *   work when the other side accepts unsolicited packets, otherwise a TURN
 *   relay or a router port mapping is needed.
 * - `unknown`: one of the servers did not answer.
 */
export type NatMapping = 'endpoint-independent' | 'endpoint-dependent' | 'unknown';

export interface NatMappingResult {
  mapping: NatMapping;
  /** The reflexive address each server reported (undefined: no answer). */
  seen: Array<MappedAddress | undefined>;
  /** The local address and port of the socket used. */
  local: MappedAddress;
}

// ---------------------------------------------------------------------------
// Wire format (pure).

const MAGIC_COOKIE = 0x2112a442;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const BINDING_ERROR = 0x0111;
const ATTR_MAPPED_ADDRESS = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
const ATTR_ERROR_CODE = 0x0009;
const HEADER_LENGTH = 20;

/** A binding request with the given 12-byte transaction id. */
export function encodeBindingRequest(transactionId: Buffer): Buffer {
  if (transactionId.length !== 12) throw new RangeError('a STUN transaction id has 12 bytes');
  const msg = Buffer.alloc(HEADER_LENGTH);
  msg.writeUInt16BE(BINDING_REQUEST, 0);
  msg.writeUInt16BE(0, 2); // no attributes
  msg.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(msg, 8);
  return msg;
}

export type BindingResponse =
  | { kind: 'success'; mapped: MappedAddress }
  | { kind: 'error'; code: number; reason: string }
  | { kind: 'ignore'; why: string };

/**
 * Sorts a received datagram: a binding success with its (XOR-)MAPPED-ADDRESS,
 * a binding error, or something to ignore (not STUN, another transaction,
 * malformed).
 */
export function decodeBindingResponse(msg: Buffer, transactionId: Buffer): BindingResponse {
  if (msg.length < HEADER_LENGTH) return { kind: 'ignore', why: 'too short' };
  if ((msg[0]! & 0xc0) !== 0) return { kind: 'ignore', why: 'not STUN' };
  if (msg.readUInt32BE(4) !== MAGIC_COOKIE) return { kind: 'ignore', why: 'no magic cookie' };
  if (!msg.subarray(8, 20).equals(transactionId)) return { kind: 'ignore', why: 'another transaction' };
  const type = msg.readUInt16BE(0);
  const length = msg.readUInt16BE(2);
  if (length % 4 !== 0 || HEADER_LENGTH + length > msg.length) return { kind: 'ignore', why: 'bad length' };
  if (type !== BINDING_SUCCESS && type !== BINDING_ERROR) return { kind: 'ignore', why: `message type 0x${type.toString(16)}` };

  let xorMapped: MappedAddress | undefined;
  let mapped: MappedAddress | undefined;
  let error: { code: number; reason: string } | undefined;
  let offset = HEADER_LENGTH;
  const end = HEADER_LENGTH + length;
  while (offset + 4 <= end) {
    const attrType = msg.readUInt16BE(offset);
    const attrLength = msg.readUInt16BE(offset + 2);
    const value = msg.subarray(offset + 4, offset + 4 + attrLength);
    if (value.length !== attrLength) return { kind: 'ignore', why: 'truncated attribute' };
    if (attrType === ATTR_XOR_MAPPED_ADDRESS) xorMapped = decodeAddress(value, msg.subarray(4, 20));
    else if (attrType === ATTR_MAPPED_ADDRESS) mapped = decodeAddress(value, undefined);
    else if (attrType === ATTR_ERROR_CODE && value.length >= 4) {
      error = { code: (value[2]! & 0x07) * 100 + value[3]!, reason: value.subarray(4).toString('utf8') };
    }
    offset += 4 + attrLength + ((4 - (attrLength % 4)) % 4);
  }
  if (type === BINDING_ERROR) return { kind: 'error', code: error?.code ?? 0, reason: error?.reason ?? '' };
  const found = xorMapped ?? mapped; // MAPPED-ADDRESS only from RFC 3489 servers
  return found ? { kind: 'success', mapped: found } : { kind: 'ignore', why: 'no mapped address' };
}

/** XOR-MAPPED-ADDRESS when `xorKey` (magic cookie + transaction id) is given, else MAPPED-ADDRESS. */
function decodeAddress(value: Buffer, xorKey: Buffer | undefined): MappedAddress | undefined {
  if (value.length < 8) return undefined;
  const family = value[1];
  const rawPort = value.readUInt16BE(2);
  const port = xorKey ? rawPort ^ (MAGIC_COOKIE >>> 16) : rawPort;
  const size = family === 0x01 ? 4 : family === 0x02 ? 16 : 0;
  if (size === 0 || value.length < 4 + size) return undefined;
  const bytes = Buffer.from(value.subarray(4, 4 + size));
  if (xorKey) for (let i = 0; i < size; i++) bytes[i] = bytes[i]! ^ xorKey[i]!;
  if (size === 4) return { address: [...bytes].join('.'), port };
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return { address: compressIPv6(groups), port };
}

export function compressIPv6(groups: string[]): string {
  // Longest run of two or more zero groups becomes "::" (RFC 5952).
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLength).join(':')}`;
}

// ---------------------------------------------------------------------------
// Network edge.

function stunError(message: string, cause?: unknown): PeerdialError {
  return new PeerdialError('SESSION_FAILED', message, {
    hint: 'check that the STUN server in the configuration is right and that UDP to it is not blocked',
    cause,
  });
}

async function resolveServer(server: StunServer, family?: 4 | 6): Promise<{ address: string; family: 4 | 6 }> {
  const literal = server.host.replace(/^\[(.*)\]$/, '$1');
  const f = isIP(literal);
  if (f === 4 || f === 6) return { address: literal, family: f };
  try {
    const r = await lookup(literal, family === undefined ? {} : { family });
    return { address: r.address, family: r.family === 6 ? 6 : 4 };
  } catch (err) {
    throw new PeerdialError('DNS_FAILED', `cannot resolve the STUN server ${server.host}`, { cause: err });
  }
}

function openSocket(family: 4 | 6, opts: { localAddress?: string; localPort?: number }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: family === 6 ? 'udp6' : 'udp4', ipv6Only: family === 6 });
    const onError = (err: Error) => {
      socket.close();
      reject(stunError(`cannot open a UDP socket for STUN: ${err.message}`, err));
    };
    socket.once('error', onError);
    socket.bind({ address: opts.localAddress, port: opts.localPort ?? 0, exclusive: true }, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

/**
 * One binding transaction on an open socket: retransmits at 250, 500, 1000,
 * ... ms (RFC 5389's doubling RTO, a shorter first step) until an answer or
 * `timeoutMs`.
 */
function transact(socket: Socket, address: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<MappedAddress> {
  if (signal?.aborted) return Promise.reject(abortedError(signal));
  const transactionId = randomBytes(12);
  const where = `${address.includes(':') ? `[${address}]` : address}:${port}`;
  return stunTransaction<MappedAddress>(socket, {
    request: encodeBindingRequest(transactionId),
    address,
    port,
    timeoutMs,
    signal,
    reply: (msg) => {
      const r = decodeBindingResponse(msg, transactionId);
      if (r.kind === 'success') return { value: r.mapped };
      if (r.kind === 'error') return { error: stunError(`the STUN server ${where} refused: ${r.code} ${r.reason}`.trim()) };
      return undefined;
    },
    sendError: (err) => stunError(`cannot send to the STUN server ${where}: ${err.message}`, err),
    socketError: (err) => stunError(`STUN socket error: ${err.message}`, err),
    timeoutError: () => stunError(`no answer from the STUN server ${where} within ${timeoutMs} ms`),
  });
}

/**
 * Our server-reflexive address as `server` sees it. Rejects with a
 * PeerdialError (ABORTED on the signal, DNS_FAILED, or a STUN failure with a
 * hint) and never hangs longer than `timeoutMs` after name resolution.
 */
export async function stunBinding(server: StunServer, opts: StunBindingOptions): Promise<MappedAddress> {
  if (opts.signal?.aborted) throw abortedError(opts.signal);
  const localFamily = opts.localAddress === undefined ? undefined : isIP(opts.localAddress) === 6 ? 6 : 4;
  const target = await resolveServer(server, localFamily);
  const socket = await openSocket(target.family, opts);
  try {
    return await transact(socket, target.address, server.port, opts.timeoutMs, opts.signal);
  } finally {
    socket.close();
  }
}

/**
 * Guesses the NAT's mapping behaviour: one socket asks two STUN server
 * addresses (two servers, or the two addresses of one RFC 5780 server) for
 * its reflexive address. The same address and port from both means
 * endpoint-independent mapping; different ones, endpoint-dependent
 * (symmetric NAT). Filtering behaviour is not probed.
 */
export async function natMapping(
  servers: [StunServer, StunServer],
  opts: StunBindingOptions,
): Promise<NatMappingResult> {
  if (opts.signal?.aborted) throw abortedError(opts.signal);
  const localFamily = opts.localAddress === undefined ? undefined : isIP(opts.localAddress) === 6 ? 6 : 4;
  const first = await resolveServer(servers[0], localFamily);
  const second = await resolveServer(servers[1], first.family);
  const socket = await openSocket(first.family, opts);
  try {
    const bound = socket.address();
    const local = { address: bound.address, port: bound.port };
    const seen: Array<MappedAddress | undefined> = [];
    // One after the other: concurrent transactions on one socket are fine,
    // but sequential ones keep the NAT's view simple to explain.
    for (const [i, target] of [first, second].entries()) {
      try {
        seen.push(await transact(socket, target.address, servers[i]!.port, opts.timeoutMs, opts.signal));
      } catch (err) {
        if (err instanceof PeerdialError && err.code === 'ABORTED') throw err;
        seen.push(undefined);
      }
    }
    const [a, b] = seen;
    const mapping: NatMapping =
      a === undefined || b === undefined
        ? 'unknown'
        : a.address === b.address && a.port === b.port
          ? 'endpoint-independent'
          : 'endpoint-dependent';
    return { mapping, seen, local };
  } finally {
    socket.close();
  }
}
