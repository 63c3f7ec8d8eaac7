/**
 * The peer's mailed offer or answer, checked before a session applies it:
 * what description-check.ts refuses, and an answer that would make both
 * sides DTLS clients. Both throw SESSION_FAILED with what to do next.
 */
import { PeerdialError } from '../errors.js';
import { isLoopbackOnly } from '../wire/peer-ip.js';
import { checkRemoteDescription } from './description-check.js';
import { dtlsSetups, forceOffererDtlsClient } from './sdp.js';
import { FRESH_OFFER_HINT } from './session-errors.js';

/** The mailed offer, checked and made active (the offerer becomes the DTLS client). */
export function usableOffer(offerSdp: string, bindAddress: string | undefined): string {
  const check = checkRemoteDescription(offerSdp, 'offer', { loopback: isLoopbackOnly(bindAddress) });
  if (!check.ok) throw new PeerdialError('SESSION_FAILED', `unusable offer: ${check.reason}`, { hint: FRESH_OFFER_HINT });
  return forceOffererDtlsClient(check.sdp);
}

/** The mailed answer, checked: the description to apply. */
export function usableAnswer(answerSdp: string, bindAddress: string | undefined): string {
  const check = checkRemoteDescription(answerSdp, 'answer', { loopback: isLoopbackOnly(bindAddress) });
  if (!check.ok) throw new PeerdialError('SESSION_FAILED', `unusable answer: ${check.reason}`, { hint: FRESH_OFFER_HINT });
  if (dtlsSetups(answerSdp).includes('active')) {
    // Our offer went out as active; an active answer would make both sides DTLS clients.
    throw new PeerdialError('SESSION_FAILED', 'the answer also wants to be the DTLS client (a=setup:active)', {
      hint: FRESH_OFFER_HINT,
    });
  }
  return check.sdp;
}
