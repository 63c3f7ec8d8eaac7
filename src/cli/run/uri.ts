/** The implementation of the commands described in ../uri.ts, loaded when one runs. */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { PeerdialError } from '../../errors.js';
import { callArgs, parseCallUri } from '../../uri/uri.js';
import { DESKTOP_FILE, SCHEME_MIME, desktopEntry } from '../../uri/desktop.js';
import { runCommand } from '../../service/install.js';
import { peerdialBin } from './service.js';
import { defaultConfigPath } from '../../store/paths.js';
import { printJson, say, status, type GlobalOptions } from '../output.js';

function applicationsDir(): string {
  return path.join(process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share'), 'applications');
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await new Promise<string>((resolve) => rl.question(question, resolve));
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

/** The global options again, as words for a fresh parse of `peerdial call`. */
function globalArgs(g: GlobalOptions): string[] {
  return [
    ...(g.config ? ['--config', g.config] : []),
    ...(g.account ? ['--account', g.account] : []),
    ...(g.quiet ? ['--quiet'] : []),
    ...(g.json ? ['--json'] : []),
  ];
}

export async function open(g: GlobalOptions, uri: string, o: { yes?: boolean; dryRun?: boolean }, main: (argv: string[]) => Promise<number>): Promise<void> {
  const r = parseCallUri(uri);
  if (!r.ok) {
    throw new PeerdialError('USAGE', `not a usable peerdial link: ${r.detail} (${r.reason}).`, {
      hint: 'A link looks like peerdial:hitoshi@example.jp or peerdial:hitoshi?ring=60.',
    });
  }
  const { link } = r;
  const args = callArgs(link);
  const equivalent = `peerdial ${args.map((a) => (/^[A-Za-z0-9@._+-]+$/.test(a) ? a : `'${a}'`)).join(' ')}`;
  if (o.dryRun) {
    if (g.json) return printJson({ ...link, argv: args });
    say(`call ${link.kind === 'address' ? 'the address' : 'the contact'} ${link.target}`);
    if (link.params.ringSeconds !== undefined) say(`ring for ${link.params.ringSeconds} s`);
    if (link.params.video) say('video asked for: not carried yet, the call is a chat');
    if (link.unknown.length) say(`ignored parameters: ${link.unknown.join(', ')}`);
    say(`same as: ${equivalent}`);
    return;
  }
  if (link.unknown.length) status(g, `ignoring unknown link parameter(s): ${link.unknown.join(', ')}`);
  if (link.params.video) status(g, 'the link asks for video; peerdial carries no video yet, so this is a chat call');
  if (!o.yes) {
    if (!process.stdin.isTTY) {
      throw new PeerdialError('USAGE', `a link asks to call ${link.target}; not calling without a yes.`, { hint: 'Run it in a terminal to be asked, or pass --yes.' });
    }
    if (!(await confirm(`Call ${link.target}? [y/N] `))) {
      status(g, 'not calling');
      return;
    }
  }
  status(g, `same as: ${equivalent}`);
  // The very code path of `peerdial call`, through a fresh parse of its argv (no shell).
  process.exitCode = await main([process.execPath, peerdialBin(), ...globalArgs(g), ...args]);
}

export async function registerHandler(g: GlobalOptions, o: { dir?: string; default: boolean }): Promise<void> {
  const dir = path.resolve(o.dir ?? applicationsDir());
  const argv = [process.execPath, peerdialBin(), ...(g.config ? ['--config', defaultConfigPath(g.config)] : []), ...(g.account ? ['--account', g.account] : []), 'open'];
  const file = path.join(dir, DESKTOP_FILE);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(file, desktopEntry({ argv }), { mode: 0o644 });
  let registered: 'yes' | 'no-xdg-mime' | 'skipped' | 'failed' = 'skipped';
  if (o.default) {
    const r = await runCommand('xdg-mime', ['default', DESKTOP_FILE, SCHEME_MIME]);
    registered = r.missing ? 'no-xdg-mime' : r.code === 0 ? 'yes' : 'failed';
    if (registered === 'failed') status(g, `xdg-mime failed: ${(r.stderr || r.stdout).trim()}`);
  }
  if (g.json) return printJson({ file, default: registered });
  console.log(`wrote ${file}`);
  if (registered === 'yes') console.log(`peerdial: links now open with it (xdg-mime default ${DESKTOP_FILE} ${SCHEME_MIME})`);
  else if (registered === 'no-xdg-mime') console.log(`xdg-mime is not installed (package xdg-utils); your desktop may still pick the handler up from ${DESKTOP_FILE}`);
  if (process.platform === 'darwin') console.log('on macOS this file does nothing: see "Click-to-call" in the README for the app-bundle way');
}

export async function unregisterHandler(g: GlobalOptions, o: { dir?: string }): Promise<void> {
  const file = path.join(path.resolve(o.dir ?? applicationsDir()), DESKTOP_FILE);
  const existed = await fs.stat(file).then(() => true, () => false);
  await fs.rm(file, { force: true });
  console.log(existed ? `removed ${file}` : `nothing at ${file}`);
}
