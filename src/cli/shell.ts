import { Argument, type Command } from 'commander';
import { PeerdialError } from '../errors.js';
import { SHELLS, completionScript, describeProgram, type Shell } from './completion.js';
import { HELP_TOPICS, helpTopicNames } from './help-topics.js';
import type { GlobalOptions } from './output.js';

function root(cmd: Command): Command {
  let c = cmd;
  while (c.parent) c = c.parent;
  return c;
}

export function register(program: Command, _globals: () => GlobalOptions): void {
  program
    .command('completion')
    .description('print the shell completion script (bash, zsh or fish)')
    .addArgument(new Argument('<shell>', 'which shell').choices(SHELLS))
    .addHelpText('after', `
  source <(peerdial completion bash)          this shell only; or for good:
  peerdial completion bash > ~/.local/share/bash-completion/completions/peerdial
  peerdial completion zsh > "\${fpath[1]}/_peerdial"
  peerdial completion fish > ~/.config/fish/completions/peerdial.fish`)
    .action((shell: Shell, _o, cmd: Command) => {
      const top = root(cmd);
      const commandNames = top.commands.map((c) => c.name());
      process.stdout.write(completionScript(shell, describeProgram(top, { [`${top.name()} help`]: [...helpTopicNames(), ...commandNames] })));
    });

  // Our own `help`: commands as commander's would, plus topic pages.
  program.helpCommand(false);
  program
    .command('help [topic]')
    .description(`help on a command, or a topic: ${helpTopicNames().join(', ')}`)
    .action((topic: string | undefined, _o, cmd: Command) => {
      const top = root(cmd);
      if (!topic) {
        top.outputHelp();
        process.stdout.write(`\nTopics (peerdial help TOPIC):\n${helpTopicNames().map((n) => `  ${n.padEnd(12)}${HELP_TOPICS[n]!.summary}`).join('\n')}\n`);
        return;
      }
      const page = HELP_TOPICS[topic];
      if (page) {
        process.stdout.write(`${page.text}\n`);
        return;
      }
      const sub = top.commands.find((c) => c.name() === topic || c.aliases().includes(topic));
      if (sub) {
        sub.outputHelp();
        return;
      }
      throw new PeerdialError('USAGE', `no command or help topic "${topic}".`, { hint: `Topics: ${helpTopicNames().join(', ')}; commands: peerdial --help.` });
    });
}
