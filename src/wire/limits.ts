/**
 * The limits of the address mail, defined once. The sender refuses to
 * build what the receiver would refuse to read, and the receiver reads
 * with exactly these values: IMAP fetch, MIME parse, OpenPGP
 * decompression, schema, clock. Pure: no I/O.
 *
 * How they nest (a voicemail at its limit still fits every outer one):
 *   voicemail 3 MiB -> base64 4 MiB -> JSON payload <= 4.5 MiB
 *   -> OpenPGP (uncompressed literal, signature, session keys) -> armor
 *   (x 4/3, line breaks) <= 6.5 MiB -> the whole mail <= 8 MiB.
 */
import type { MessageKind } from './message.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Voice message audio, before base64. */
const voicemailBytes = 3 * MiB;

export const LIMITS = {
  /** The whole raw mail (RFC822.SIZE): larger mail is never fetched. */
  mailBytes: 8 * MiB,
  /** The outer header section. */
  headerBytes: 64 * KiB,
  /** The armored OpenPGP attachment. */
  armoredBytes: 6.5 * MiB,
  /** The decrypted JSON payload (characters of the UTF-8 text). */
  payloadBytes: 4.5 * MiB,
  /**
   * What OpenPGP may inflate a compressed packet to (openpgp's
   * `maxDecompressedMessageSize`): the payload plus the packets around it.
   */
  decompressedBytes: 4.5 * MiB + 64 * KiB,
  sdpChars: 64 * KiB,
  textChars: 16 * KiB,
  addresses: 64,
  /** A voice message (the attachment of a `message`), in bytes of audio. */
  voicemailBytes,
  /** The same, as the base64 text the payload carries. */
  attachmentBase64Chars: Math.ceil(voicemailBytes / 3) * 4,
  /** A sender's clock may run ahead of ours by this much. */
  clockSkewMs: 10 * 60 * 1000,
  /** Longest lifetime (expires - created) of a call signal: offer, answer, decline, cancel, hangup. */
  signalLifetimeMs: 3600 * 1000,
  /** Longest lifetime of an announce (my address is X until T). */
  announceLifetimeMs: 7 * 86_400 * 1000,
  /** Longest lifetime of a text or voice message kept for delivery. */
  messageLifetimeMs: 31 * 86_400 * 1000,
  /** Longest lifetime of an introduction and its confirmation (an invite is answered when the other side gets to it). */
  introductionLifetimeMs: 7 * 86_400 * 1000,
  /**
   * Longest lifetime of a standing answer (wire/standing.ts): the callee
   * holds its ICE credentials, certificate and UDP port that long, and its
   * candidates must still be true when the offer comes.
   */
  standingLifetimeMs: 86_400 * 1000,
  /** Candidates a standing answer may carry. */
  standingCandidates: 16,
  /** One candidate line of a standing answer (without `a=`). */
  candidateChars: 256,
  /** Members of a group call, the caller included (a full mesh: 15 pairs at most). */
  groupMembers: 6,
  /** Heap of the worker that decrypts and parses one mail. */
  parseHeapMb: 64,
  /** Wall time for decrypting and parsing one mail before its worker is replaced. */
  parseMs: 60_000,
} as const;

/** Longest allowed lifetime (expires - created) of a message of this kind. */
export function lifetimeLimitMs(kind: MessageKind): number {
  if (kind === 'message') return LIMITS.messageLifetimeMs;
  if (kind === 'announce') return LIMITS.announceLifetimeMs;
  if (kind === 'introduce' || kind === 'introduced') return LIMITS.introductionLifetimeMs;
  return LIMITS.signalLifetimeMs;
}

/** The longest delay Node's setTimeout honours; longer ones fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
