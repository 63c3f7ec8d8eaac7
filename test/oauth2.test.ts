/**
 * OAuth2 logins: XOAUTH2 / OAUTHBEARER against Dovecot (IMAP, and Postfix
 * submission through Dovecot SASL) whose oauth2 passdb asks a token
 * endpoint on 127.0.0.1 (RFC 7662 introspection) run by this test; the
 * device-code login (RFC 8628) and refresh against the same endpoint; the
 * config keys; and the mapping of providers' "no passwords here" answers.
 */
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { runCli, tempDir } from './harness/peers.js';
import { connectImap, probeImap } from '../src/mail/imap.js';
import { probeSmtp, sendRaw } from '../src/mail/smtp.js';
import { classifyNetError, refusesBasicAuth } from '../src/mail/errors.js';
import { TokenProvider, tokenKey } from '../src/mail/oauth2.js';
import { loadConfig, parseConfig, type ServerConfig } from '../src/config/config.js';
import { Account } from '../src/agent/account.js';
import { PeerdialError } from '../src/errors.js';

/** A token endpoint: device authorization, token (device code + refresh), introspection. */
class TokenServer {
  server = http.createServer((req, res) => this.handle(req, res));
  url = '';
  /** access tokens the introspection calls active */
  valid = new Set<string>(['good-token']);
  refreshTokens = new Set<string>();
  deviceCodes = new Map<string, number>();
  requests: { path: string; form: Record<string, string> }[] = [];
  private n = 0;

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  count(p: string, grant?: string): number {
    return this.requests.filter((r) => r.path === p && (!grant || r.form.grant_type === grant)).length;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const form = Object.fromEntries(new URLSearchParams(body));
      const p = new URL(req.url ?? '/', 'http://x').pathname;
      this.requests.push({ path: p, form });
      const json = (status: number, v: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(v));
      };
      if (req.method !== 'POST') return json(405, { error: 'invalid_request' });
      if (p === '/introspect') {
        return json(200, this.valid.has(form.token ?? '') ? { active: true, username: 'alice', scope: 'mail' } : { active: false });
      }
      if (form.client_id !== 'peerdial-test') return json(401, { error: 'invalid_client' });
      if (p === '/device') {
        const code = `dc-${++this.n}`;
        this.deviceCodes.set(code, 0);
        return json(200, { device_code: code, user_code: 'WDJB-MJHT', verification_uri: `${this.url}/activate`, expires_in: 60, interval: 1 });
      }
      if (p === '/token') {
        if (form.grant_type === 'urn:ietf:params:oauth:grant-type:device_code') {
          const polls = this.deviceCodes.get(form.device_code ?? '');
          if (polls === undefined) return json(400, { error: 'expired_token' });
          this.deviceCodes.set(form.device_code!, polls + 1);
          // the user "enters the code" after the first poll
          if (polls === 0) return json(400, { error: 'authorization_pending' });
          this.deviceCodes.delete(form.device_code!);
          return json(200, this.issue(true));
        }
        if (form.grant_type === 'refresh_token') {
          if (!this.refreshTokens.has(form.refresh_token ?? '')) return json(400, { error: 'invalid_grant', error_description: 'refresh token revoked' });
          return json(200, this.issue(false));
        }
        return json(400, { error: 'unsupported_grant_type' });
      }
      json(404, { error: 'not_found' });
    });
  }

  private issue(withRefresh: boolean): Record<string, unknown> {
    const access = `at-${++this.n}`;
    this.valid.add(access);
    const out: Record<string, unknown> = { access_token: access, token_type: 'Bearer', expires_in: 3600, scope: 'mail' };
    if (withRefresh) {
      const rt = `rt-${this.n}`;
      this.refreshTokens.add(rt);
      out.refresh_token = rt;
    }
    return out;
  }
}

let stack: MailStack;
let tokens: TokenServer;
let dir: string;
let caFile: string;

