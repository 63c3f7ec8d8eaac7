// System prerequisites for tests that run real daemons (Dovecot, Postfix,
// later coturn, iptables, ffmpeg). As root, missing Debian packages are
// installed with apt without prompts and without starting system-wide
// daemons; otherwise the error names the exact command to run.
import { execFileSync } from 'node:child_process';
import { existsSync, unlinkSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const POLICY_RC_D = '/usr/sbin/policy-rc.d';
const SEARCH_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Full path of an executable found on PATH or in the usual sbin/bin dirs, or undefined. */
export function findCommand(cmd: string): string | undefined {
  if (cmd.includes('/')) return existsSync(cmd) ? cmd : undefined;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SEARCH_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, cmd);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

function aptInstallCommand(packages: string[]): string {
  return (
    'sudo sh -c "apt-get update && ' +
    "echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections && " +
    `DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${packages.join(' ')}"`
  );
}

/**
 * Installs Debian packages non-interactively (root only): debconf
 * pre-answer for Postfix, and a temporary policy-rc.d that keeps the
 * packages from starting system-wide daemons (removed afterwards only if we
 * created it).
 */
export function aptInstall(packages: string[]): void {
  if (!isRoot()) {
    throw new Error(
      `Missing system packages: ${packages.join(' ')}. Install them with:\n  ${aptInstallCommand(packages)}`,
    );
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (file: string, args: string[], input?: string): void => {
    execFileSync(file, args, { env, input, stdio: [input === undefined ? 'ignore' : 'pipe', 'inherit', 'inherit'] });
  };
  let createdPolicy = false;
  if (!existsSync(POLICY_RC_D)) {
    writeFileSync(POLICY_RC_D, '#!/bin/sh\n# temporary: keep apt from starting daemons\nexit 101\n', { mode: 0o755 });
    createdPolicy = true;
  }
  try {
    run('apt-get', ['update']);
    run('debconf-set-selections', [], 'postfix postfix/main_mailer_type select No configuration\n');
    run('apt-get', ['install', '-y', '--no-install-recommends', ...packages]);
  } finally {
    if (createdPolicy) {
      try {
        unlinkSync(POLICY_RC_D);
      } catch {
        /* already gone */
      }
    }
  }
}

/**
 * Makes sure `cmd` is available; as root installs `debianPackage` if it is
 * not, otherwise throws an Error with the install command. Returns the
 * command's full path.
 */
export function requireCommand(cmd: string, debianPackage: string): string {
  const found = findCommand(cmd);
  if (found) return found;
  aptInstall([debianPackage]);
  const after = findCommand(cmd);
  if (!after) throw new Error(`Installed ${debianPackage} but ${cmd} is still not found`);
  return after;
}

/** Dovecot (IMAP + LMTP) and Postfix, as used by test/harness/mail-stack.ts. */
export function ensureMailServers(): void {
  if (existsSync('/usr/sbin/dovecot') && existsSync('/usr/sbin/postfix') && existsSync('/usr/lib/dovecot/lmtp')) return;
  aptInstall(['dovecot-imapd', 'dovecot-lmtpd', 'postfix']);
  if (!existsSync('/usr/sbin/dovecot') || !existsSync('/usr/sbin/postfix')) {
    throw new Error('dovecot/postfix still missing after apt-get install');
  }
}

/** Dovecot's Pigeonhole: Sieve at delivery and ManageSieve, for startMailStack({ sieve: true }). */
export function ensureSieve(): void {
  const have = () => existsSync('/usr/lib/dovecot/modules/lib90_sieve_plugin.so') && existsSync('/usr/lib/dovecot/managesieve-login');
  if (have()) return;
  if (!isRoot()) {
    throw new Error(`Dovecot's Sieve plugins are missing (Debian packages dovecot-sieve and dovecot-managesieved). Install them with:\n  ${aptInstallCommand(['dovecot-sieve', 'dovecot-managesieved'])}`);
  }
  aptInstall(['dovecot-sieve', 'dovecot-managesieved']);
  if (!have()) throw new Error('dovecot-sieve / dovecot-managesieved installed, but the Sieve plugin or managesieve-login is still missing');
}
