/**
 * Delta Chat core for tests: the version the npm registry offers today
 * (`@deltachat/stdio-rpc-server`, a devDependency) or an older one that
 * `.ci/run` installs beside the project (`.tmp/deltachat-VERSION`, with its
 * own JSON-RPC client), for settings the newest core no longer has
 * (`delete_server_after`).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startDeltaChat } from '@deltachat/stdio-rpc-server';
import type { MailStack } from './mail-stack.js';

export type DeltaChat = Awaited<ReturnType<typeof startDeltaChat>>;

const ROOT = path.resolve(import.meta.dirname, '..', '..');

/**
 * Start an older core installed by `.ci/run` (with its own JSON-RPC client:
 * the newest client waits for events with a method older cores lack);
 * throws with the install line when it is missing.
 */
export async function startOlderCore(dir: string, version: string): Promise<DeltaChat> {
  const prefix = path.join(ROOT, '.tmp', `deltachat-${version}`);
  const entry = path.join(prefix, 'node_modules', '@deltachat', 'stdio-rpc-server', 'index.js');
  const bin = path.join(prefix, 'node_modules', '@deltachat', `stdio-rpc-server-${process.platform}-${process.arch}`, 'deltachat-rpc-server');
  if (!existsSync(entry) || !existsSync(bin)) {
    throw new Error(
      `Delta Chat core ${version} is not installed for the tests; install it with:\n` +
        `  npm install --prefix .tmp/deltachat-${version} --no-audit --no-fund --no-package-lock @deltachat/stdio-rpc-server@${version} @deltachat/jsonrpc-client@${version}`,
    );
  }
  const older = (await import(pathToFileURL(entry).href)) as { startDeltaChat: typeof startDeltaChat };
  const before = process.env.DELTA_CHAT_RPC_SERVER;
  process.env.DELTA_CHAT_RPC_SERVER = bin;
  try {
    return await older.startDeltaChat(dir, { muteStdErr: true });
  } finally {
    if (before === undefined) delete process.env.DELTA_CHAT_RPC_SERVER;
    else process.env.DELTA_CHAT_RPC_SERVER = before;
  }
}

/** Start the core the npm registry offers today (the devDependency), keeping its accounts in `dir`. */
export async function startCore(dir: string): Promise<DeltaChat> {
  return startDeltaChat(dir, { muteStdErr: true, disableEnvPath: true });
}

/** Add and configure a Delta Chat account for one of the mail stack's users (STARTTLS, the stack's self-signed certificate). */
export async function deltaChatAccount(d: DeltaChat, stack: MailStack, name: string): Promise<number> {
  const u = stack.users[name]!;
  const id = await d.rpc.addAccount();
  await d.rpc.addOrUpdateTransport(id, {
    addr: u.email,
    password: u.password,
    imapServer: stack.host,
    imapPort: stack.imapPort,
    imapFolder: null,
    imapSecurity: 'starttls',
    imapUser: u.user,
    smtpServer: stack.host,
    smtpPort: stack.smtpPort,
    smtpSecurity: 'starttls',
    smtpUser: u.user,
    smtpPassword: null,
    certificateChecks: 'acceptInvalidCertificates',
  });
  return id;
}

/** Stop a core: its IO first, then the process (the client's last event request may meet a closed pipe: not a test's business). */
export async function stopCore(d: DeltaChat | undefined): Promise<void> {
  if (!d) return;
  await d.rpc.stopIoForAllAccounts().catch(() => undefined);
  (d.transport as unknown as { input?: NodeJS.WritableStream }).input?.on('error', () => undefined);
  d.close();
}
