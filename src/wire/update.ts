/**
 * The `update` of a call: a fresh transport description (ICE credentials,
 * candidates, DTLS fingerprint) for a call in progress whose address
 * changed. libjuice has no ICE restart in place, so a restart is a new
 * ICE/DTLS transport: the side that restarts offers, the other answers,
 * and both descriptions are tied to the call by its id and to each other
 * by a generation number.
 *
 * It travels one of two ways, and both are read here:
 * - over the call's live control channel, as one text frame
 *   (`peerdial-update <json>`, buildUpdateFrame / parseUpdateFrame): the
 *   channel is already DTLS-authenticated to the call's peer;
 * - by mail, as a signed (and encrypted) peerdial message of kind
 *   `update` carrying the description in `sdp` and `restart` = {generation,
 *   role} (updateFields / restartOfMessage); the mail checks (signature,
 *   pinned key, expiry, nonce) are the usual ones in parse.ts.
 *
 * acceptUpdate is the one decision whether an update is taken: only from
 * the call's peer, only for this call, only a newer generation (an offer)
 * or the answer to the offer we made (an answer), never a nonce seen
 * before. Pure: no I/O, no clock.
 */
import { LIMITS } from './limits.js';
import type { PeerdialMessage } from './message.js';

/** How many restarts one call may go through; a generation is 1..MAX_RESTART_GENERATION. */
export const MAX_RESTART_GENERATION = 1000;
/** The longest control-channel frame an update may be (a description plus a little). */
export const UPDATE_FRAME_CHARS = LIMITS.sdpChars + 1024;
/** The prefix of an update frame on the control channel. */
export const UPDATE_FRAME_PREFIX = 'peerdial-update ';

export type UpdateRole = 'offer' | 'answer';
export type UpdateVia = 'control' | 'mail';

/** The restart fields a mail of kind `update` carries beside callId, nonce and sdp. */
export interface RestartFields {
  /** Which restart of the call this is (1 for the first). */
  generation: number;
  /** The restarting side's new description (`offer`) or the other side's reply to it (`answer`). */
  role: UpdateRole;
}

/** One update, whichever way it came. */
export interface CallUpdate extends RestartFields {
  callId: string;
  /** Random, unique per update: a second copy (both ways, or a replayed mail) is refused. */
  nonce: string;
  /** The complete (non-trickle) description of the new transport. */
  sdp: string;
}

export type UpdateRejection =
  | 'malformed'
  | 'not-the-peer'
  | 'other-call'
  | 'replayed'
  | 'stale-generation'
  | 'unexpected-answer'
  | 'too-many-restarts';

export type UpdateParse = { ok: true; update: CallUpdate } | { ok: false; reason: 'malformed'; detail: string };

const ID_RE = /^[A-Za-z0-9_-]{16,128}$/;
const FRAME_FIELDS = new Set(['callId', 'nonce', 'generation', 'role', 'sdp']);
const RESTART_FIELDS = new Set(['generation', 'role']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/** A session description as every peerdial signal carries it: clean text, bounded, `v=0` first. */
function sdpProblem(sdp: unknown): string | undefined {
  if (typeof sdp !== 'string' || sdp.length > LIMITS.sdpChars || !sdp.startsWith('v=0')) return 'sdp is not a session description';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(sdp)) return 'sdp holds control characters';
  return undefined;
}

/** What is wrong with a `restart` field, or undefined (validate.ts uses this for mail of kind `update`). */
export function restartFieldsProblem(value: unknown): string | undefined {
  if (!isPlainObject(value)) return 'field "restart" is not an object';
  const extra = Object.keys(value).find((k) => !RESTART_FIELDS.has(k));
  if (extra) return `restart has unknown field "${extra}"`;
  const g = value.generation;
  if (typeof g !== 'number' || !Number.isInteger(g) || g < 1 || g > MAX_RESTART_GENERATION) return 'restart.generation is not a restart number';
  if (value.role !== 'offer' && value.role !== 'answer') return 'restart.role is neither offer nor answer';
  return undefined;
}

function checkUpdate(value: unknown): UpdateParse {
  const bad = (detail: string): UpdateParse => ({ ok: false, reason: 'malformed', detail });
  if (!isPlainObject(value)) return bad('update is not an object');
  const extra = Object.keys(value).find((k) => !FRAME_FIELDS.has(k));
  if (extra) return bad(`update has unknown field "${extra}"`);
  if (typeof value.callId !== 'string' || !ID_RE.test(value.callId)) return bad('callId is not a random id');
  if (typeof value.nonce !== 'string' || !ID_RE.test(value.nonce)) return bad('nonce is not a random id');
  const restart = restartFieldsProblem({ generation: value.generation, role: value.role });
  if (restart) return bad(restart);
  const sdp = sdpProblem(value.sdp);
  if (sdp) return bad(sdp);
  return { ok: true, update: { callId: value.callId, nonce: value.nonce, generation: value.generation as number, role: value.role as UpdateRole, sdp: value.sdp as string } };
}

