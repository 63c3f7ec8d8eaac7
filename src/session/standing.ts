/**
 * How a callee makes a standing answer (one-mail calls, wire/standing.ts):
 * a UDP port picked and pinned, a DTLS certificate of its own, and a
 * connection on both that gathers its candidates and is closed again. What
 * it showed (ICE credentials, fingerprint, candidates) is the standing
 * answer; the port, certificate and credentials are kept (StandingKept) so
 * that the answer made when the offer comes (acceptOffer with `standing`)
 * has exactly that identity and those candidates.
 *
 * The connection is made by the session factory, so with isolated sessions
 * it runs in a session host like any call's (remote.ts).
 */
import { PeerdialError } from '../errors.js';
import { createCallCertificate, type CallCertificate } from './certificate.js';
import type { StandingKept } from './options.js';
import { pinPort } from './ports.js';
import { standingFromDescription, type StandingIdentity } from './standing-sdp.js';
import type { SessionFactory } from './surface.js';
import type { IceConfig } from './types.js';

export interface PreparedStanding {
  /** What goes into the standing answer. */
  identity: StandingIdentity;
  /** What the callee keeps to answer with it (give it to acceptOffer as `standing`). */
  kept: StandingKept;
  /** The certificate's files: remove them when the standing answer is released or its call has ended. */
  certificate: CallCertificate;
}

export async function prepareStanding(sessions: SessionFactory, ice: IceConfig, opts: { gatherTimeoutMs?: number } = {}): Promise<PreparedStanding> {
  const pinned = await pinPort(ice);
  const certificate = await createCallCertificate();
  try {
    // only the files: the options may cross to a session host process
    const files = { certPemFile: certificate.certPemFile, keyPemFile: certificate.keyPemFile };
    const { session, sdp } = await sessions.createOffer({ ice: pinned, certificate: files, ...(opts.gatherTimeoutMs ? { gatherTimeoutMs: opts.gatherTimeoutMs } : {}) });
    session.close('standing answer prepared');
    const identity = standingFromDescription(sdp);
    if (!identity) throw new PeerdialError('SESSION_FAILED', 'the connection for a standing answer gathered no candidate or has no SHA-256 fingerprint');
    return {
      identity,
      kept: { iceUfrag: identity.iceUfrag, icePwd: identity.icePwd, port: pinned.portRangeBegin!, certificate: files },
      certificate,
    };
  } catch (err) {
    certificate.remove();
    throw err;
  }
}
