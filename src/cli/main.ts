/**
 * The command line: a thin layer over the programmatic API (src/index.ts).
 * One file per command group; this file only wires them together.
 *
 * Each command file is a descriptor: names, arguments, options and help
 * text, importing commander and at most the constants its help names.
 * What a command does lives in src/cli/run/ and is imported (`import()`)
 * when that command runs, so that `--help` or `contacts list` do not load
 * the mail clients, OpenPGP or node-datachannel (test/startup.test.ts;
 * bench/startup.mjs times it).
 */
import { Command } from 'commander';
import { exitCodeFor, PeerdialError } from '../errors.js';
import { mustExitExplicitly, printError, type GlobalOptions } from './output.js';
import * as initCmd from './init.js';
import * as contactsCmd from './contacts.js';
import * as addressCmd from './address.js';
import * as mailCmd from './mail.js';
import * as logCmd from './log.js';
import * as callCmd from './call.js';
import * as agentCmd from './agent.js';
import * as demoCmd from './demo.js';
import * as messagesCmd from './messages.js';
import * as answerCmd from './answer.js';
import * as serviceCmd from './service.js';
import * as statusCmd from './status.js';
import * as uriCmd from './uri.js';
import * as shellCmd from './shell.js';
import * as hooksCmd from './hooks.js';
import * as wakeCmd from './wake.js';
import * as doctorCmd from './doctor.js';
import * as loginCmd from './login.js';
import * as inviteCmd from './invite.js';
import * as webCmd from './web.js';

/** What each command file exports; `run` is main below (`peerdial open` runs a link's argv through it). */
interface CommandModule {
  register(program: Command, globals: () => GlobalOptions, run: (argv: string[]) => Promise<number>): void;
}

const COMMANDS: CommandModule[] = [initCmd, contactsCmd, addressCmd, mailCmd, logCmd, callCmd, agentCmd, demoCmd, messagesCmd, answerCmd, serviceCmd, statusCmd, uriCmd, shellCmd, hooksCmd, wakeCmd, doctorCmd, loginCmd, inviteCmd, webCmd];

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('peerdial')
    .description(
      'Direct calls between two machines, signalled through your own e-mail account.\n' +
        'Each side mails its current address and a WebRTC offer or answer to the other;\n' +
        'then they talk directly over UDP. No rendezvous server, no public directory.',
    )
    .version('0.1.0')
    .option('-c, --config <file>', 'config file (default: $PEERDIAL_CONFIG or ~/.config/peerdial/config.toml)')
    .option('-a, --account <email>', 'which of your accounts to use')
    .option('--json', 'machine-readable output')
    .option('-q, --quiet', 'no progress lines')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', `
Start here:
  peerdial demo                      a whole call on this machine, no account needed
  peerdial init --email you@example.org --password-command "pass show mail"
  peerdial contacts add hitoshi hitoshi@example.jp --key hitoshi.asc
  peerdial announce hitoshi          your addresses, encrypted to his key
  peerdial inbox                     see what arrived

Exit codes: 0 ok, 1 failed, 2 call not completed (declined, busy, timed out),
3 no agent running, 64 usage, 69 network or server unavailable, 77 login refused,
78 configuration (more: peerdial help exit-codes).`);
  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  for (const c of COMMANDS) c.register(program, globals, main);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
    const code = typeof process.exitCode === 'number' ? process.exitCode : 0;
    if (mustExitExplicitly()) setImmediate(() => process.exit(code));
    return code;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : (e.exitCode === 0 ? 0 : 64);
    }
    printError(err);
    return exitCodeFor(err instanceof PeerdialError ? err : err);
  }
}
