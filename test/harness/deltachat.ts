/**
 * Delta Chat core for tests: the version the npm registry offers today
 * (`@deltachat/stdio-rpc-server` 2.57, installed by `.ci/run` with
 * `npm install --no-save`: see there why it is not in package.json) or an older one that
 * `.ci/run` installs beside the project (`.tmp/deltachat-VERSION`, with its
 * own JSON-RPC client), for settings the newest core no longer has
 * (`delete_server_after`).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { startDeltaChat } from '@deltachat/stdio-rpc-server';
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

/** Start the core the npm registry offers today, keeping its accounts in `dir`; says how to install it when it is missing. */
export async function startCore(dir: string): Promise<DeltaChat> {
  let core: { startDeltaChat: typeof startDeltaChat };
  try {
    core = await import('@deltachat/stdio-rpc-server');
  } catch (err) {
    throw new Error(
      'Delta Chat core is not installed for the tests (.ci/run installs it); install it with:\n' +
        '  npm install --no-save @deltachat/stdio-rpc-server@2.57.0 @deltachat/jsonrpc-client@2.57.0',
      { cause: err },
    );
  }
  return core.startDeltaChat(dir, { muteStdErr: true, disableEnvPath: true });
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

/**
 * A Delta Chat account and a peerdial peer that know each other by vCard
 * (no SecureJoin): Delta Chat's own card is imported into peerdial
 * (`contacts import-vcard`, introduced, a Delta Chat contact), peerdial's
 * card into Delta Chat (`importVcard`), and Delta Chat opens the 1:1 chat
 * (an accepted chat, so a call from peerdial rings there). Returns the
 * Delta Chat contact id and chat id of the peerdial user.
 */
export async function introduceByVcard(
  d: DeltaChat,
  account: number,
  peer: { configFile: string; email: string },
  dir: string,
  cli: (args: string[]) => Promise<{ code: number | null; stdout: string; stderr: string }>,
  opts: { name: string; answer?: 'auto-answer' | 'ring' | 'deny' },
): Promise<{ contactId: number; chatId: number; imported: string }> {
  const { promises: fs } = await import('node:fs');
  const theirs = path.join(dir, `${opts.name}-deltachat.vcf`);
  await fs.writeFile(theirs, await d.rpc.makeVcard(account, [1]));
  const imported = await cli(['--config', peer.configFile, 'contacts', 'import-vcard', theirs, '--name', opts.name, ...(opts.answer ? ['--answer', opts.answer] : [])]);
  if (imported.code !== 0) throw new Error(`import-vcard failed: ${imported.stderr}`);
  const ours = path.join(dir, `${opts.name}-peerdial.vcf`);
  const exported = await cli(['--config', peer.configFile, 'contacts', 'export-vcard', '--output', ours]);
  if (exported.code !== 0) throw new Error(`export-vcard failed: ${exported.stderr}`);
  const [contactId] = await d.rpc.importVcard(account, ours);
  if (contactId === undefined) throw new Error('Delta Chat imported no contact from peerdial\'s vCard');
  const chatId = await d.rpc.createChatByContactId(account, contactId);
  return { contactId, chatId, imported: imported.stdout };
}
