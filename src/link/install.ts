/**
 * Scripts that tell a running agent "the address changed" from the places
 * where the system learns it first: ppp's ip-up.d, NetworkManager's
 * dispatcher and dhcpcd's hooks. Each runs `peerdial address-changed` in
 * the background and never fails the network bring-up.
 * `hookScripts` is pure; `installHookScripts` writes them.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

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

/** Quotes for /bin/sh: one word, nothing expanded. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command line the scripts run: this node and this peerdial, with the
 * config file of the account (hooks run as root, the agent as its user).
 */
export function addressChangedCommand(opts: { node: string; bin: string; config: string; account?: string }): string {
  return [opts.node, opts.bin, '--config', opts.config, ...(opts.account ? ['--account', opts.account] : []), '--quiet', 'address-changed'].map(shellQuote).join(' ');
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

/** Writes the scripts into the given directories (root-owned 0755 where we are root). */
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
