/**
 * Delta Chat core for tests: the version the npm registry offers today
 * (`@deltachat/stdio-rpc-server`, a devDependency) or an older one that
 * `.ci/run` installs beside the project (`.tmp/deltachat-VERSION`), for
 * settings the newest core no longer has (`delete_server_after`).
 * The JSON-RPC client is always the devDependency's; the methods the
 * tests call exist in both.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { startDeltaChat } from '@deltachat/stdio-rpc-server';
import type { MailStack } from './mail-stack.js';

export type DeltaChat = Awaited<ReturnType<typeof startDeltaChat>>;

const ROOT = path.resolve(import.meta.dirname, '..', '..');

/** The rpc-server binary of an older core installed by `.ci/run`; throws with the install line when missing. */
export function olderDeltaChatServer(version: string): string {
  const prefix = path.join(ROOT, '.tmp', `deltachat-${version}`);
  const bin = path.join(prefix, 'node_modules', '@deltachat', `stdio-rpc-server-${process.platform}-${process.arch}`, 'deltachat-rpc-server');
  if (!existsSync(bin)) {
    throw new Error(
      `Delta Chat core ${version} is not installed for the tests; install it with:\n` +
        `  npm install --prefix .tmp/deltachat-${version} --no-audit --no-fund --no-package-lock @deltachat/stdio-rpc-server@${version}`,
    );
  }
  return bin;
}

/** Start a core (the devDependency's, or `serverPath`) keeping its accounts in `dir`. */
export async function startCore(dir: string, serverPath?: string): Promise<DeltaChat> {
  const before = process.env.DELTA_CHAT_RPC_SERVER;
  if (serverPath) process.env.DELTA_CHAT_RPC_SERVER = serverPath;
  try {
    return await startDeltaChat(dir, { muteStdErr: true, disableEnvPath: !serverPath });
  } finally {
    if (before === undefined) delete process.env.DELTA_CHAT_RPC_SERVER;
    else process.env.DELTA_CHAT_RPC_SERVER = before;
  }
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
