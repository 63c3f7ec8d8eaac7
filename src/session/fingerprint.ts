/**
 * The peer's DTLS certificate, checked by peerdial itself (issue 12).
 *
 * Every PeerConnection is made with `disableFingerprintVerification`, and
 * the session compares the certificate the peer really used
 * (`pc.remoteFingerprint()`) with the `a=fingerprint` lines of the signed
 * description itself, once the connection is up and before any channel,
 * track or byte is used (the way js-libp2p's WebRTC-Direct transport does).
 * A mismatch is a named error (FINGERPRINT_MISMATCH) and nothing was
 * exchanged. This does not remove libdatachannel 0.24.5's PR 1612 race: its
 * checkFingerprint() refuses every certificate while no remote description
 * is stored, verification or not (see index.ts).
 *
 * Pure: parsing and comparing only.
 */
import { PeerdialError } from '../errors.js';
import { errorText } from './channel.js';

export interface Fingerprint {
  /** Hash function name, lower case (`sha-256`). */
  algorithm: string;
  /** Hex digits of the hash, upper case, without colons. */
  hex: string;
}

/** Normalise an algorithm name and a fingerprint value (`ab:cd:..` or `ABCD..`). */
export function normalizeFingerprint(algorithm: string, value: string): Fingerprint {
  return { algorithm: algorithm.trim().toLowerCase(), hex: value.trim().replace(/:/g, '').toUpperCase() };
}

/** Every `a=fingerprint` line of a description (session and media level), normalised. */
export function descriptionFingerprints(sdp: string): Fingerprint[] {
  return [...sdp.matchAll(/^a=fingerprint:(\S+)[ \t]+(\S+)[ \t]*\r?$/gm)].map((m) => normalizeFingerprint(m[1]!, m[2]!));
}

export type FingerprintCheck = { ok: true } | { ok: false; reason: string };

/**
 * Does the certificate the peer used match its description? Every
 * `a=fingerprint` line with the certificate's hash algorithm must carry the
 * certificate's hash (a description whose lines disagree is refused), and
 * there must be at least one.
 */
export function checkPeerFingerprint(expected: readonly Fingerprint[], actual: Fingerprint | undefined): FingerprintCheck {
  if (actual === undefined || actual.hex === '' || actual.algorithm === '') {
    return { ok: false, reason: 'the peer showed no DTLS certificate' };
  }
  if (!/^[0-9A-F]+$/.test(actual.hex)) return { ok: false, reason: 'the peer certificate fingerprint is not hex' };
  const same = expected.filter((f) => f.algorithm === actual.algorithm);
  if (same.length === 0) {
    const algs = [...new Set(expected.map((f) => f.algorithm))].join(', ') || 'none';
    return { ok: false, reason: `the description has no ${actual.algorithm} fingerprint (it has: ${algs})` };
  }
  const wrong = same.find((f) => f.hex !== actual.hex);
  if (wrong) {
    return {
      ok: false,
      reason: `the peer's DTLS certificate (${actual.algorithm} ${short(actual.hex)}) is not the one its signed description names (${short(wrong.hex)})`,
    };
  }
  return { ok: true };
}

/**
 * The session's check at `connected`: the certificate the connection shows
 * (`readActual`: node-datachannel's remoteFingerprint(), which may throw)
 * against the description's lines. Undefined when they match, else the
 * FINGERPRINT_MISMATCH error to fail with.
 */
export function peerCertificateError(
  expected: readonly Fingerprint[],
  readActual: () => { value?: unknown; algorithm?: unknown } | null | undefined,
): PeerdialError | undefined {
  let actual: Fingerprint | undefined;
  let why = '';
  try {
    const fp = readActual();
    if (fp && typeof fp.value === 'string' && typeof fp.algorithm === 'string') actual = normalizeFingerprint(fp.algorithm, fp.value);
  } catch (err) {
    why = errorText(err);
  }
  const check = checkPeerFingerprint(expected, actual);
  if (check.ok) return undefined;
  const reason = why ? `${check.reason} (${why})` : check.reason;
  return new PeerdialError('FINGERPRINT_MISMATCH', `the direct connection was closed before any data was exchanged: ${reason}`, {
    hint:
      'the connection did not come from the peer that signed the call (someone on the path may be interfering, ' +
      'or the peer runs a broken client); nothing was sent or received. See "The peer certificate" in the README',
  });
}

function short(hex: string): string {
  return hex.length > 16 ? `${hex.slice(0, 8)}..${hex.slice(-8)}` : hex;
}
