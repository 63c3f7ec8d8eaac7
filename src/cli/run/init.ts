/** `peerdial init` (descriptor in ../init.ts). */
import { createInterface } from 'node:readline/promises';
import { init as initAccount, type ServersToConfirm } from '../../api/init.js';
import { printJson, status, type GlobalOptions } from '../output.js';
import type { ServerSettings } from '../../config/providers.js';

type Tls = ServerSettings['tls'];

function server(host?: string, port?: string, tls?: string): Partial<ServerSettings> | undefined {
  if (!host && !port && !tls) return undefined;
  return {
    ...(host ? { host } : {}),
    ...(port ? { port: Number(port) } : {}),
    ...(tls ? { tls: tls as Tls } : {}),
  };
}

export async function init(g: GlobalOptions, o: Record<string, any>): Promise<void> {
  const stun = o.stun === undefined ? undefined : o.stun === 'none' ? [] : String(o.stun).split(',').map((s: string) => s.trim()).filter(Boolean);
  const imap = server(o.imapHost, o.imapPort, o.imapTls);
  const smtp = server(o.smtpHost, o.smtpPort, o.smtpTls);
  const r = await initAccount({
    ...(g.config ? { config: g.config } : {}),
    email: o.email,
    ...(o.name ? { name: o.name } : {}),
    ...(o.user ? { user: o.user } : {}),
    secret: {
      ...(o.passwordCommand ? { command: o.passwordCommand } : {}),
      ...(o.passwordEnv ? { env: o.passwordEnv } : {}),
      ...(o.passwordPrompt ? { prompt: true } : {}),
    },
    ...(imap ? { imap } : {}),
    ...(smtp ? { smtp } : {}),
    ...(o.auth === 'oauth2' || o.tokenCommand || o.oauth2Provider
      ? {
          auth: 'oauth2' as const,
          oauth2: {
            ...(o.tokenCommand ? { tokenCommand: o.tokenCommand } : {}),
            ...(o.oauth2Provider ? { provider: o.oauth2Provider } : {}),
            ...(o.oauth2ClientId ? { clientId: o.oauth2ClientId } : {}),
            ...(o.oauth2ClientSecret ? { clientSecret: o.oauth2ClientSecret } : {}),
            ...(o.oauth2TokenUrl ? { tokenUrl: o.oauth2TokenUrl } : {}),
            ...(o.oauth2DeviceUrl ? { deviceUrl: o.oauth2DeviceUrl } : {}),
            ...(o.oauth2Scope ? { scope: o.oauth2Scope } : {}),
          },
        }
      : {}),
    ...(o.caFile ? { caFile: o.caFile } : {}),
    folder: o.folder,
    ...(o.stateDir ? { stateDir: o.stateDir } : {}),
    ...(o.whoMayCall ? { whoMayCall: o.whoMayCall } : {}),
    ...(o.answer ? { answer: o.answer } : {}),
    ...(o.ringSeconds ? { ringSeconds: Number(o.ringSeconds) } : {}),
    ...(stun ? { iceServers: stun } : {}),
    ...(o.turn ? { turn: o.turn as string[] } : {}),
    ...(o.turnPasswordCommand || o.turnPasswordEnv || o.turnPasswordFile
      ? {
          turnSecret: {
            ...(o.turnPasswordCommand ? { command: String(o.turnPasswordCommand) } : {}),
            ...(o.turnPasswordEnv ? { env: String(o.turnPasswordEnv) } : {}),
            ...(o.turnPasswordFile ? { file: String(o.turnPasswordFile) } : {}),
          },
        }
      : {}),
    ...(o.bindAddress ? { bindAddress: o.bindAddress } : {}),
    ...(o.downloadDir ? { downloadDir: o.downloadDir } : {}),
    ...(o.sieve === true ? { sieve: true } : o.sieve === false ? { sieve: false } : o.sieve !== undefined ? { sieve: Number(o.sieve) } : {}),
    ...(o.sieve === undefined && process.stdin.isTTY && process.stderr.isTTY ? { askSieve: (text: string) => askYes(text) } : {}),
    skipCheck: Boolean(o.skipCheck),
    force: Boolean(o.force),
    yes: Boolean(o.yes),
    ...(process.stdin.isTTY && process.stderr.isTTY ? { confirm: (servers: ServersToConfirm) => askYes(`${servers.text}\nSend your password to these servers? [y/N] `) } : {}),
    onProgress: (e) => {
      if (e.ok === undefined) status(g, `${e.step}...`);
      else status(g, `  ${e.step}: ${e.ok ? 'ok' : 'FAILED'}: ${e.detail}`);
    },
  });
  if (g.json) return printJson(r);
  console.log(`Saved ${r.configFile}`);
  if (r.checks.some((c) => c.skipped)) console.log(`Next: peerdial login ${r.email}   (OAuth2: the logins are checked after it)`);
  console.log(`Your identity key for ${r.email}: ${r.fingerprint}`);
  console.log('Next: peerdial contacts add NAME EMAIL --key THEIR-KEY.asc (or peerdial invite), then peerdial announce NAME');
}

/** One question on the terminal; only "y" or "yes" is a yes. */
async function askYes(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^\s*y(es)?\s*$/i.test(await rl.question(question));
  } finally {
    rl.close();
  }
}
