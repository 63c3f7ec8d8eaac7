/**
 * OAuth2 access tokens for IMAP and SMTP (XOAUTH2 / OAUTHBEARER):
 *
 * - token_command: a command prints a token (like msmtp passwordeval);
 * - built-in refresh: `peerdial login` runs the device-code flow (RFC 8628)
 *   once and stores the refresh token (store/tokens.ts); afterwards access
 *   tokens are fetched from the token endpoint when the cached one expires.
 *
 * Every HTTP exchange goes through an injectable fetch, so tests point it
 * at a token endpoint on 127.0.0.1.
 */
import { PeerdialError } from '../errors.js';
import type { OAuth2Settings, ServerConfig } from '../config/config.js';
import { runSecretCommand } from '../config/secret.js';
import { TokenStore } from '../store/tokens.js';

export type Fetch = typeof fetch;

interface Endpoints {
  deviceUrl: string;
  tokenUrl: string;
  scope: string;
}

/** The built-in providers' endpoints (device flow + token) and the scope mail access needs. */
export const OAUTH2_PROVIDERS: Record<'google' | 'microsoft', Endpoints> = {
  google: {
    deviceUrl: 'https://oauth2.googleapis.com/device/code',
    tokenUrl: 'https://oauth2.googleapis.com/token',
    scope: 'https://mail.google.com/',
  },
  microsoft: {
    deviceUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/devicecode',
    tokenUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/token',
    scope: 'offline_access https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send',
  },
};

export function endpointsOf(o: OAuth2Settings): Endpoints {
  const base = o.provider && o.provider !== 'custom' ? OAUTH2_PROVIDERS[o.provider] : undefined;
  const deviceUrl = o.deviceUrl ?? base?.deviceUrl;
  const tokenUrl = o.tokenUrl ?? base?.tokenUrl;
  if (!deviceUrl || !tokenUrl) {
    throw new PeerdialError('CONFIG_INVALID', 'oauth2_provider = "custom" needs oauth2_token_url and oauth2_device_url.');
  }
  return { deviceUrl, tokenUrl, scope: o.scope ?? base?.scope ?? '' };
}

/** IMAP and SMTP of one account usually share one login: one refresh token per user and token endpoint. */
export function tokenKey(server: ServerConfig): string {
  const o = server.oauth2 ?? {};
  return `${server.user} ${endpointsOf(o).tokenUrl} ${o.clientId ?? ''}`;
}

export interface TokenResponse {
  accessToken: string;
  /** ms since epoch */
  expiresAt: number;
  refreshToken?: string;
  scope?: string;
}

interface Ctx {
  fetch?: Fetch;
  now?: () => number;
}

