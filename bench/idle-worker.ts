/**
 * Figure 3's baseline, in a process of its own: a bare imapflow client
 * idling on the same server as the agent (the agent itself is measured from
 * outside by bench/idle.mjs). IMAP commands are counted by wrapping
 * ImapFlow.prototype.exec, which every imapflow command goes through.
 *
 *   node idle-worker.js bare IMAP_JSON SECONDS
 *
 * Prints one JSON line: CPU and commands during the idle window (from the
 * first IDLE + 2 s to the end), RSS at the end, commands in total.
 */
import { ImapFlow } from 'imapflow';

const [mode, arg, secondsText] = process.argv.slice(2);
const seconds = Number(secondsText);

let commands = 0;
const byCommand: Record<string, number> = {};
const proto = ImapFlow.prototype as unknown as { exec: (cmd: string, ...rest: unknown[]) => unknown };
const exec = proto.exec;
proto.exec = function (this: unknown, cmd: string, ...rest: unknown[]) {
  commands++;
  byCommand[cmd] = (byCommand[cmd] ?? 0) + 1;
  return exec.call(this, cmd, ...rest);
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function main(): Promise<void> {

  if (mode !== 'bare') throw new Error(`idle-worker: unknown mode ${mode} (only "bare")`);
  const client = new ImapFlow({ ...(JSON.parse(arg!) as object), logger: false, disableAutoIdle: true } as ConstructorParameters<typeof ImapFlow>[0]);
  client.on('error', () => undefined);
  await client.connect();
  await client.mailboxOpen('INBOX');
  void client.idle().catch(() => undefined);
  const stop = async (): Promise<void> => {
    await client.logout().catch(() => client.close());
  };
  await sleep(2_000);
  const startCommands = commands;
  const startCounts = { ...byCommand };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const cpu = process.cpuUsage(cpu0);
  const windowMs = performance.now() - t0;
  const rss = process.memoryUsage().rss;
  const during: Record<string, number> = {};
  for (const [k, v] of Object.entries(byCommand)) if (v !== (startCounts[k] ?? 0)) during[k] = v - (startCounts[k] ?? 0);
  process.stdout.write(
    JSON.stringify({
      mode,
      windowMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      rssBytes: rss,
      heapUsedBytes: process.memoryUsage().heapUsed,
      commandsAtStart: startCommands,
      commandsDuring: commands - startCommands,
      byCommandDuring: during,
      byCommandTotal: byCommand,
    }) + '\n',
  );
  await stop();
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(String((err as Error).stack ?? err) + '\n');
  process.exit(1);
});
