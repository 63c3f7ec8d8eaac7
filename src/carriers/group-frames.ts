/**
 * The wire of a group call's pair channel (label GROUP_CHANNEL, agent/group.ts):
 * text messages holding one JSON object. Pure: no I/O.
 *
 *   {t:'chat', text}                         a line of the member at the other end
 *   {t:'left-out', offerer, answerer, why}   a pair of the group that is not connected
 *   {t:'bye'}                                the member at the other end leaves the group
 *
 * A line is never relayed: it comes from the member at the other end of the
 * pair, who is named by the call, never by the message. Only the notice of a
 * pair left out is passed on, so that every member hears of it.
 */
import { isMailAddress } from '../wire/address.js';
import { sanitizeText } from './frames.js';

/** The label of the channel every pair of a group opens (the offerer of the pair opens it). */
export const GROUP_CHANNEL = 'group';
/** The label of a channel that carries one file to one member (carriers/file.ts on it). */
export const GROUP_FILE_CHANNEL = 'group-file';

/** Longest chat line, in characters (as LIMITS.textChars). */
const MAX_TEXT = 16 * 1024;
const MAX_WHY = 512;

export type GroupMessage =
  | { t: 'chat'; text: string }
  | { t: 'left-out'; offerer: string; answerer: string; why: string }
  | { t: 'bye' };

export function encodeGroup(message: GroupMessage): string {
  return JSON.stringify(message);
}

/** A message from the peer, checked field by field; text made safe to print. */
export function decodeGroup(raw: Buffer | string): GroupMessage | { type: 'invalid'; reason: string } {
  if (typeof raw !== 'string') return { type: 'invalid', reason: 'binary message on the group channel' };
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    return { type: 'invalid', reason: 'not JSON' };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { type: 'invalid', reason: 'not an object' };
  const b = body as Record<string, unknown>;
  if (b.t === 'bye') return { t: 'bye' };
  if (b.t === 'chat') {
    if (typeof b.text !== 'string' || b.text.length > MAX_TEXT) return { type: 'invalid', reason: 'chat without text, or too long' };
    return { t: 'chat', text: sanitizeText(b.text) };
  }
  if (b.t === 'left-out') {
    if (!isMailAddress(b.offerer) || !isMailAddress(b.answerer)) return { type: 'invalid', reason: 'left-out names no members' };
    if (typeof b.why !== 'string' || b.why.length > MAX_WHY) return { type: 'invalid', reason: 'left-out without a reason, or too long' };
    return { t: 'left-out', offerer: b.offerer, answerer: b.answerer, why: sanitizeText(b.why) };
  }
  return { type: 'invalid', reason: `unknown group message '${sanitizeText(String(b.t)).slice(0, 40)}'` };
}
