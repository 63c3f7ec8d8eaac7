/**
 * The identity a session is made with when a later connection must
 * reproduce it: its UDP port and DTLS certificate. The offerer's answer is
 * applied on a fresh connection (fresh-agent.ts), a kept answer's
 * connection is replaced (kept-answer.ts), a standing answer's identity is
 * one the caller already holds (standing.ts).
 */
import { PeerdialError } from '../errors.js';
import { type CallCertificate, createCallCertificate } from './certificate.js';
import { type AnswerOptions, type OfferOptions, PORT_RELEASE_TIMEOUT_MS, type SessionOptions } from './options.js';
import { freeUdpPort, pinPort } from './ports.js';
import { FRESH_OFFER_HINT } from './session-errors.js';

/** The options a session is made with, and the certificate made for it (the session removes it when it closes). */
export interface CallIdentity {
  sessionOpts: SessionOptions;
  ownCertificate: CallCertificate | undefined;
}

/** The offerer's identity: a pinned UDP port, and its certificate (made now unless given). */
export async function offererIdentity(opts: OfferOptions): Promise<CallIdentity> {
  const ice = await pinPort(opts.ice);
  const ownCertificate = opts.certificate ? undefined : await createCallCertificate();
  const certificate = opts.certificate ?? ownCertificate!;
  return { sessionOpts: { ...opts, ice, certificate }, ownCertificate };
}

/**
 * The answerer's identity: a standing answer's port and certificate, or for
 * a kept answer (`keep`) a pinned port and a certificate (made now unless
 * given); otherwise the options as they are.
 */
export async function answererIdentity(opts: AnswerOptions, keep: boolean): Promise<CallIdentity> {
  const standing = opts.standing;
  if (standing) {
    // the identity the caller already holds: its port (free again once the preparing connection let go), its certificate
    await portFreed(standing.port, opts.ice.bindAddress);
    const ice = { ...opts.ice, portRangeBegin: standing.port, portRangeEnd: standing.port };
    return { sessionOpts: { ...opts, ice, certificate: standing.certificate }, ownCertificate: undefined };
  }
  if (keep) {
    const ice = await pinPort(opts.ice);
    let ownCertificate: CallCertificate | undefined;
    let certificate = opts.certificate;
    if (!certificate) certificate = ownCertificate = await createCallCertificate();
    return { sessionOpts: { ...opts, ice, certificate }, ownCertificate };
  }
  return { sessionOpts: opts, ownCertificate: undefined };
}

/** Wait (at most PORT_RELEASE_TIMEOUT_MS) until `port` is free to bind again: a standing answer's port, after the connection that prepared it closed. */
async function portFreed(port: number, bindAddress: string | undefined): Promise<void> {
  const until = performance.now() + PORT_RELEASE_TIMEOUT_MS;
  while ((await freeUdpPort(port, bindAddress)) === undefined) {
    if (performance.now() > until) {
      throw new PeerdialError('SESSION_FAILED', `the standing answer's UDP port ${port} is taken by another program`, { hint: FRESH_OFFER_HINT });
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
