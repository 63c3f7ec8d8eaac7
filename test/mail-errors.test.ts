/**
 * Which layer failed, in words a user can act on (issue 12): real IMAP and
 * SMTP clients (the ones `init` and the agent use) against servers on
 * loopback that fail in one layer each. A TLS failure is TLS_FAILED, never
 * TCP_FAILED; hints name the flag (`--ca-file`, `--imap-tls`); nothing the
 * user sees carries OpenSSL's strings or a library code such as ESOCKET; the
 * README sections the hints point to exist.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PeerdialError } from '../src/errors.js';
import { probeImap } from '../src/mail/imap.js';
import { probeSmtp } from '../src/mail/smtp.js';
import { createCallCertificate, type CallCertificate } from '../src/session/index.js';
import type { ServerConfig } from '../src/config/config.js';

const RAW = /SSL routines|error:[0-9A-F]{8}|ESOCKET|ECONNREFUSED|ERR_SSL|wrong version number|self[- ]signed certificate|ClosedAfterConnect/i;
const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const sections = new Set([...README.matchAll(/^##+ (.+)$/gm)].map((m) => m[1]!.trim()));

let cert: CallCertificate;
const servers: net.Server[] = [];

async function listen(server: net.Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

function target(port: number, mode: ServerConfig['tls']): { server: ServerConfig; password: string } {
  return { server: { host: '127.0.0.1', port, tls: mode, user: 'alice' } as ServerConfig, password: 'x' };
}

async function failure(p: Promise<unknown>): Promise<PeerdialError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PeerdialError);
  return err as PeerdialError;
}

/** What a user reads: message and hint, and every README section a hint names exists. */
function readable(err: PeerdialError): void {
  const shown = `${err.message}\n${err.hint ?? ''}`;
  expect(shown).not.toMatch(RAW);
  for (const m of shown.matchAll(/README, "([^"]+)"/g)) expect(sections, m[1]).toContain(m[1]);
}

beforeAll(async () => {
  cert = await createCallCertificate();
});

afterAll(async () => {
  for (const s of servers) s.close();
  cert?.remove();
});

describe('init talks to a server that fails in one layer', () => {
  it('IMAP over TLS to a server whose certificate nobody here trusts: TLS_FAILED, and the hint names --ca-file', async () => {
    const port = await listen(tls.createServer({ cert: readFileSync(cert.certPemFile), key: readFileSync(cert.keyPemFile) }, (s) => s.write('* OK ready\r\n')));
    const err = await failure(probeImap(target(port, 'tls')));
    expect(err.code).toBe('TLS_FAILED');
    expect(err.message).toMatch(/not signed by an authority this machine trusts/);
    expect(err.hint).toContain('--ca-file');
    readable(err);
  });

  it('IMAP with tls = "tls" to a plain-text port: TLS_FAILED (not TCP_FAILED), and the hint names --imap-tls', async () => {
    const port = await listen(net.createServer((s) => s.end('* OK plain IMAP here\r\n')));
    const err = await failure(probeImap(target(port, 'tls')));
    expect(err.code).toBe('TLS_FAILED');
    expect(err.hint).toContain('--imap-tls');
    readable(err);
  });

  it('SMTP over TLS to a server whose certificate nobody here trusts: TLS_FAILED with --ca-file', async () => {
    const port = await listen(tls.createServer({ cert: readFileSync(cert.certPemFile), key: readFileSync(cert.keyPemFile) }, (s) => s.write('220 ready\r\n')));
    const err = await failure(probeSmtp(target(port, 'tls')));
    expect(err.code).toBe('TLS_FAILED');
    expect(err.hint).toContain('--ca-file');
    readable(err);
  });

  it('SMTP to a port nobody listens on: TCP_FAILED in plain words', async () => {
    const port = await listen(net.createServer());
    servers.pop()!.close();
    await new Promise((r) => setTimeout(r, 50));
    const err = await failure(probeSmtp(target(port, 'tls')));
    expect(err.code).toBe('TCP_FAILED');
    expect(err.message).toContain('refused');
    readable(err);
  });
});
