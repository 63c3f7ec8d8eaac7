/** The implementation of the commands described in ../service.ts, loaded when one runs. */
import { promises as fs, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openConfig } from '../../api/open.js';
import { defaultConfigPath } from '../../store/paths.js';
import { PeerdialError } from '../../errors.js';
import { detectPlatform, installService, serviceFilePath, showServiceLogs, showServiceStatus, uninstallService, type ServicePlatform, type ServiceTarget } from '../../service/install.js';
import { launchdPlist, systemdUnit, type LogFormat, type ServiceSpec } from '../../service/unit.js';
import { launchdLogFile } from '../../service/install.js';
import { printJson, status, type GlobalOptions } from '../output.js';

/** bin/peerdial.js of this installation, symlinks resolved (npm link, npm -g). */
export function peerdialBin(): string {
  const bin = fileURLToPath(new URL('../../../bin/peerdial.js', import.meta.url));
  try {
    return realpathSync(bin);
  } catch {
    return bin;
  }
}

async function specFor(g: GlobalOptions, logFormat: LogFormat): Promise<ServiceSpec> {
  const configFile = defaultConfigPath(g.config);
  const cfg = await openConfig(g); // fails now, with a clear message, rather than in the journal later
  const nodeDir = path.dirname(process.execPath);
  const pathDirs = [nodeDir, ...(process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':').filter((d) => path.isAbsolute(d))];
  return {
    node: process.execPath,
    bin: peerdialBin(),
    configFile,
    ...(g.account ? { account: g.account } : {}),
    logFormat,
    pathEnv: [...new Set(pathDirs)].join(':'),
    writableDirs: [cfg.stateDir, path.resolve(cfg.downloadDir), path.dirname(configFile)],
  };
}

export interface TargetOpts {
  system?: boolean;
  user?: string;
  unitDir?: string;
  platform?: ServicePlatform;
}

function targetOf(o: TargetOpts): ServiceTarget {
  const platform = o.platform ?? detectPlatform();
  if (o.system && platform !== 'systemd') throw new PeerdialError('USAGE', '--system is for systemd; launchd agents run as the logged-in user.');
  return {
    platform,
    ...(o.system ? { systemUser: o.user ?? 'peerdial' } : {}),
    ...(o.unitDir ? { dir: path.resolve(o.unitDir) } : {}),
  };
}

export async function install(g: GlobalOptions, o: TargetOpts & { logFormat: LogFormat; enable: boolean; print?: boolean }): Promise<void> {
  const target = targetOf(o);
  const spec = await specFor(g, o.logFormat);
  if (o.print) {
    process.stdout.write(target.platform === 'launchd'
      ? launchdPlist({ ...spec, logFile: launchdLogFile() })
      : systemdUnit({ ...spec, ...(target.systemUser ? { system: { user: target.systemUser } } : {}) }));
    return;
  }
  const r = await installService({ ...target, spec, enable: o.enable });
  if (g.json) return printJson({ file: r.file, ran: r.ran, enabled: o.enable });
  console.log(`wrote ${r.file}`);
  for (const c of r.ran) status(g, `ran: ${c.join(' ')}`);
  if (!o.enable) {
    console.log(target.platform === 'launchd'
      ? `load it with: launchctl load -w ${r.file}`
      : `enable it with: systemctl ${target.systemUser ? '' : '--user '}daemon-reload && systemctl ${target.systemUser ? '' : '--user '}enable --now peerdial`);
  } else {
    console.log('the agent runs now; check it with: peerdial status');
  }
}

export async function uninstall(g: GlobalOptions, o: TargetOpts & { disable: boolean }): Promise<void> {
  const r = await uninstallService({ ...targetOf(o), disable: o.disable });
  if (g.json) return printJson(r);
  console.log(r.removed ? `removed ${r.file}` : `nothing installed at ${r.file}`);
}

export async function serviceStatus(g: GlobalOptions, o: TargetOpts): Promise<void> {
  const target = targetOf(o);
  const file = serviceFilePath(target);
  if (!(await fs.stat(file).then(() => true, () => false))) {
    console.log(`not installed (no ${file}); install it with: peerdial service install`);
    process.exitCode = 3;
    return;
  }
  process.exitCode = await showServiceStatus(target);
}

export async function logs(g: GlobalOptions, o: TargetOpts & { lines: string; follow?: boolean }): Promise<void> {
  const n = Number(o.lines);
  if (!Number.isInteger(n) || n < 1) throw new PeerdialError('USAGE', `--lines must be a positive whole number, not ${o.lines}.`);
  process.exitCode = await showServiceLogs({ ...targetOf(o), lines: n, ...(o.follow ? { follow: true } : {}) });
}