async function postForm(url: string, form: Record<string, string>, ctx: Ctx): Promise<{ status: number; body: Record<string, unknown> }> {
  const f = ctx.fetch ?? fetch;
  let res: Response;
  try {
    res = await f(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(form).toString(),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new PeerdialError('TCP_FAILED', `OAuth2: could not reach ${url}: ${(err as Error).message}`, {
      hint: 'Check the network and the oauth2_*_url settings.',
      cause: err,
    });
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new PeerdialError('AUTH_FAILED', `OAuth2: ${url} answered ${res.status} without JSON: ${text.slice(0, 200)}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new PeerdialError('AUTH_FAILED', `OAuth2: ${url} answered ${res.status} with unexpected JSON.`);
  }
  return { status: res.status, body: body as Record<string, unknown> };
}

const s = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const n = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined);

function clientForm(o: OAuth2Settings): Record<string, string> {
  return { client_id: o.clientId ?? '', ...(o.clientSecret ? { client_secret: o.clientSecret } : {}) };
}

function tokenFrom(body: Record<string, unknown>, now: number, url: string): TokenResponse {
  const accessToken = s(body.access_token);
  if (!accessToken) throw new PeerdialError('AUTH_FAILED', `OAuth2: ${url} gave no access_token.`);
  const t: TokenResponse = { accessToken, expiresAt: now + (n(body.expires_in) ?? 3600) * 1000 };
  const refresh = s(body.refresh_token);
  const scope = s(body.scope);
  if (refresh) t.refreshToken = refresh;
  if (scope) t.scope = scope;
  return t;
}

function oauthError(body: Record<string, unknown>): string {
  const e = s(body.error) ?? 'error';
  const d = s(body.error_description);
  return d ? `${e}: ${d}` : e;
}

/** Redeems a refresh token. A refused one (invalid_grant) means: log in again. */
export async function refreshAccessToken(o: OAuth2Settings, refreshToken: string, ctx: Ctx = {}): Promise<TokenResponse> {
  const ep = endpointsOf(o);
  const now = (ctx.now ?? Date.now)();
  const { status, body } = await postForm(ep.tokenUrl, { grant_type: 'refresh_token', refresh_token: refreshToken, ...clientForm(o), ...(ep.scope ? { scope: ep.scope } : {}) }, ctx);
  if (status !== 200 || body.error) {
    throw new PeerdialError('AUTH_FAILED', `OAuth2: the token endpoint refused the stored refresh token (${oauthError(body)}).`, {
      hint: 'Log in again with: peerdial login',
    });
  }
  return tokenFrom(body, now, ep.tokenUrl);
}

export interface DevicePrompt {
  verificationUri: string;
  verificationUriComplete?: string;
  userCode: string;
  expiresIn: number;
}

export interface DeviceLoginOptions extends Ctx {
  /** Shows the user where to go and what to type. */
  onPrompt: (p: DevicePrompt) => void;
  sleep?: (ms: number) => Promise<void>;
  /** Upper bound on token polls, whatever expires_in says. Default 200. */
  maxPolls?: number;
}

/** RFC 8628: ask for a device code, show it, poll the token endpoint at the server's interval. */
export async function deviceLogin(o: OAuth2Settings, opts: DeviceLoginOptions): Promise<TokenResponse> {
  const ep = endpointsOf(o);
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = opts.now ?? Date.now;
  const { status, body } = await postForm(ep.deviceUrl, { ...clientForm(o), ...(ep.scope ? { scope: ep.scope } : {}) }, opts);
  const deviceCode = s(body.device_code);
  const userCode = s(body.user_code);
  // Google's older endpoint says verification_url
  const verificationUri = s(body.verification_uri) ?? s(body.verification_url);
  if (status !== 200 || !deviceCode || !userCode || !verificationUri) {
    throw new PeerdialError('AUTH_FAILED', `OAuth2: the device authorization endpoint refused: ${body.error ? oauthError(body) : `HTTP ${status}`}.`, {
      hint: 'Check oauth2_client_id (and that the app may use the device flow) and oauth2_scope.',
    });
  }
  const expiresIn = n(body.expires_in) ?? 600;
  const prompt: DevicePrompt = { verificationUri, userCode, expiresIn };
  const complete = s(body.verification_uri_complete);
  if (complete) prompt.verificationUriComplete = complete;
  opts.onPrompt(prompt);
  let interval = Math.max(0, n(body.interval) ?? 5);
  const deadline = now() + expiresIn * 1000;
  const maxPolls = opts.maxPolls ?? 200;
  for (let i = 0; i < maxPolls && now() < deadline; i++) {
    await sleep(interval * 1000);
    const r = await postForm(ep.tokenUrl, { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: deviceCode, ...clientForm(o) }, opts);
    if (r.status === 200 && !r.body.error) return tokenFrom(r.body, now(), ep.tokenUrl);
    const err = s(r.body.error);
    if (err === 'authorization_pending') continue;
    if (err === 'slow_down') {
      interval += 5;
      continue;
    }
    throw new PeerdialError('AUTH_FAILED', `OAuth2: the login was not completed (${oauthError(r.body)}).`, {
      hint: err === 'access_denied' ? 'The request was declined in the browser; run peerdial login again to retry.' : 'Run peerdial login again.',
    });
  }
  throw new PeerdialError('AUTH_FAILED', 'OAuth2: the code was not entered in time.', { hint: 'Run peerdial login again and enter the code sooner.' });
}

/**
 * Access tokens for one account's servers: from token_command, or from
 * the stored refresh token, cached in memory until shortly before expiry.
 */
export class TokenProvider {
  readonly store: TokenStore;
  private cache = new Map<string, { token: string; expiresAt: number }>();

  constructor(stateDir: string, private readonly ctx: Ctx & { env?: NodeJS.ProcessEnv; commandTtlMs?: number } = {}) {
    this.store = new TokenStore(stateDir);
  }

  private now(): number {
    return (this.ctx.now ?? Date.now)();
  }

  /** Forgets a cached token (e.g. after the server refused it). */
  invalidate(server: ServerConfig): void {
    this.cache.delete(this.cacheKey(server));
  }

  private cacheKey(server: ServerConfig): string {
    const o = server.oauth2 ?? {};
    return o.tokenCommand ? `cmd ${o.tokenCommand}` : tokenKey(server);
  }

  async accessToken(server: ServerConfig, what: string): Promise<string> {
    const o = server.oauth2;
    if (server.auth !== 'oauth2' || !o) throw new PeerdialError('CONFIG_INVALID', `${what} does not use auth = "oauth2".`);
    const key = this.cacheKey(server);
    const hit = this.cache.get(key);
    if (hit && hit.expiresAt - 60_000 > this.now()) return hit.token;
    if (o.tokenCommand) {
      const token = (await runSecretCommand(o.tokenCommand, what, this.ctx.env, 'token command')).trim();
      // the command knows the expiry, we do not: ask again after a few minutes
      this.cache.set(key, { token, expiresAt: this.now() + (this.ctx.commandTtlMs ?? 5 * 60_000) + 60_000 });
      return token;
    }
    const stored = await this.store.get(tokenKey(server));
    if (!stored) {
      throw new PeerdialError('SECRET_UNAVAILABLE', `No OAuth2 login for ${what} yet.`, {
        hint: `Run: peerdial login ${server.user.includes('@') ? server.user : ''}`.trimEnd(),
      });
    }
    const t = await refreshAccessToken(o, stored.refreshToken, this.ctx);
    if (t.refreshToken && t.refreshToken !== stored.refreshToken) {
      // rotating refresh tokens: the old one may be void now
      await this.store.set(tokenKey(server), { ...stored, refreshToken: t.refreshToken, obtained: new Date(this.now()).toISOString() });
    }
    this.cache.set(key, { token: t.accessToken, expiresAt: t.expiresAt });
    return t.accessToken;
  }

  /** `peerdial login`: the device flow for one server's login; stores the refresh token. */
  async login(server: ServerConfig, opts: Omit<DeviceLoginOptions, 'fetch' | 'now'>): Promise<TokenResponse> {
    const o = server.oauth2;
    if (!o?.provider) throw new PeerdialError('USAGE', `${server.host} does not use a built-in OAuth2 login (oauth2_provider).`);
    const t = await deviceLogin(o, { ...this.ctx, ...opts });
    if (!t.refreshToken) {
      throw new PeerdialError('AUTH_FAILED', 'OAuth2: the token endpoint gave no refresh token.', {
        hint: 'Add the scope that grants one (Microsoft: offline_access) to oauth2_scope.',
      });
    }
    await this.store.set(tokenKey(server), {
      refreshToken: t.refreshToken,
      tokenUrl: endpointsOf(o).tokenUrl,
      user: server.user,
      ...(t.scope ? { scope: t.scope } : {}),
      obtained: new Date(this.now()).toISOString(),
    });
    this.cache.set(tokenKey(server), { token: t.accessToken, expiresAt: t.expiresAt });
    return t;
  }
}
