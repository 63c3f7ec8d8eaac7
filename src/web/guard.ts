/**
 * Who may talk to the local web page: pure checks on a request's Host,
 * Origin and token, before anything is read or answered.
 *
 *   - Host must name this server by loopback address or `localhost` with its
 *     port: a page of another site whose name was re-pointed at 127.0.0.1
 *     (DNS rebinding) sends its own name and is refused.
 *   - Origin, when the browser sends one, must be this page's own: another
 *     site's script cannot post to the API (CSRF) or read its answers.
 *   - Every API and event-stream request carries the token of the printed
 *     URL (`#t=...`, kept in the fragment so it never goes to a server or
 *     into a Referer). Only somebody who was shown the URL has it.
 *
 * A refused request gets 403 and an empty body, whatever it asked for.
 */
import { timingSafeEqual } from 'node:crypto';

export interface GuardRequest {
  host: string | undefined;
  origin: string | undefined;
  /** `Sec-Fetch-Site`, when the browser sends it. */
  fetchSite: string | undefined;
  /** The token the request carries (header or `t` query parameter), if any. */
  token: string | undefined;
  /** True for /api/...: the token is needed. */
  api: boolean;
}

export type GuardVerdict = { ok: true } | { ok: false; reason: 'host' | 'origin' | 'cross-site' | 'token' };

/** The Host values this server answers to. */
export function ownHosts(port: number): string[] {
  return [`127.0.0.1:${port}`, `localhost:${port}`];
}

export function checkRequest(req: GuardRequest, port: number, token: string): GuardVerdict {
  const hosts = ownHosts(port);
  if (!req.host || !hosts.includes(req.host.toLowerCase())) return { ok: false, reason: 'host' };
  if (req.origin !== undefined && !hosts.map((h) => `http://${h}`).includes(req.origin.toLowerCase())) return { ok: false, reason: 'origin' };
  if (req.fetchSite !== undefined && req.fetchSite !== 'same-origin' && req.fetchSite !== 'none') return { ok: false, reason: 'cross-site' };
  if (req.api && !sameToken(req.token, token)) return { ok: false, reason: 'token' };
  return { ok: true };
}

function sameToken(given: string | undefined, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
