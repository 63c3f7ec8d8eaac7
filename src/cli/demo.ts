import type { Command } from 'commander';
import { runDemo } from '../demo/demo.js';
import { printJson, type GlobalOptions } from './output.js';

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('demo')
    .description('a whole call on this machine: throw-away mail server, two users, offer and answer by mail, a direct session (no account, no root)')
    .action(async () => {
      const g = globals();
      if (!g.json) console.log('peerdial demo: alice calls hitoshi on this machine; mail goes through a throw-away server inside this process.\n');
      const r = await runDemo({
        onStep: (s) => {
          if (!g.json) console.log(`[${s.at.toFixed(2).padStart(6)} s] ${s.text}`);
        },
      });
      if (g.json) return printJson(r);
      console.log(r.ok ? `\nDone in ${r.seconds.toFixed(1)} s. Next: peerdial init --email you@example.org (see README, "Quick start with your own account").` : '\nThe demo FAILED: the file did not arrive intact.');
      if (!r.ok) process.exitCode = 1;
    });
}
