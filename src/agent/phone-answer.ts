/**
 * The callee's session step, as the phone (phone.ts) carries it out for an
 * incoming call it accepted: a session answering the caller's offer, on a
 * standing answer's kept identity when the offer names one (one mail), or
 * on a fresh call certificate (the answer goes back by mail).
 */
import { createCallCertificate } from '../session/index.js';
import { addMappedCandidate } from './mapped-ice.js';
import type { IncomingRecord } from './call-record.js';
import { pemFiles } from './call-certificate-files.js';
import { awaitConnected, iceFor, watchSession } from './phone-session.js';
import { honourStanding } from './phone-standing.js';
import type { PhoneParts } from './phone-parts.js';

/** Answering: a new session for the caller's offer, then its answer handed to the machine. */
export async function answerOffer(p: PhoneParts, inc: IncomingRecord): Promise<void> {
  if (!inc.offer.sdp) {
    p.feed(inc, { type: 'session-failed', reason: 'the offer carries no SDP' });
    return;
  }
  try {
    const media = p.o.answerMedia?.(inc.offer);
    const ice = await iceFor(p, inc);
    // Keep the answer usable while it travels back by mail (behind a filtering NAT the
    // callee's ICE would give up after ~40 s), media calls too.
    const keepAnswerMs = p.o.calleeConnectTimeoutMs ?? 180_000;
    const standing = media ? undefined : honourStanding(p, inc);
    if (standing) inc.standingKept = standing.certificate;
    else inc.certificate ??= await createCallCertificate();
    // Delta Chat's call app opens no channel of its own: this side opens the control channel
    const opensControl = (await p.o.account.contacts.byEmail(inc.peer))?.deltaChat === true;
    const answered = await (inc.sessions ?? p.sessions).acceptOffer(inc.offer.sdp, {
      ice,
      ...(opensControl ? { opensControl } : {}),
      ...(media ? { media } : {}),
      ...(keepAnswerMs ? { keepAnswerMs } : {}),
      // the standing answer's kept identity brings its own certificate
      ...(standing ? { standing: standing.kept } : { certificate: pemFiles(inc.certificate!) }),
    });
    inc.peerSdp = inc.offer.sdp;
    const session = answered.session;
    const sdp = inc.mapping ? addMappedCandidate(answered.sdp, inc.mapping) : answered.sdp;
    inc.session = session;
    if (inc.m.done) {
      session.close('call ended');
      return;
    }
    watchSession(p, inc, session);
    awaitConnected(p, inc, session, p.o.calleeConnectTimeoutMs ?? 180_000);
    // one mail: the caller holds this answer already
    p.feed(inc, standing ? { type: 'session-answered-standing' } : { type: 'session-answered', sdp });
  } catch (err) {
    p.feed(inc, { type: 'session-failed', reason: (err as Error).message });
  }
}
