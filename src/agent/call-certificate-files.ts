/**
 * A call's certificate as the phone (phone.ts) hands it on: the two files
 * session options carry, and which certificate a call's DTLS runs on.
 */
import type { CallCertificate } from '../session/index.js';
import type { AnyRecord, IncomingRecord } from './call-record.js';

/** A call certificate as session options carry it: its two files only (they cross to a session host). */
export function pemFiles(c: CallCertificate): { certPemFile: string; keyPemFile: string } {
  return { certPemFile: c.certPemFile, keyPemFile: c.keyPemFile };
}

/** The certificate this call's DTLS (and so its TLS lane) runs on: its own, or a standing answer's. */
export function callCertificate(rec: AnyRecord): CallCertificate | undefined {
  return rec.certificate ?? (rec.direction === 'in' ? (rec as IncomingRecord).standingKept : undefined);
}
