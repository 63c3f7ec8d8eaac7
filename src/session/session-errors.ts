/**
 * The errors a session fails with, and what they tell the user to do: most
 * failures are cured by a fresh offer (an answer can only be used once).
 */
import { PeerdialError, isPeerdialError } from '../errors.js';
import { errorText } from './channel.js';

export const FRESH_OFFER_HINT =
  'the direct connection could not be set up; call again so that a fresh offer is sent ' +
  '(an answer can only be used once, with the offer it answers)';

/** Did this failure come from that race (and so call for a fresh offer)? */
export function isAnswerRace(err: unknown): boolean {
  return err instanceof Error && /libdatachannel race/.test(err.message);
}

export function abortedError(signal: AbortSignal): PeerdialError {
  return new PeerdialError('ABORTED', 'cancelled', { cause: signal.reason });
}

export function toSessionError(err: unknown, what: string): PeerdialError {
  if (isPeerdialError(err)) return err;
  return new PeerdialError('SESSION_FAILED', `${what}: ${errorText(err)}`, { hint: FRESH_OFFER_HINT, cause: err });
}

/**
 * Does a fresh offer cure this session failure (the phone makes one more,
 * OFFERS_PER_CALL)? Anything but a timeout, which means there is no path.
 * Read from the message, as it also comes from a session process: a timeout
 * says "within" (connectTimeoutError) or "timed out"; the other failures
 * (the setRemoteDescription race, a stalled DTLS handshake, a lost
 * connection) say neither.
 */
export function freshOfferCures(reason: string): boolean {
  return !/within|timed? ?out|timeout/i.test(reason);
}

/** connected() ran out of time: no common address family, or no path at all. */
export function connectTimeoutError(noCommonFamily: string | undefined, timeoutMs: number): PeerdialError {
  return noCommonFamily
    ? new PeerdialError('SESSION_FAILED', `no direct connection: ${noCommonFamily}`, {
        hint: 'give one side the missing address family (dual-stack), or configure a TURN relay reachable over both',
      })
    : new PeerdialError('SESSION_FAILED', `no direct connection within ${Math.round(timeoutMs / 1000)} s`, {
        hint:
          'the peer may be unreachable from here (NAT or firewall: symmetric NAT on both sides, or symmetric ' +
          'and port-restricted); check the STUN/TURN settings or configure a TURN relay, or a port mapping ' +
          '(UPnP/NAT-PMP) on one side, then call again so that a fresh offer is sent',
      });
}

/**
 * The peer's description was refused by setRemoteDescription. `raced`: the
 * connection failed while it was applied. That is the PR 1612 race: ICE can
 * connect (on the peer's checks) inside setRemoteDescription, before the
 * remote description is stored; DTLS then rejects the peer's certificate
 * ("unknown CA": libdatachannel refuses every certificate while it has no
 * remote description, with or without disableFingerprintVerification), the
 * transports close, and adding the description's candidates throws "without
 * ICE transport". Both sides fail; only a fresh offer helps. Measured with
 * bench/connect-race.mjs (two processes, mail-like delays, a busy machine):
 * 5-20% of calls.
 */
export function remoteRefusedError(type: 'offer' | 'answer', err: unknown, raced: boolean): PeerdialError {
  const message = raced
    ? `the connection failed while the ${type} was applied (libdatachannel race: DTLS checked the peer's certificate before the ${type}'s fingerprint was stored)`
    : `the ${type} was refused: ${errorText(err)}`;
  return new PeerdialError('SESSION_FAILED', message, { hint: FRESH_OFFER_HINT, cause: err });
}
