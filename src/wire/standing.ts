/**
 * A standing answer: what a callee keeps ready for one contact so that a
 * call needs one mail instead of two. It rides in an announce, as a second
 * OpenPGP attachment (STANDING_MEDIA_TYPE, signed and encrypted like the
 * payload, by the same key), and says: "offer to me with these ICE
 * credentials, this DTLS certificate and these candidates in mind; I will
 * connect as soon as your offer arrives". The caller makes the answer
 * description from it (session/standing-sdp.ts), mails only its offer,
 * and the offer names the standing answer's `id` (PeerdialMessage.standing).
 *
 * A peerdial that does not know standing answers reads the announce as
 * before: it takes the one PAYLOAD_MEDIA_TYPE attachment and ignores this
 * one. Schema closed like the payload's: unknown fields are refused (then
 * the standing answer is dropped, the announce still counts).
 *
 * Pure: no I/O, no clock (times are passed in).
 */
import { isMailAddress } from './address.js';
import { LIMITS } from './limits.js';
import { peerIpProblem } from './peer-ip.js';
import { isIsoUtc } from './validate.js';

export interface StandingAnswer {
  v: 1;
  /** Random id (16..128 URL-safe characters); the offer that uses it names it. */
  id: string;
  /** The callee, who keeps it ready (lower-case). Must be the announce's sender. */
  from: string;
  /** The one caller it is for (lower-case). Must be the announce's recipient. */
  to: string;
  /** ISO 8601 UTC. */
  created: string;
  /** ISO 8601 UTC: an offer naming it after this is answered by mail (two mails). */
  expires: string;
  /** ICE credentials the callee's connection will use (RFC 8839 ice-char). */
  iceUfrag: string;
  icePwd: string;
  /** SHA-256 fingerprint of the callee's DTLS certificate: 32 upper-case hex pairs with colons. */
  fingerprint: string;
  /** ICE candidates on the kept UDP port, as the SDP attribute value (`candidate:...`, no `a=`). */
  candidates: string[];
}

export type StandingValidation = { ok: true; standing: StandingAnswer } | { ok: false; detail: string };

const FIELDS = new Set(['v', 'id', 'from', 'to', 'created', 'expires', 'iceUfrag', 'icePwd', 'fingerprint', 'candidates']);
const ID_RE = /^[A-Za-z0-9_-]{16,128}$/;
const UFRAG_RE = /^[A-Za-z0-9+/]{4,256}$/;
const PWD_RE = /^[A-Za-z0-9+/]{22,256}$/;
const FINGERPRINT_RE = /^(?:[0-9A-F]{2}:){31}[0-9A-F]{2}$/;
/** `candidate:<foundation> 1 udp <priority> <ip> <port> typ <type> [raddr <ip> rport <port>] [name value]...` */
const CANDIDATE_RE = /^candidate:([A-Za-z0-9+/]{1,32}) 1 (?:udp|UDP) (\d{1,10}) (\S+) (\d{1,5}) typ (host|srflx|relay)((?: [a-z-]{1,32} \S{1,64}){0,8})$/;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/** Why one candidate line is refused, or undefined. Only UDP, component 1, no hostnames (wire/peer-ip.ts). */
export function candidateProblem(line: unknown): string | undefined {
  if (typeof line !== 'string' || line.length > LIMITS.candidateChars) return 'not a candidate line';
  const m = CANDIDATE_RE.exec(line);
  if (!m) return 'not a UDP candidate of component 1';
  const port = Number(m[4]);
  if (port < 1 || port > 65535) return 'its port is not a port number';
  // Loopback is allowed as in an offer or answer: the session filters candidates for its own side.
  const problem = peerIpProblem(m[3]!, { loopback: true });
  return problem ? `its address is ${problem}` : undefined;
}

/** Check a decoded standing answer; on success the result is the same object, typed. */
export function validateStanding(value: unknown): StandingValidation {
  const bad = (detail: string): StandingValidation => ({ ok: false, detail: `standing answer: ${detail}` });
  if (!isPlainObject(value)) return bad('not a JSON object');
  const extra = Object.keys(value).find((k) => !FIELDS.has(k));
  if (extra) return bad(`unknown field "${extra}"`);
  const s = value;
  if (s.v !== 1) return bad('field "v" is not 1');
  if (typeof s.id !== 'string' || !ID_RE.test(s.id)) return bad('field "id" is not a random id');
  if (!isMailAddress(s.from)) return bad('field "from" is not a lower-case mail address');
  if (!isMailAddress(s.to)) return bad('field "to" is not a lower-case mail address');
  if (!isIsoUtc(s.created)) return bad('field "created" is not an ISO 8601 UTC time');
  if (!isIsoUtc(s.expires)) return bad('field "expires" is not an ISO 8601 UTC time');
  const lifetime = Date.parse(s.expires) - Date.parse(s.created);
  if (lifetime <= 0) return bad('"expires" is not after "created"');
  if (lifetime > LIMITS.standingLifetimeMs) return bad(`valid for ${Math.round(lifetime / 1000)} s; at most ${LIMITS.standingLifetimeMs / 1000} s`);
  if (typeof s.iceUfrag !== 'string' || !UFRAG_RE.test(s.iceUfrag)) return bad('field "iceUfrag" is not an ICE username fragment');
  if (typeof s.icePwd !== 'string' || !PWD_RE.test(s.icePwd)) return bad('field "icePwd" is not an ICE password');
  if (typeof s.fingerprint !== 'string' || !FINGERPRINT_RE.test(s.fingerprint)) return bad('field "fingerprint" is not a SHA-256 fingerprint');
  if (!Array.isArray(s.candidates) || s.candidates.length === 0) return bad('field "candidates" is not a non-empty list');
  if (s.candidates.length > LIMITS.standingCandidates) return bad(`more than ${LIMITS.standingCandidates} candidates`);
  for (let i = 0; i < s.candidates.length; i++) {
    const problem = candidateProblem(s.candidates[i]);
    if (problem) return bad(`candidates[${i}] is refused: ${problem}`);
  }
  return { ok: true, standing: s as unknown as StandingAnswer };
}

/**
 * Does this standing answer belong to this announce? It must be from the
 * announce's sender, for its recipient, not made in the future (beyond the
 * allowed skew) and not expired at `now`. Returns why not, or undefined.
 */
export function standingMismatch(s: StandingAnswer, announce: { from: string; to: string }, now: Date): string | undefined {
  if (s.from !== announce.from) return `standing answer is from ${s.from}, the announce from ${announce.from}`;
  if (s.to !== announce.to) return `standing answer is for ${s.to}, the announce for ${announce.to}`;
  if (Date.parse(s.created) > now.getTime() + LIMITS.clockSkewMs) return 'standing answer was made in the future';
  if (Date.parse(s.expires) <= now.getTime()) return `standing answer expired at ${s.expires}`;
  return undefined;
}
