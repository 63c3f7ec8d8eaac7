/**
 * Strict schema check of a decoded payload. Every field is checked; unknown
 * fields are refused (protocol v1 is closed: a new field means a new
 * version). Pure: no I/O.
 */
import { isIP } from 'node:net';
import { isMailAddress } from './address.js';
import { LIMITS } from './headers.js';
import { peerIpProblem } from './peer-ip.js';
import { restartFieldsProblem } from './update.js';
import { MESSAGE_KINDS, type MessageKind, type PeerdialMessage } from './message.js';

export type Validation = { ok: true; message: PeerdialMessage } | { ok: false; detail: string };

const TOP_FIELDS = new Set([
  'v', 'kind', 'from', 'to', 'callId', 'created', 'expires', 'nonce', 'addresses', 'sdp', 'text', 'purpose', 'attachment', 'mac', 'standing', 'restart', 'group',
]);
const ADDRESS_FIELDS = new Set(['ip', 'port', 'source', 'scope']);
const ADDRESS_SOURCES = new Set(['interface', 'stun', 'mapping', 'relay']);
const ATTACHMENT_FIELDS = new Set(['filename', 'contentType', 'data']);
const GROUP_FIELDS = new Set(['id', 'members']);

/** Random ids (callId, nonce): URL-safe, 16 to 128 characters. */
const ID_RE = /^[A-Za-z0-9_-]{16,128}$/;
/** ISO 8601 UTC as `Date.prototype.toISOString` writes it (milliseconds optional). */
const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;
/** A mail address in its normal form (wire/address.ts: the one grammar). */
export { isMailAddress };

