/**
 * The wire of every carrier, defined in one place. Pure: no I/O.
 *
 * Binary frames (pipe, file, forward): one type byte, then the payload.
 *
 *   0x01 DATA     raw bytes
 *   0x02 EOS      no payload: the sender's direction has ended (half-close)
 *   0x03 ERROR    UTF-8 text: why the sender gave up
 *   0x04 CONTROL  UTF-8 JSON object with a string `t` (offer, accept, ...)
 *
 * Chat uses text messages holding a JSON object: {t:'chat', text} or {t:'bye'}.
 *
 * Raw input is sorted before a carrier sees it: every decoder returns either a
 * typed frame/message or `{ type: 'invalid', reason }`.
 */

import { sanitizeText as sanitizeForTerminal } from '../wire/sanitize.js';

export const FRAME_TYPE = {
  DATA: 0x01,
  EOS: 0x02,
  ERROR: 0x03,
  CONTROL: 0x04,
} as const;

/** Bytes a frame adds to its payload. */
const FRAME_OVERHEAD = 1;

/** Channel protocol name of a forwarded TCP connection. */
export const FORWARD_PROTOCOL = 'peerdial-forward';

export type Frame =
  | { type: 'data'; payload: Buffer }
  | { type: 'eos' }
  | { type: 'error'; message: string }
  | { type: 'control'; body: { t: string; [key: string]: unknown } };

export interface InvalidInput {
  type: 'invalid';
  reason: string;
}

/**
 * Message size to plan with: the channel's, or 16 KiB (safe everywhere) when
 * the channel does not know it (yet), e.g. reports 0 before it opens.
 */
export function messageBudget(maxMessageSize: number): number {
  return Number.isFinite(maxMessageSize) && maxMessageSize >= 64 ? Math.floor(maxMessageSize) : 16 * 1024;
}

/** Largest DATA payload that fits a channel's message size. */
export function maxDataPayload(maxMessageSize: number): number {
  return messageBudget(maxMessageSize) - FRAME_OVERHEAD;
}

export function encodeData(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_OVERHEAD + payload.byteLength);
  out[0] = FRAME_TYPE.DATA;
  out.set(payload, FRAME_OVERHEAD);
  return out;
}

export function encodeEos(): Buffer {
  return Buffer.from([FRAME_TYPE.EOS]);
}

/** Error text is cut to keep the frame small; it is for humans only. */
export function encodeError(message: string): Buffer {
  const text = Buffer.from(message.slice(0, 512), 'utf8');
  return Buffer.concat([Buffer.from([FRAME_TYPE.ERROR]), text]);
}

export function encodeControl(body: { t: string; [key: string]: unknown }): Buffer {
  return Buffer.concat([Buffer.from([FRAME_TYPE.CONTROL]), Buffer.from(JSON.stringify(body), 'utf8')]);
}

export function decodeFrame(message: Buffer | string): Frame | InvalidInput {
  if (typeof message === 'string') return { type: 'invalid', reason: 'text message where a binary frame was expected' };
  if (message.length < FRAME_OVERHEAD) return { type: 'invalid', reason: 'empty frame' };
  const payload = message.subarray(FRAME_OVERHEAD);
  switch (message[0]) {
    case FRAME_TYPE.DATA:
      return { type: 'data', payload };
    case FRAME_TYPE.EOS:
      return payload.length === 0 ? { type: 'eos' } : { type: 'invalid', reason: 'EOS frame with payload' };
    case FRAME_TYPE.ERROR:
      return { type: 'error', message: sanitizeText(payload.toString('utf8')) };
    case FRAME_TYPE.CONTROL: {
      let body: unknown;
      try {
        body = JSON.parse(payload.toString('utf8'));
      } catch {
        return { type: 'invalid', reason: 'control frame is not JSON' };
      }
      if (!isRecord(body) || typeof body.t !== 'string') return { type: 'invalid', reason: 'control frame without a type' };
      return { type: 'control', body: body as { t: string } };
    }
    default:
      return { type: 'invalid', reason: `unknown frame type 0x${(message[0] ?? 0).toString(16)}` };
  }
}

// ---------------------------------------------------------------------------
// File transfer control messages

export interface FileOffer {
  t: 'offer';
  name: string;
  size: number;
  sha256: string;
}
export type FileControl =
  | FileOffer
  | { t: 'accept'; offset: number }
  | { t: 'reject'; reason: string }
  | { t: 'done' }
  | { t: 'ok'; savedAs: string }
  | { t: 'fail'; reason: string }
  | { t: 'end' };

