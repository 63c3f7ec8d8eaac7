/**
 * A DTLS certificate per call: a fresh self-signed ECDSA P-256 certificate
 * and its key as PEM files in a private temporary directory (0700, files
 * 0600), for node-datachannel's `certificatePemFile`/`keyPemFile`.
 *
 * Why: a kept answer (Session.acceptOffer's keepAnswerMs) is served by
 * several PeerConnections in turn, and every one of them must show the
 * fingerprint that the mailed answer carries. A certificate is made for one
 * call and removed with it, so two calls never share a fingerprint.
 *
 * Keys and signatures come from Node's WebCrypto; the X.509 encoding from
 * @peculiar/x509 (which needs the reflect-metadata polyfill; both are loaded
 * only when a certificate is made).
 */
import { X509Certificate, KeyObject, randomBytes, webcrypto } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PeerdialError } from '../errors.js';

export interface CallCertificate {
  /** PEM file of the self-signed certificate. */
  certPemFile: string;
  /** PEM file of its private key (PKCS#8). */
  keyPemFile: string;
  /** The private directory holding both (mode 0700). */
  dir: string;
  /** SHA-256 fingerprint as in SDP (`AB:CD:...`), upper case. */
  fingerprint: string;
  /** Delete the directory and both files; safe to call more than once. */
  remove(): void;
}

export interface CertificateOptions {
  /** Parent of the private directory; default the system temp directory. */
  parentDir?: string;
  /** Validity in days from now (backdated by one hour for clock skew); default 7. */
  days?: number;
  /** Subject common name; default "peerdial". */
  commonName?: string;
}

type X509Module = typeof import('@peculiar/x509');
let x509Module: Promise<X509Module> | undefined;

async function loadX509(): Promise<X509Module> {
  x509Module ??= (async () => {
    try {
      await import('reflect-metadata');
      const x509 = await import('@peculiar/x509');
      x509.cryptoProvider.set(webcrypto as unknown as Crypto);
      return x509;
    } catch (err) {
      x509Module = undefined;
      throw new PeerdialError('MISSING_PACKAGE', `cannot make a DTLS certificate: ${(err as Error).message ?? String(err)}`, {
        hint: 'reinstall peerdial with its dependencies (npm install): @peculiar/x509 and reflect-metadata are needed',
        cause: err,
      });
    }
  })();
  return x509Module;
}

/** Make a fresh self-signed certificate + key for one call. */
export async function createCallCertificate(opts: CertificateOptions = {}): Promise<CallCertificate> {
  const x509 = await loadX509();
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const days = opts.days ?? 7;
  const serial = randomBytes(8);
  serial[0] = serial[0]! & 0x7f; // positive INTEGER
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: `CN=${opts.commonName ?? 'peerdial'}`,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + days * 86_400_000),
    signingAlgorithm: alg,
    keys,
  });
  const certPem = cert.toString('pem');
  const keyPem = KeyObject.from(keys.privateKey as webcrypto.CryptoKey).export({ type: 'pkcs8', format: 'pem' }) as string;
  const fingerprint = new X509Certificate(certPem).fingerprint256.toUpperCase();

  const dir = mkdtempSync(join(opts.parentDir ?? tmpdir(), 'peerdial-cert-'));
  chmodSync(dir, 0o700);
  const certPemFile = join(dir, 'cert.pem');
  const keyPemFile = join(dir, 'key.pem');
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // gone already
    }
  };
  try {
    writeFileSync(keyPemFile, keyPem, { mode: 0o600, flag: 'wx' });
    writeFileSync(certPemFile, certPem, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    remove();
    throw err;
  }
  return { certPemFile, keyPemFile, dir, fingerprint, remove };
}
