/** `peerdial demo` (descriptor in ../demo.ts). */
import { runDemo } from '../../demo/demo.js';
import { printJson, type GlobalOptions } from '../output.js';

export async function demo(g: GlobalOptions): Promise<void> {
  if (!g.json) console.log('peerdial demo: alice calls hitoshi on this machine; mail goes through a throw-away server inside this process.\n');
  const r = await runDemo({
    onStep: (s) => {
      if (!g.json) console.log(`[${s.at.toFixed(2).padStart(6)} s] ${s.text}`);
    },
  });
  if (g.json) return printJson(r);
  console.log(r.ok ? `\nDone in ${r.seconds.toFixed(1)} s. Next: peerdial init --email you@example.org (see README, "Quick start with your own account").` : '\nThe demo FAILED: the file did not arrive intact.');
  if (!r.ok) process.exitCode = 1;
}
