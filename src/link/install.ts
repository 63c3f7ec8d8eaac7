/**
 * Scripts that tell a running agent "the address changed" from the places
 * where the system learns it first: ppp's ip-up.d, NetworkManager's
 * dispatcher and dhcpcd's hooks. Each runs `peerdial address-changed` in
 * the background and never fails the network bring-up.
 *
 * These hooks run as root; the user's node, peerdial and config are the
 * user's to change. So root runs only `setpriv` (root's own, from util-linux),
 * which becomes the user (uid, gid, groups, environment, no new privileges)
 * before anything of the user's is even looked up; peerdial then tells the
 * agent through its control socket. Nothing the user can write runs as root,
 * and the hooks are never made to run peerdial as root.
 * `hookScripts` is pure; `installHookScripts` writes them.
 */
import { promises as fs, statSync } from 'node:fs';
import path from 'node:path';
import { PeerdialError } from '../errors.js';

export type HookKind = 'ppp' | 'networkmanager' | 'dhcpcd';

export interface HookScript {
  kind: HookKind;
  /** File name inside the hook directory. */
  name: string;
  text: string;
}

/** Default hook directories (Debian and most others). */
export const DEFAULT_HOOK_DIRS: Record<HookKind, string> = {
  ppp: '/etc/ppp/ip-up.d',
  networkmanager: '/etc/NetworkManager/dispatcher.d',
  dhcpcd: '/usr/lib/dhcpcd/dhcpcd-hooks',
};

/** Where util-linux puts setpriv. */
export const SETPRIV_PATHS = ['/usr/bin/setpriv', '/bin/setpriv'];

/** Quotes for /bin/sh: one word, nothing expanded. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The user the hooks run peerdial as. */
export interface HookUser {
  uid: number;
  gid: number;
}

/**
 * A root-owned setpriv that only root can change; MISSING_PACKAGE when there
 * is none (the hooks would otherwise have to run the user's code as root).
 */
export function findSetpriv(candidates: string[] = SETPRIV_PATHS): string {
  for (const p of candidates) {
    try {
      const st = statSync(p);
      if (st.isFile() && st.uid === 0 && (st.mode & 0o022) === 0) return p;
    } catch {
      // not here
    }
  }
  throw new PeerdialError('MISSING_PACKAGE', `No root-owned setpriv (${candidates.join(', ')}): the hooks need it to run peerdial as you, not as root.`, {
    hint: 'Install util-linux (apt install util-linux), then run peerdial hooks install again.',
  });
}

/**
 * The command line the scripts run: setpriv becomes the user, then this
 * node and this peerdial run with the config file of the account.
 */
export function addressChangedCommand(opts: { node: string; bin: string; config: string; account?: string; user: HookUser; setpriv: string }): string {
  if (!Number.isInteger(opts.user.uid) || opts.user.uid <= 0 || !Number.isInteger(opts.user.gid) || opts.user.gid < 0) {
    throw new PeerdialError('USAGE', `The hooks would run peerdial as uid ${opts.user.uid}: they run it as the user whose agent it tells, never as root.`, {
      hint: 'Run the agent as an ordinary user and install the hooks from that user\'s shell with sudo, or name the user: peerdial hooks install --user NAME',
    });
  }
  const drop = [opts.setpriv, `--reuid=${opts.user.uid}`, `--regid=${opts.user.gid}`, '--init-groups', '--reset-env', '--no-new-privs', '--'];
  const run = [opts.node, opts.bin, '--config', opts.config, ...(opts.account ? ['--account', opts.account] : []), '--quiet', 'address-changed'];
  return [...drop, ...run].map(shellQuote).join(' ');
}

const HEADER = '# Installed by `peerdial hooks install`: tells a running peerdial agent that\n# this machine\'s address changed, so it re-announces to its contacts.\n# Remove this file to stop it.';

export function hookScripts(command: string): HookScript[] {
  const run = `( ${command} >/dev/null 2>&1 & )`;
  return [
    {
      kind: 'ppp',
      // run-parts skips names with dots
      name: 'peerdial',
      text: `#!/bin/sh\n${HEADER}\n# pppd runs it with: interface tty speed local-address remote-address ipparam\n${run}\nexit 0\n`,
    },
    {
      kind: 'networkmanager',
      name: '90-peerdial',
      text: `#!/bin/sh\n${HEADER}\n# NetworkManager runs it with: interface action\ncase "$2" in\n  up|down|dhcp4-change|dhcp6-change|connectivity-change|vpn-up|vpn-down)\n    ${run}\n    ;;\nesac\nexit 0\n`,
    },
    {
      kind: 'dhcpcd',
      // sourced by dhcpcd-run-hooks: no `exit` here
      name: '90-peerdial',
      text: `#!/bin/sh\n${HEADER}\n# dhcpcd-run-hooks sources it with $reason set.\ncase "$reason" in\n  BOUND|BOUND6|RENEW|RENEW6|REBIND|REBIND6|REBOOT|REBOOT6|INFORM|INFORM6|ROUTERADVERT|EXPIRE|EXPIRE6|NOCARRIER|CARRIER|STATIC)\n    ${run}\n    ;;\nesac\n`,
    },
  ];
}

export interface InstalledHook {
  kind: HookKind;
  file: string;
}

/** Writes the scripts into the given directories (owned by whoever installs them, 0755: only the owner writes). */
export async function installHookScripts(command: string, dirs: Partial<Record<HookKind, string>>): Promise<InstalledHook[]> {
  const out: InstalledHook[] = [];
  for (const s of hookScripts(command)) {
    const dir = dirs[s.kind];
    if (!dir) continue;
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, s.name);
    const tmp = `${file}.tmp-${process.pid}`;
    await fs.writeFile(tmp, s.text, { mode: 0o755 });
    await fs.chmod(tmp, 0o755); // umask must not take the x bits
    await fs.rename(tmp, file);
    out.push({ kind: s.kind, file });
  }
  return out;
}
