/**
 * The files that make `peerdial agent` a service: a systemd unit (user or
 * system) and a launchd agent plist. Pure: they take absolute paths and
 * return text; src/service/install.ts writes them and runs the managers.
 */
import path from 'node:path';

export const SERVICE_NAME = 'peerdial';
export const SYSTEMD_UNIT_FILE = `${SERVICE_NAME}.service`;
export const LAUNCHD_LABEL = 'org.peerdial.agent';
export const LAUNCHD_PLIST_FILE = `${LAUNCHD_LABEL}.plist`;

export type LogFormat = 'text' | 'json';

export interface ServiceSpec {
  /** Absolute path of the node binary. */
  node: string;
  /** Absolute path of bin/peerdial.js. */
  bin: string;
  /** Absolute path of the config file the agent reads. */
  configFile: string;
  /** Account to run, when the config has several. */
  account?: string;
  logFormat: LogFormat;
  /** PATH for the agent (password commands run with it). */
  pathEnv: string;
  /** Directories the agent writes (state, downloads); absolute. */
  writableDirs: string[];
}

export interface SystemdSpec extends ServiceSpec {
  /** A system unit running as `user` instead of a user unit. */
  system?: { user: string };
  restartSec?: number;
}

function requireAbsolute(what: string, p: string): void {
  if (!path.isAbsolute(p)) throw new Error(`${what} must be an absolute path, got ${JSON.stringify(p)}`);
  if (/[\u0000-\u001f\u007f]/.test(p)) throw new Error(`${what} contains a control character: ${JSON.stringify(p)}`);
}

/** The agent's argument list, shared by both managers. */
export function agentArgs(spec: ServiceSpec): string[] {
  return [
    spec.bin,
    '--config',
    spec.configFile,
    ...(spec.account ? ['--account', spec.account] : []),
    'agent',
    ...(spec.logFormat === 'json' ? ['--log-format', 'json'] : []),
  ];
}

/**
 * One word of a systemd command line or path list: specifiers (%) and
 * variables ($) escaped, double-quoted when it holds a space, a quote or a
 * backslash (systemd.syntax(7): C-style escapes inside quotes).
 */
export function systemdWord(s: string, opts: { dollar?: boolean } = {}): string {
  let v = s.replace(/%/g, '%%');
  if (opts.dollar) v = v.replace(/\$/g, '$$$$');
  if (!/[\s"'\\;]/.test(v) && v !== '') return v;
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\t/g, '\\t')}"`;
}

export function systemdUnit(spec: SystemdSpec): string {
  requireAbsolute('node', spec.node);
  requireAbsolute('bin', spec.bin);
  requireAbsolute('config file', spec.configFile);
  for (const d of spec.writableDirs) requireAbsolute('writable dir', d);
  const exec = [spec.node, ...agentArgs(spec)].map((w) => systemdWord(w, { dollar: true })).join(' ');
  // "-" before a path: systemd skips it when it does not exist yet instead of failing the start.
  const rw = [...new Set(spec.writableDirs)].map((d) => systemdWord(`-${d}`)).join(' ');
  const lines = [
    '# Written by `peerdial service install`; remove with `peerdial service uninstall`.',
    '[Unit]',
    'Description=peerdial agent: direct calls signalled by e-mail',
    ...(spec.system ? ['Wants=network-online.target', 'After=network-online.target'] : []),
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${exec}`,
    'Restart=on-failure',
    `RestartSec=${spec.restartSec ?? 10}`,
    // SIGTERM: the agent cancels ringing calls and flushes its outbox first.
    'KillSignal=SIGTERM',
    'TimeoutStopSec=60',
    `Environment=${systemdWord(`PATH=${spec.pathEnv}`, { dollar: true })}`,
    'Environment=NODE_ENV=production',
    'SyslogIdentifier=peerdial',
    ...(spec.system ? [`User=${spec.system.user}`, `Group=${spec.system.user}`] : []),
    'NoNewPrivileges=yes',
    'PrivateTmp=yes',
    'ProtectSystem=strict',
    ...(spec.system ? ['ProtectHome=read-only', 'ProtectKernelTunables=yes', 'ProtectKernelModules=yes', 'ProtectControlGroups=yes', 'RestrictSUIDSGID=yes', 'LockPersonality=yes', 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK'] : []),
    ...(rw ? [`ReadWritePaths=${rw}`] : []),
    'UMask=0077',
    '',
    '[Install]',
    `WantedBy=${spec.system ? 'multi-user.target' : 'default.target'}`,
    '',
  ];
  return lines.join('\n');
}

export function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

export interface LaunchdSpec extends ServiceSpec {
  /** File launchd appends the agent's stdout and stderr to. */
  logFile: string;
}

export function launchdPlist(spec: LaunchdSpec): string {
  requireAbsolute('node', spec.node);
  requireAbsolute('bin', spec.bin);
  requireAbsolute('config file', spec.configFile);
  requireAbsolute('log file', spec.logFile);
  const str = (s: string) => `<string>${xmlEscape(s)}</string>`;
  const args = [spec.node, ...agentArgs(spec)].map((a) => `\t\t${str(a)}`).join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Written by peerdial service install; remove with peerdial service uninstall. -->
<plist version="1.0">
<dict>
\t<key>Label</key>
\t${str(LAUNCHD_LABEL)}
\t<key>ProgramArguments</key>
\t<array>
${args}
\t</array>
\t<key>EnvironmentVariables</key>
\t<dict>
\t\t<key>PATH</key>
\t\t${str(spec.pathEnv)}
\t</dict>
\t<key>RunAtLoad</key>
\t<true/>
\t<key>KeepAlive</key>
\t<dict>
\t\t<key>SuccessfulExit</key>
\t\t<false/>
\t</dict>
\t<key>ThrottleInterval</key>
\t<integer>10</integer>
\t<key>ProcessType</key>
\t${str('Background')}
\t<key>Umask</key>
\t<integer>63</integer>
\t<key>StandardOutPath</key>
\t${str(spec.logFile)}
\t<key>StandardErrorPath</key>
\t${str(spec.logFile)}
</dict>
</plist>
`;
}
