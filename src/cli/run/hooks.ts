/** The implementation of the commands described in ../hooks.ts, loaded when one runs. */
import { existsSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { openConfig } from '../../api/open.js';
import { pickAccount } from '../../config/config.js';
import { accountStateDir } from '../../store/paths.js';
import { connectControl } from '../../agent/control.js';
import { PeerdialError } from '../../errors.js';
import { addressChangedCommand, DEFAULT_HOOK_DIRS, findSetpriv, installHookScripts, type HookKind, type HookUser } from '../../link/install.js';
import { printJson, status, type GlobalOptions } from '../output.js';

export async function install(g: GlobalOptions, o: { ppp?: string; networkmanager?: string; dhcpcd?: string; user?: string }): Promise<void> {
  const cfg = await openConfig(g);
  const acc = pickAccount(cfg, g.account);
  const chosen: Partial<Record<HookKind, string>> = {};
  const explicit = o.ppp || o.networkmanager || o.dhcpcd;
  for (const kind of ['ppp', 'networkmanager', 'dhcpcd'] as const) {
    const dir = explicit ? o[kind] : existsSync(DEFAULT_HOOK_DIRS[kind]) ? DEFAULT_HOOK_DIRS[kind] : undefined;
    if (dir) chosen[kind] = path.resolve(dir);
    else if (!explicit) status(g, `skipped ${kind}: ${DEFAULT_HOOK_DIRS[kind]} does not exist here`);
  }
  if (Object.keys(chosen).length === 0) {
    throw new PeerdialError('USAGE', 'No hook directory to install into.', { hint: 'Name one: --ppp DIR, --networkmanager DIR or --dhcpcd DIR.' });
  }
  const user = hookUser(o.user, cfg.file);
  const command = addressChangedCommand({ node: process.execPath, bin: path.resolve(process.argv[1] ?? 'peerdial'), config: cfg.file, ...(g.account ? { account: acc.email } : {}), user, setpriv: findSetpriv() });
  const done = await installHookScripts(command, chosen);
  if (g.json) return printJson(done);
  for (const d of done) console.log(`installed ${d.kind} hook: ${d.file}`);
}

export async function addressChanged(g: GlobalOptions): Promise<void> {
  const cfg = await openConfig(g);
  const acc = pickAccount(cfg, g.account);
  const client = await connectControl(accountStateDir(cfg.stateDir, acc.email));
  if (!client) {
    throw new PeerdialError('AGENT_NOT_RUNNING', `No agent of ${acc.email} is running; nobody to tell.`, { hint: 'Start it: peerdial agent (or peerdial service install); it reads the addresses when it starts.' });
  }
  try {
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new PeerdialError('SERVICE_FAILED', `The agent of ${acc.email} (pid ${client.pid}) did not answer within 5 s.`, { hint: 'Check it with: peerdial status' })), 5000).unref(),
    );
    let result: unknown;
    try {
      result = await Promise.race([client.request('address-changed'), timeout]);
    } catch (err) {
      if (err instanceof PeerdialError && /unknown request/.test(err.message)) {
        throw new PeerdialError('SERVICE_FAILED', `The running agent of ${acc.email} (pid ${client.pid}) does not take "address-changed": it is older than this peerdial.`, {
          hint: 'Restart it (peerdial service restart, or stop and start peerdial agent) so that it runs this version.',
        });
      }
      throw err;
    }
    if (g.json) return printJson({ told: true, pid: client.pid, result });
    status(g, `told the agent of ${acc.email} (pid ${client.pid}) that the address changed`);
  } finally {
    client.close();
  }
}

/** Who the hooks run as: --user, else whoever ran sudo, else the owner of the config file. */
function hookUser(named: string | undefined, configFile: string): HookUser {
  if (named !== undefined) {
    const id = (flag: string) => {
      try {
        return Number(execFileSync('id', [flag, named], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      } catch {
        throw new PeerdialError('USAGE', `No user ${named} on this machine.`, { hint: 'Name the user who runs the agent: --user NAME (or a uid).' });
      }
    };
    return { uid: id('-u'), gid: id('-g') };
  }
  const sudoUid = Number(process.env.SUDO_UID);
  const sudoGid = Number(process.env.SUDO_GID);
  if (process.env.SUDO_UID && Number.isInteger(sudoUid) && Number.isInteger(sudoGid)) return { uid: sudoUid, gid: sudoGid };
  const st = statSync(configFile);
  return { uid: st.uid, gid: st.gid };
}
