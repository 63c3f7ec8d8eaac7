/**
 * Shell niceties: completion scripts generated from the commander program
 * (so they cannot drift from --help) and `peerdial help TOPIC` pages whose
 * text the README quotes.
 */
import { promises as fs, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/main.js';
import { bashCompletion, describeProgram, fishCompletion, zshCompletion, type CommandSpec } from '../src/cli/completion.js';
import { HELP_TOPICS, topicMarkdown } from '../src/cli/help-topics.js';
import { PeerdialError, exitCodeFor } from '../src/errors.js';
import { ROOT, runCli, tempDir } from './harness/peers.js';

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

let program: Command;
let spec: CommandSpec;
let bash: string;

/** Every visible command path of the program, e.g. "contacts add". */
function commandPaths(cmd: Command, prefix = ''): string[] {
  return cmd.commands.flatMap((c) => {
    const p = prefix ? `${prefix} ${c.name()}` : c.name();
    return [p, ...commandPaths(c, p)];
  });
}

/** Runs the bash completion for a command line (the word being completed last) and returns the candidates. */
function completeBash(script: string, words: string[]): string[] {
  const prog = `${script}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')})
COMP_CWORD=${words.length - 1}
_peerdial
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', prog], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split('\n').filter(Boolean).sort();
}

beforeAll(async () => {
  program = buildProgram();
  spec = describeProgram(program, { 'peerdial help': Object.keys(HELP_TOPICS) });
  bash = (await runCli(['completion', 'bash'])).stdout;
});

describe('bash completion', () => {
  it('bash -n accepts the script', () => {
    const r = spawnSync('bash', ['-n'], { input: bash, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  it('lists every command and subcommand of the program', () => {
    expect(bash).toBe(bashCompletion(describeProgram(program, { 'peerdial help': [...Object.keys(HELP_TOPICS), ...program.commands.map((c) => c.name())] })));
    const paths = commandPaths(program);
    expect(paths.length).toBeGreaterThan(20);
    for (const p of paths) {
      const parent = ['peerdial', ...p.split(' ').slice(0, -1)].join(' ');
      const name = p.split(' ').at(-1)!;
      const line = bash.split('\n').find((l) => l.startsWith(`    ["${parent}"]=`));
      expect(line, `subcommands of ${parent}`).toBeDefined();
      expect(line!.split('=')[1]!.replace(/"/g, '').split(' '), p).toContain(name);
    }
  });

  it('completes in a real bash: commands, subcommands, options, option values and help topics', () => {
    expect(completeBash(bash, ['peerdial', 'con'])).toEqual(['contacts']);
    expect(completeBash(bash, ['peerdial', 'se'])).toEqual(['send', 'service']);
    expect(completeBash(bash, ['peerdial', 'contacts', 'bl'])).toEqual(['block']);
    expect(completeBash(bash, ['peerdial', '--config', 'x.toml', 'service', 'in'])).toEqual(['install']);
    expect(completeBash(bash, ['peerdial', 'agent', '--log-format', ''])).toEqual(['json', 'text']);
    expect(completeBash(bash, ['peerdial', 'service', 'install', '--log-'])).toEqual(['--log-format']);
    expect(completeBash(bash, ['peerdial', 'completion', ''])).toEqual(['bash', 'fish', 'zsh']);
    expect(completeBash(bash, ['peerdial', 'help', 'ex'])).toEqual(['exit-codes']);
    expect(completeBash(bash, ['peerdial', 'call', '--r'])).toEqual(['--record', '--ring-seconds']);
    // hidden options stay hidden
    expect(completeBash(bash, ['peerdial', 'service', 'install', '--pl'])).toEqual([]);
  });

  it('every visible long option of every command is offered after "-"', () => {
    const walk = (cmd: Command, words: string[]) => {
      const offered = completeBash(bash, [...words, '--']);
      for (const o of cmd.options.filter((x) => !x.hidden && x.long)) expect(offered, `${words.join(' ')} ${o.long}`).toContain(o.long);
      for (const c of cmd.commands) walk(c, [...words, c.name()]);
    };
    walk(program, ['peerdial']);
  });
});

describe('zsh and fish completion', () => {
  it('name every command and subcommand', () => {
    const zsh = zshCompletion(spec);
    const fish = fishCompletion(spec);
    expect(zsh.startsWith('#compdef peerdial\n')).toBe(true);
    for (const p of commandPaths(program)) {
      expect(zsh, p).toContain(`'peerdial ${p}'`);
      expect(fish, p).toContain(`'peerdial ${p}'`);
    }
    expect(fish).toContain("complete -c peerdial -n 'test (__peerdial_path) = \"peerdial agent\"' -l log-format -x -a 'text json'");
  });

  it('zsh -n accepts the zsh script', () => {
    if (!has('zsh')) throw new Error('zsh is missing: apt-get install zsh (CI does)');
    const r = spawnSync('zsh', ['-n'], { input: zshCompletion(spec), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  it('fish -n accepts the fish script', () => {
    if (!has('fish')) throw new Error('fish is missing: apt-get install fish (CI does)');
    // fish -n reads a file (stdin is not taken as the script)
    const file = path.join(os.tmpdir(), `peerdial-completion-${process.pid}.fish`);
    writeFileSync(file, fishCompletion(spec));
    const r = spawnSync('fish', ['-n', file], { encoding: 'utf8', cwd: os.tmpdir() });
    rmSync(file, { force: true });
    expect(r.status, r.stderr).toBe(0);
  });

  it('an unknown shell is a usage error', async () => {
    const r = await runCli(['completion', 'powershell']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('bash, zsh, fish');
  });
});

describe('peerdial help TOPIC', () => {
  it.each(Object.keys(HELP_TOPICS))('peerdial help %s prints the page', async (topic) => {
    const r = await runCli(['help', topic]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${HELP_TOPICS[topic]!.text}\n`);
  });

  it('peerdial help COMMAND is the command\'s --help; plain help lists the topics; an unknown topic is a usage error', async () => {
    const a = await runCli(['help', 'call']);
    const b = await runCli(['call', '--help']);
    expect(a.stdout).toBe(b.stdout);
    const all = await runCli(['help']);
    expect(all.code).toBe(0);
    for (const t of Object.keys(HELP_TOPICS)) expect(all.stdout).toContain(`  ${t}`);
    const bad = await runCli(['help', 'nonsense']);
    expect(bad.code).toBe(64);
  });

  it('the exit-codes page says what exitCodeFor does', () => {
    const page = HELP_TOPICS['exit-codes']!.text;
    for (const [code, exit] of [['CALL_DECLINED', 2], ['AGENT_NOT_RUNNING', 3], ['USAGE', 64], ['TLS_FAILED', 69], ['AUTH_FAILED', 77], ['CONFIG_MISSING', 78], ['STORE_CORRUPT', 1]] as const) {
      expect(exitCodeFor(new PeerdialError(code, 'x'))).toBe(exit);
      expect(page).toMatch(new RegExp(`^${exit} `, 'm'));
    }
    expect(exitCodeFor(new Error('bug'))).toBe(70);
    expect(page).toMatch(/^70 /m);
  });

  it('the README quotes the exit-codes and policy pages verbatim', async () => {
    const readme = await fs.readFile(path.join(ROOT, 'README.md'), 'utf8');
    for (const t of ['exit-codes', 'policy']) expect(readme, t).toContain(topicMarkdown(t));
  });
});

describe('peerdial open reaches the call command', () => {
  it('open --yes runs the same code path as `peerdial call` (an unknown contact is refused by it)', async () => {
    const dir = await tempDir('open');
    try {
      const cfg = path.join(dir, 'config.toml');
      const r0 = await runCli(['--config', cfg, 'init', '--email', 'alice@example.test', '--imap-host', '127.0.0.1', '--imap-port', '9', '--smtp-host', '127.0.0.1', '--smtp-port', '9', '--password-env', 'NOPE', '--skip-check', '--state-dir', path.join(dir, 'state')]);
      expect(r0.code, r0.stderr).toBe(0);
      const open = await runCli(['--config', cfg, 'open', '--yes', 'peerdial:nobody'], { timeoutMs: 30_000 });
      const call = await runCli(['--config', cfg, 'call', 'nobody'], { timeoutMs: 30_000 });
      expect(open.code).toBe(call.code);
      expect(open.code).not.toBe(0);
      expect(open.stderr).toContain('same as: peerdial call -- nobody');
      const lastLine = (s: string) => s.trim().split('\n').filter((l) => !l.startsWith('  what to do')).at(-1);
      expect(lastLine(open.stderr)).toBe(lastLine(call.stderr));
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