/** Sorts a control frame into a typed file message. The name of an offer is NOT checked here (see checkFileName). */
export function parseFileControl(body: { t: string; [key: string]: unknown }): FileControl | InvalidInput {
  switch (body.t) {
    case 'offer':
      if (typeof body.name !== 'string') return { type: 'invalid', reason: 'offer without a name' };
      if (!isByteCount(body.size)) return { type: 'invalid', reason: 'offer with an invalid size' };
      if (typeof body.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(body.sha256))
        return { type: 'invalid', reason: 'offer with an invalid sha256' };
      return { t: 'offer', name: body.name, size: body.size, sha256: body.sha256 };
    case 'accept':
      return isByteCount(body.offset) ? { t: 'accept', offset: body.offset } : { type: 'invalid', reason: 'accept with an invalid offset' };
    case 'reject':
      return { t: 'reject', reason: sanitizeText(String(body.reason ?? 'rejected')) };
    case 'done':
      return { t: 'done' };
    case 'ok':
      return typeof body.savedAs === 'string' ? { t: 'ok', savedAs: sanitizeText(body.savedAs) } : { type: 'invalid', reason: 'ok without savedAs' };
    case 'fail':
      return { t: 'fail', reason: sanitizeText(String(body.reason ?? 'failed')) };
    case 'end':
      return { t: 'end' };
    default:
      return { type: 'invalid', reason: `unexpected control message '${sanitizeText(body.t).slice(0, 40)}'` };
  }
}

/**
 * Why a file name offered by the peer must not be used, or undefined when it
 * is a plain name. The peer may be hostile: no separators, no dot names, no
 * control characters, no drive letters, nothing that collides with our own
 * partial files.
 */
export function checkFileName(name: string): string | undefined {
  if (name.length === 0) return 'empty name';
  if (Buffer.byteLength(name, 'utf8') > 255) return 'name longer than 255 bytes';
  if (name.includes('/') || name.includes('\\')) return 'name contains a path separator';
  if (name === '.' || name === '..' || name.includes('..')) return "name contains '..'";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return 'name contains control characters';
  if (/[\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/.test(name)) return 'name contains invisible or bidi characters';
  if (/^[a-zA-Z]:/.test(name)) return 'name looks like an absolute path';
  if (name.trim() !== name || name.endsWith('.')) return 'name starts or ends with a space or ends with a dot';
  if (name.endsWith(PARTIAL_SUFFIX) || name.endsWith(`${PARTIAL_SUFFIX}.json`)) return 'name of a peerdial partial file';
  return undefined;
}

/** Suffix of a file being received; the sidecar adds `.json`. */
export const PARTIAL_SUFFIX = '.peerdial-part';

// ---------------------------------------------------------------------------
// Forward control messages

export type ForwardControl = { t: 'connect'; host: string; port: number } | { t: 'connected' };

export function parseForwardControl(body: { t: string; [key: string]: unknown }): ForwardControl | InvalidInput {
  if (body.t === 'connected') return { t: 'connected' };
  if (body.t !== 'connect') return { type: 'invalid', reason: `unexpected control message '${sanitizeText(body.t).slice(0, 40)}'` };
  if (typeof body.host !== 'string' || !isHostName(body.host)) return { type: 'invalid', reason: 'connect with an invalid host' };
  if (!isPort(body.port)) return { type: 'invalid', reason: 'connect with an invalid port' };
  return { t: 'connect', host: body.host, port: body.port };
}

export function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;
}

/** A DNS name, an IPv4 address or an IPv6 address (without brackets). */
export function isHostName(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  if (host.includes(':')) return /^[0-9a-fA-F:.]+$/.test(host);
  return /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*\.?$/.test(host);
}

// ---------------------------------------------------------------------------
// Chat messages (text)

export type ChatMessage = { t: 'chat'; text: string } | { t: 'bye' };

export function encodeChat(message: ChatMessage): string {
  return JSON.stringify(message);
}

export function decodeChat(message: Buffer | string): ChatMessage | InvalidInput {
  const raw = typeof message === 'string' ? message : message.toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    return { type: 'invalid', reason: 'chat message is not JSON' };
  }
  if (!isRecord(body)) return { type: 'invalid', reason: 'chat message is not an object' };
  if (body.t === 'bye') return { t: 'bye' };
  if (body.t === 'chat' && typeof body.text === 'string') return { t: 'chat', text: sanitizeText(body.text) };
  return { type: 'invalid', reason: 'unknown chat message' };
}

// ---------------------------------------------------------------------------

/** Text from the peer, safe to print on a terminal: the one sanitiser (wire/sanitize.ts), long enough for a chat line; tabs stay. */
export function sanitizeText(text: string): string {
  return sanitizeForTerminal(text, { max: 16 * 1024, tabs: true });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isByteCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