const server = (what: 'imap' | 'smtp', extra: Partial<ServerConfig> = {}): ServerConfig => ({
  host: '127.0.0.1',
  port: what === 'imap' ? stack.imapPort : stack.smtpPort,
  tls: 'starttls',
  user: 'alice',
  caFile,
  ...extra,
});

beforeAll(async () => {
  ensureMailServers();
  tokens = new TokenServer();
  await tokens.start();
  stack = await startMailStack({ users: ['alice'], oauth2: { introspectionUrl: `${tokens.url}/introspect` } });
  dir = await tempDir('oauth2');
  caFile = path.join(dir, 'ca.pem');
  await fs.writeFile(caFile, stack.ca);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await tokens?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('XOAUTH2 / OAUTHBEARER against Dovecot with token introspection', () => {
  it('IMAP: a token the endpoint accepts logs in; a rejected one is AUTH_FAILED', async () => {
    const before = tokens.count('/introspect');
    const { idle } = await probeImap({ server: server('imap'), accessToken: 'good-token' });
    expect(idle).toBe(true);
    expect(tokens.count('/introspect')).toBeGreaterThan(before);
    const err = await probeImap({ server: server('imap'), accessToken: 'stolen-token' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerdialError);
    expect((err as PeerdialError).code).toBe('AUTH_FAILED');
    // the password still works next to OAuth2
    const c = await connectImap({ server: server('imap'), password: stack.users.alice!.password });
    await c.logout();
  });

  it('SMTP (Postfix via Dovecot SASL): a good token logs in and sends; a rejected one is AUTH_FAILED', async () => {
    await probeSmtp({ server: server('smtp'), accessToken: 'good-token' });
    const err = await probeSmtp({ server: server('smtp'), accessToken: 'stolen-token' }).catch((e: unknown) => e);
    expect((err as PeerdialError).code).toBe('AUTH_FAILED');
    const { smtpTransport } = await import('../src/mail/smtp.js');
    const t = { server: server('smtp'), accessToken: 'good-token' };
    const transport = await smtpTransport(t);
    try {
      await sendRaw(transport, t, { from: 'alice@example.test', to: ['alice@example.test'] }, Buffer.from('From: alice@example.test\r\nTo: alice@example.test\r\nSubject: oauth2\r\n\r\nsent with XOAUTH2\r\n'));
    } finally {
      transport.close();
    }
  });

  it('peerdial init with --auth oauth2 --token-command checks both logins with the printed token', async () => {
    const config = path.join(dir, 'cmd', 'config.toml');
    const r = await runCli([
      '--config', config, 'init', '--email', 'alice@example.test', '--user', 'alice',
      '--auth', 'oauth2', '--token-command', 'echo good-token',
      '--imap-host', '127.0.0.1', '--imap-port', String(stack.imapPort), '--imap-tls', 'starttls',
      '--smtp-host', '127.0.0.1', '--smtp-port', String(stack.smtpPort), '--smtp-tls', 'starttls',
      '--ca-file', caFile, '--state-dir', path.join(dir, 'cmd', 'state'), '--stun', 'none',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('IMAP: ok: login ok');
    expect(r.stderr).toContain('SMTP: ok: login ok');
    const text = await fs.readFile(config, 'utf8');
    expect(text).toContain('auth = "oauth2"');
    expect(text).toContain('token_command = "echo good-token"');
    expect(text).not.toContain('password');
    const bad = await runCli([
      '--config', path.join(dir, 'cmd-bad', 'config.toml'), 'init', '--email', 'alice@example.test', '--user', 'alice',
      '--auth', 'oauth2', '--token-command', 'echo revoked-token',
      '--imap-host', '127.0.0.1', '--imap-port', String(stack.imapPort), '--imap-tls', 'starttls',
      '--smtp-host', '127.0.0.1', '--smtp-port', String(stack.smtpPort), '--smtp-tls', 'starttls',
      '--ca-file', caFile, '--state-dir', path.join(dir, 'cmd-bad', 'state'), '--stun', 'none',
    ]);
    expect(bad.code).toBe(77);
    expect(bad.stderr).toContain('AUTH_FAILED');
  });
});

describe('built-in refresh: peerdial login (device code) and later runs', () => {
  it('init saves the config without a login, login stores the refresh token 0600, later runs refresh access tokens', async () => {
    const config = path.join(dir, 'dev', 'config.toml');
    const stateDir = path.join(dir, 'dev', 'state');
    const init = await runCli([
      '--config', config, 'init', '--email', 'alice@example.test', '--user', 'alice',
      '--auth', 'oauth2', '--oauth2-provider', 'custom', '--oauth2-client-id', 'peerdial-test',
      '--oauth2-token-url', `${tokens.url}/token`, '--oauth2-device-url', `${tokens.url}/device`, '--oauth2-scope', 'mail',
      '--imap-host', '127.0.0.1', '--imap-port', String(stack.imapPort), '--imap-tls', 'starttls',
      '--smtp-host', '127.0.0.1', '--smtp-port', String(stack.smtpPort), '--smtp-tls', 'starttls',
      '--ca-file', caFile, '--state-dir', stateDir, '--stun', 'none',
    ]);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stderr).toContain('not checked yet: log in with peerdial login alice@example.test');
    expect(init.stdout).toContain('Next: peerdial login alice@example.test');

    const polls = tokens.count('/token', 'urn:ietf:params:oauth:grant-type:device_code');
    const login = await runCli(['--config', config, 'login', 'alice@example.test']);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stderr).toContain(`open ${tokens.url}/activate`);
    expect(login.stderr).toContain('enter the code: WDJB-MJHT');
    // one authorization_pending, then the tokens: the server's interval was kept
    expect(tokens.count('/token', 'urn:ietf:params:oauth:grant-type:device_code') - polls).toBe(2);
    const file = path.join(stateDir, 'accounts', 'alice@example.test', 'oauth2-tokens.json');
    expect(login.stdout).toContain(file);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(await fs.readFile(file, 'utf8')) as { tokens: Record<string, { refreshToken: string }> };
    const [entry] = Object.values(stored.tokens);
    expect(entry!.refreshToken).toMatch(/^rt-\d+$/);
    expect(await fs.readFile(config, 'utf8')).not.toContain(entry!.refreshToken);

    // a later run: the account fetches an access token with the refresh token and logs in
    const refreshes = tokens.count('/token', 'refresh_token');
    const cfg = await loadConfig(config);
    const acc = await Account.open(cfg);
    const imap = await connectImap(await acc.imapTarget());
    await imap.logout();
    await probeSmtp(await acc.smtpTarget());
    // IMAP and SMTP share one login and the cached access token
    expect(tokens.count('/token', 'refresh_token') - refreshes).toBe(1);

    // expiry: the cached token is used until shortly before it runs out, then refreshed
    let now = Date.now();
    const provider = new TokenProvider(acc.stateDir, { now: () => now });
    const first = await provider.accessToken(cfg.accounts[0]!.imap, 'IMAP');
    expect(await provider.accessToken(cfg.accounts[0]!.imap, 'IMAP')).toBe(first);
    now += 3600_000;
    const second = await provider.accessToken(cfg.accounts[0]!.imap, 'IMAP');
    expect(second).not.toBe(first);
    expect(tokens.count('/token', 'refresh_token') - refreshes).toBe(3);
    await probeImap({ server: cfg.accounts[0]!.imap, accessToken: second });

    // a revoked refresh token: AUTH_FAILED that says to log in again
    tokens.refreshTokens.clear();
    now += 3600_000;
    const err = await provider.accessToken(cfg.accounts[0]!.imap, 'IMAP').catch((e: unknown) => e);
    expect((err as PeerdialError).code).toBe('AUTH_FAILED');
    expect((err as PeerdialError).hint).toContain('peerdial login');
  });

  it('no login yet: SECRET_UNAVAILABLE naming peerdial login', async () => {
    const s: ServerConfig = server('imap', { user: 'carol@example.test', auth: 'oauth2', oauth2: { provider: 'custom', clientId: 'peerdial-test', tokenUrl: `${tokens.url}/token`, deviceUrl: `${tokens.url}/device` } });
    const p = new TokenProvider(path.join(dir, 'nobody'));
    const err = await p.accessToken(s, 'IMAP').catch((e: unknown) => e);
    expect((err as PeerdialError).code).toBe('SECRET_UNAVAILABLE');
    expect((err as PeerdialError).hint).toBe('Run: peerdial login carol@example.test');
    expect(tokenKey(s)).toContain(`${tokens.url}/token`);
  });

  it('login on an account without oauth2_provider says what to set', async () => {
    const r = await runCli(['--config', path.join(dir, 'cmd', 'config.toml'), 'login']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('oauth2_provider');
  });
});

describe('config keys for OAuth2', () => {
  const base = (imap: string) => `
[[accounts]]
email = "a@example.org"
[accounts.imap]
host = "imap.example.org"
port = 993
${imap}
[accounts.smtp]
host = "smtp.example.org"
port = 465
password_command = "pass mail"
`;
  const errorOf = (text: string): string => {
    try {
      parseConfig(text, '/x/config.toml');
    } catch (err) {
      return (err as Error).message;
    }
    return 'no error';
  };

  it('reads token_command and the built-in providers, and writes them back', () => {
    const a = parseConfig(base('auth = "oauth2"\ntoken_command = "oauth2-token alice"'), '/x/config.toml').accounts[0]!;
    expect(a.imap.auth).toBe('oauth2');
    expect(a.imap.oauth2).toEqual({ tokenCommand: 'oauth2-token alice' });
    expect(a.smtp.auth).toBeUndefined();
    const g = parseConfig(base('auth = "oauth2"\noauth2_provider = "google"\noauth2_client_id = "123.apps"\noauth2_client_secret = "s"'), '/x/config.toml').accounts[0]!;
    expect(g.imap.oauth2).toEqual({ provider: 'google', clientId: '123.apps', clientSecret: 's' });
  });

  it('names the key that is wrong', () => {
    expect(errorOf(base('auth = "oauth"'))).toContain('accounts[0].imap.auth must be one of: password, oauth2');
    expect(errorOf(base('auth = "oauth2"'))).toContain('accounts[0].imap.token_command or oauth2_provider is needed');
    expect(errorOf(base('auth = "oauth2"\ntoken_command = "x"\npassword_command = "y"'))).toContain('accounts[0].imap.password_command does not go with auth = "oauth2"');
    expect(errorOf(base('auth = "oauth2"\ntoken_command = "x"\noauth2_provider = "google"'))).toContain('accounts[0].imap.oauth2_provider does not go with token_command');
    expect(errorOf(base('auth = "oauth2"\noauth2_provider = "google"'))).toContain('accounts[0].imap.oauth2_client_id is missing');
    expect(errorOf(base('auth = "oauth2"\noauth2_provider = "custom"\noauth2_client_id = "c"\noauth2_device_url = "https://id.example.org/device"'))).toContain('accounts[0].imap.oauth2_token_url is missing');
    expect(errorOf(base('auth = "oauth2"\noauth2_provider = "custom"\noauth2_client_id = "c"\noauth2_token_url = "http://id.example.org/token"\noauth2_device_url = "https://id.example.org/device"'))).toContain('accounts[0].imap.oauth2_token_url must be an https URL');
    expect(errorOf(base('password_command = "x"\noauth2_client_id = "c"'))).toContain('accounts[0].imap.oauth2_client_id needs auth = "oauth2"');
  });
});

describe('providers that refuse the account password', () => {
  // What the servers said, as imapflow and nodemailer hand it over.
  const imapErr = (response: string, serverResponseCode?: string) =>
    Object.assign(new Error('Command failed'), { authenticationFailed: true, response, ...(serverResponseCode ? { serverResponseCode } : {}) });
  const smtpErr = (responseCode: number, response: string) =>
    Object.assign(new Error(`Invalid login: ${response}`), { code: 'EAUTH', responseCode, response, command: 'AUTH PLAIN' });

  const refusals: [string, Error][] = [
    ['Gmail IMAP, app password', imapErr('[ALERT] Application-specific password required: https://support.google.com/accounts/answer/185833 (Failure)', 'ALERT')],
    ['Gmail IMAP, web login', imapErr('[WEBALERT https://accounts.google.com/signin/continue?sarp=1] Web login required.', 'WEBALERT')],
    ['Gmail IMAP, browser', imapErr('[ALERT] Please log in via your web browser: https://support.google.com/mail/accounts/answer/78754 (Failure)', 'ALERT')],
    ['Gmail SMTP 534-5.7.9', smtpErr(534, '534-5.7.9 Application-specific password required. Learn more at\n534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor d2-20020a05600c34c200b0040e3bbf58a6sm1234567wmq.0 - gsmtp')],
    ['Gmail SMTP 535-5.7.8', smtpErr(535, '535-5.7.8 Username and Password not accepted. For more information, go to\n535 5.7.8  https://support.google.com/mail/?p=BadCredentials t8-20020a170906d3c800b00a2ad64f5d9asm1234567ejz.1 - gsmtp')],
    ['Microsoft SMTP basic auth disabled', smtpErr(535, '535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [AM0PR02CA0123.eurprd02.prod.outlook.com 2024-01-02T10:00:00.000Z 08DC0F0E1B2C3D4E]')],
    ['Microsoft SMTP AUTH off for the tenant', smtpErr(535, '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.')],
    ['Microsoft IMAP BasicAuthBlocked', imapErr('AUTHENTICATE failed. BasicAuthBlocked')],
    ['IMAP basic auth disabled', imapErr('[AUTHENTICATIONFAILED] AUTHENTICATE failed: basic auth disabled for this account', 'AUTHENTICATIONFAILED')],
  ];

  for (const [label, err] of refusals) {
    it(`${label}: AUTH_FAILED naming app passwords and auth = "oauth2"`, () => {
      const e = classifyNetError(err, 'IMAP', 'imap.example.com', 993);
      expect(e.code).toBe('AUTH_FAILED');
      expect(e.message).toContain('does not take the account password here');
      expect(e.hint).toContain('app password');
      expect(e.hint).toContain('auth = "oauth2"');
      expect(e.hint).toContain('peerdial login');
    });
  }

  it('a plain wrong password keeps the ordinary message', () => {
    const e = classifyNetError(imapErr('[AUTHENTICATIONFAILED] Authentication failed.', 'AUTHENTICATIONFAILED'), 'IMAP', 'h', 143);
    expect(e.code).toBe('AUTH_FAILED');
    expect(e.message).toContain('refused the login');
    expect(refusesBasicAuth('[AUTHENTICATIONFAILED] Authentication failed.')).toBe(false);
    expect(refusesBasicAuth('535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6')).toBe(false);
  });

  it('an SMTP 534 refusal while sending is AUTH_FAILED, not a permanent failure of the mail', async () => {
    const fake = { sendMail: () => Promise.reject(smtpErr(534, '534-5.7.9 Application-specific password required.')) };
    const err = await sendRaw(fake as never, { server: server('smtp') }, { from: 'a@x', to: ['b@x'] }, Buffer.from('x')).catch((e: unknown) => e);
    expect((err as PeerdialError).code).toBe('AUTH_FAILED');
  });
});
