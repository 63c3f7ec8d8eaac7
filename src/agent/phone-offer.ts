/**
 * The caller's session steps, as the phone (phone.ts) carries them out for
 * an outgoing call: gather a session and its offer (with the answer made
 * from a standing one, for a one-mail call), then apply the answer that
 * comes back.
 */
import { createCallCertificate } from '../session/index.js';
import { addMappedCandidate } from './mapped-ice.js';
import { failureEvent, type OutgoingRecord } from './call-record.js';
import { pemFiles } from './call-certificate-files.js';
import { awaitConnected, iceFor, watchSession } from './phone-session.js';
import { standingAnswerFor } from './phone-standing.js';
import type { PhoneParts } from './phone-parts.js';

/** Gathering: a new session and its complete offer. */
export function makeOffer(p: PhoneParts, rec: OutgoingRecord): void {
  rec.attempts++;
  iceFor(p, rec)
    .then(async (ice) => (rec.sessions ?? p.sessions).createOffer({ ice, certificate: pemFiles((rec.certificate ??= await createCallCertificate())), ...(rec.media ? { media: rec.media } : {}), ...(rec.attempts > 1 ? { keepOfferConnection: false } : {}) }))
    .then(
      async ({ session, sdp }) => {
        rec.session = session;
        if (rec.m.done) {
          session.close('call ended');
          return;
        }
        watchSession(p, rec, session);
        const offer = rec.mapping ? addMappedCandidate(sdp, rec.mapping) : sdp;
        const answer = await standingAnswerFor(p, rec, offer);
        if (rec.m.done) return;
        p.feed(rec, answer ? { type: 'session-gathered-standing', sdp: offer, answer } : { type: 'session-gathered', sdp: offer });
      },
      (err) => p.feed(rec, { type: 'session-failed', reason: (err as Error).message }),
    )
    .catch((err) => p.feed(rec, { type: 'session-failed', reason: (err as Error).message }));
}

/** The callee's answer (mailed, or provisional from a standing one) applied to the caller's session. */
export function applyAnswer(p: PhoneParts, rec: OutgoingRecord, sdp: string, provisional: boolean | undefined): void {
  const session = rec.session!;
  const replacing = rec.standingId !== undefined && !provisional;
  try {
    session.acceptAnswer(sdp, provisional ? { provisional: true } : {});
    rec.peerSdp = sdp;
  } catch (err) {
    p.feed(rec, failureEvent(rec, err));
    return;
  }
  // a mailed answer replacing a standing one: connected() is awaited already
  if (!replacing) awaitConnected(p, rec, session, provisional ? rec.ringSeconds * 1000 : (p.o.connectTimeoutMs ?? 30_000));
}