/** The control-channel frame of an update. */
export function buildUpdateFrame(u: CallUpdate): string {
  const checked = checkUpdate({ ...u });
  if (!checked.ok) throw new Error(`refusing to build an invalid update: ${checked.detail}`);
  const { callId, nonce, generation, role, sdp } = u;
  return UPDATE_FRAME_PREFIX + JSON.stringify({ callId, nonce, generation, role, sdp });
}

/** Whether a control-channel message is an update frame at all (anything else is for someone else). */
export function isUpdateFrame(raw: string | Buffer): boolean {
  return typeof raw === 'string' && raw.startsWith(UPDATE_FRAME_PREFIX);
}

/** Reads a control-channel frame: a typed update, or why not. */
export function parseUpdateFrame(raw: string | Buffer): UpdateParse {
  if (typeof raw !== 'string') return { ok: false, reason: 'malformed', detail: 'update frame is not text' };
  if (raw.length > UPDATE_FRAME_CHARS) return { ok: false, reason: 'malformed', detail: `update frame longer than ${UPDATE_FRAME_CHARS} characters` };
  if (!raw.startsWith(UPDATE_FRAME_PREFIX)) return { ok: false, reason: 'malformed', detail: 'not an update frame' };
  let value: unknown;
  try {
    value = JSON.parse(raw.slice(UPDATE_FRAME_PREFIX.length));
  } catch {
    return { ok: false, reason: 'malformed', detail: 'update frame is not JSON' };
  }
  return checkUpdate(value);
}

/** The fields of a peerdial message of kind `update` (the mailer adds from, to, times). */
export function updateFields(u: CallUpdate): Pick<PeerdialMessage, 'kind' | 'callId' | 'nonce' | 'sdp' | 'addresses'> & { restart: RestartFields } {
  return { kind: 'update', callId: u.callId, nonce: u.nonce, sdp: u.sdp, addresses: [], restart: { generation: u.generation, role: u.role } };
}

/** The update a verified mail of kind `update` carries. */
export function restartOfMessage(msg: PeerdialMessage): UpdateParse {
  if (msg.kind !== 'update' || !msg.restart) return { ok: false, reason: 'malformed', detail: `a ${msg.kind} is not an update` };
  return checkUpdate({ callId: msg.callId, nonce: msg.nonce, generation: msg.restart.generation, role: msg.restart.role, sdp: msg.sdp });
}

/** What this side knows of the call an update claims to belong to. */
export interface UpdateContext {
  callId: string;
  /** The call's peer (lower-case mail address). */
  peer: string;
  /** The highest generation this side has taken or made so far (0 before any restart). */
  generation: number;
  /** The generation of the offer this side made and awaits an answer to, if any. */
  awaitingAnswer?: number;
  /** Nonces of updates already taken for this call. */
  seen: ReadonlySet<string>;
}

export type UpdateDecision = { ok: true; update: CallUpdate } | { ok: false; reason: UpdateRejection; detail: string };

/** Whether an update from `from` is taken for the call in `ctx`. */
export function acceptUpdate(u: CallUpdate, from: string, ctx: UpdateContext): UpdateDecision {
  const no = (reason: UpdateRejection, detail: string): UpdateDecision => ({ ok: false, reason, detail });
  if (from !== ctx.peer) return no('not-the-peer', `an update from ${from} for a call with ${ctx.peer}`);
  if (u.callId !== ctx.callId) return no('other-call', `an update for call ${u.callId}, not ${ctx.callId}`);
  if (ctx.seen.has(u.nonce)) return no('replayed', `update ${u.nonce} was taken already`);
  if (u.role === 'answer') {
    if (ctx.awaitingAnswer === undefined) return no('unexpected-answer', `an answer to restart ${u.generation}, and no restart of ours awaits one`);
    if (u.generation !== ctx.awaitingAnswer) return no('unexpected-answer', `an answer to restart ${u.generation}; ours is ${ctx.awaitingAnswer}`);
    return { ok: true, update: u };
  }
  if (u.generation >= MAX_RESTART_GENERATION && ctx.generation >= MAX_RESTART_GENERATION) return no('too-many-restarts', `${MAX_RESTART_GENERATION} restarts of one call`);
  // Both sides may offer the same generation at once (both addresses changed): the caller's offer wins (restart.ts).
  if (u.generation < ctx.generation || (u.generation === ctx.generation && ctx.awaitingAnswer === undefined)) {
    return no('stale-generation', `restart ${u.generation} is not newer than ${ctx.generation}`);
  }
  return { ok: true, update: u };
}