export function isIsoUtc(value: unknown): value is string {
  return typeof value === 'string' && ISO_RE.test(value) && !Number.isNaN(Date.parse(value));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

function unknownKey(obj: Record<string, unknown>, allowed: Set<string>): string | undefined {
  return Object.keys(obj).find((k) => !allowed.has(k));
}

/** Text without control characters other than tab/newline. */
function isCleanText(v: unknown, max: number): v is string {
  // eslint-disable-next-line no-control-regex
  return typeof v === 'string' && v.length <= max && !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(v);
}

/**
 * One address entry. The same rule as for ICE candidates (wire/peer-ip.ts);
 * loopback is allowed in the list of an offer or answer (it mirrors the
 * description, which the session filters for its own side), never in an
 * announce: nobody announces loopback (agent/announce.ts addressEntries).
 */
function checkAddress(a: unknown, i: number, kind: string): string | undefined {
  if (!isPlainObject(a)) return `addresses[${i}] is not an object`;
  const extra = unknownKey(a, ADDRESS_FIELDS);
  if (extra) return `addresses[${i}] has unknown field "${extra}"`;
  if (typeof a.ip !== 'string' || isIP(a.ip) === 0) return `addresses[${i}].ip is not an IP address`;
  const problem = peerIpProblem(a.ip, { loopback: kind !== 'announce' });
  if (problem) return `addresses[${i}].ip is ${problem}`;
  if (a.port !== undefined && (!Number.isInteger(a.port) || (a.port as number) < 1 || (a.port as number) > 65535)) {
    return `addresses[${i}].port is not a port number`;
  }
  if (typeof a.source !== 'string' || !ADDRESS_SOURCES.has(a.source)) return `addresses[${i}].source is unknown`;
  if (typeof a.scope !== 'string' || !/^[a-z0-9-]{1,32}$/.test(a.scope)) return `addresses[${i}].scope is invalid`;
  return undefined;
}

/**
 * The group of an offer: a random id and the members in order (mail
 * addresses only, no repeats, at most LIMITS.groupMembers), holding the
 * sender and the recipient, the sender first (the earlier member offers).
 */
export function groupProblem(g: unknown, from: string, to: string): string | undefined {
  if (!isPlainObject(g)) return 'field "group" is not an object';
  const extra = unknownKey(g, GROUP_FIELDS);
  if (extra) return `group has unknown field "${extra}"`;
  if (typeof g.id !== 'string' || !ID_RE.test(g.id)) return 'group.id is not a random id';
  if (!Array.isArray(g.members)) return 'group.members is not a list';
  if (g.members.length > LIMITS.groupMembers) return `group has more than ${LIMITS.groupMembers} members`;
  if (g.members.length < 2) return 'group has fewer than 2 members';
  if (!g.members.every((a) => isMailAddress(a))) return 'group.members holds something that is not a lower-case mail address';
  if (new Set(g.members).size !== g.members.length) return 'group.members names somebody twice';
  const i = g.members.indexOf(from);
  const j = g.members.indexOf(to);
  if (i < 0) return 'the sender is not a member of the group';
  if (j < 0) return 'the recipient is not a member of the group';
  if (i > j) return 'the group offer goes from a later member to an earlier one';
  return undefined;
}

/** Check a decoded payload; on success the result is the same object, typed. */
export function validateMessage(value: unknown): Validation {
  const bad = (detail: string): Validation => ({ ok: false, detail });
  if (!isPlainObject(value)) return bad('payload is not a JSON object');
  const extra = unknownKey(value, TOP_FIELDS);
  if (extra) return bad(`unknown field "${extra}"`);
  const m = value;
  if (m.v !== 1) return bad('field "v" is not 1');
  if (typeof m.kind !== 'string' || !(MESSAGE_KINDS as readonly string[]).includes(m.kind)) return bad('unknown kind');
  const kind = m.kind as MessageKind;
  if (!isMailAddress(m.from)) return bad('field "from" is not a lower-case mail address');
  if (!isMailAddress(m.to)) return bad('field "to" is not a lower-case mail address');
  if (typeof m.callId !== 'string' || !ID_RE.test(m.callId)) return bad('field "callId" is not a random id');
  if (typeof m.nonce !== 'string' || !ID_RE.test(m.nonce)) return bad('field "nonce" is not a random id');
  if (!isIsoUtc(m.created)) return bad('field "created" is not an ISO 8601 UTC time');
  if (!isIsoUtc(m.expires)) return bad('field "expires" is not an ISO 8601 UTC time');
  if (Date.parse(m.expires) < Date.parse(m.created)) return bad('"expires" is before "created"');
  if (!Array.isArray(m.addresses)) return bad('field "addresses" is not a list');
  if (m.addresses.length > LIMITS.addresses) return bad('too many addresses');
  for (let i = 0; i < m.addresses.length; i++) {
    const problem = checkAddress(m.addresses[i], i, kind);
    if (problem) return bad(problem);
  }
  if (m.sdp !== undefined) {
    if (!isCleanText(m.sdp, LIMITS.sdpChars) || !m.sdp.startsWith('v=0')) {
      return bad('field "sdp" is not a session description');
    }
  }
  if (m.text !== undefined && !isCleanText(m.text, LIMITS.textChars)) return bad('field "text" is not clean text or too long');
  if (m.purpose !== undefined && (typeof m.purpose !== 'string' || !/^[a-z0-9-]{1,32}$/.test(m.purpose))) {
    return bad('field "purpose" is invalid');
  }
  if (m.attachment !== undefined) {
    const a = m.attachment;
    if (!isPlainObject(a)) return bad('field "attachment" is not an object');
    const ax = unknownKey(a, ATTACHMENT_FIELDS);
    if (ax) return bad(`attachment has unknown field "${ax}"`);
    if (typeof a.filename !== 'string' || !/^[A-Za-z0-9._ -]{1,128}$/.test(a.filename) || a.filename.startsWith('.')) {
      return bad('attachment.filename is invalid');
    }
    if (typeof a.contentType !== 'string' || !/^[a-z0-9.+-]+\/[a-z0-9.+-]+$/i.test(a.contentType)) {
      return bad('attachment.contentType is invalid');
    }
    if (typeof a.data !== 'string' || a.data.length > LIMITS.attachmentBase64Chars || !/^[A-Za-z0-9+/]*={0,2}$/.test(a.data)) {
      return bad('attachment.data is not base64 or too large');
    }
  }
  // What each kind must and must not carry.
  const needsSdp = kind === 'offer' || kind === 'answer' || kind === 'update';
  if (needsSdp && m.sdp === undefined) return bad(`${kind} carries no sdp`);
  if (!needsSdp && m.sdp !== undefined) return bad(`${kind} must not carry an sdp`);
  if (kind === 'announce' && m.addresses.length === 0) return bad('announce carries no address');
  if (kind === 'message' && m.text === undefined && m.attachment === undefined) return bad('message carries neither text nor attachment');
  if (kind !== 'message' && m.attachment !== undefined) return bad(`${kind} must not carry an attachment`);
  const needsMac = kind === 'introduce' || kind === 'introduced';
  if (needsMac && (typeof m.mac !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(m.mac))) return bad(`${kind} carries no valid mac`);
  if (!needsMac && m.mac !== undefined) return bad(`${kind} must not carry a mac`);
  if (m.standing !== undefined) {
    if (kind !== 'offer') return bad(`${kind} must not name a standing answer`);
    if (typeof m.standing !== 'string' || !ID_RE.test(m.standing)) return bad('field "standing" is not a random id');
  }
  if (kind === 'update') {
    const problem = restartFieldsProblem(m.restart);
    if (problem) return bad(problem);
  } else if (m.restart !== undefined) return bad(`${kind} must not carry a restart`);
  if (m.group !== undefined) {
    if (kind !== 'offer') return bad(`${kind} must not carry a group`);
    const problem = groupProblem(m.group, m.from as string, m.to as string);
    if (problem) return bad(problem);
  }
  return { ok: true, message: m as unknown as PeerdialMessage };
}

