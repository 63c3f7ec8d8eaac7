/**
 * Loaded with `node --import` into child processes of the benchmark: when
 * the process exits, writes its CPU time and peak RSS to $BENCH_PROBE_OUT.
 */
import { writeFileSync } from 'node:fs';

const out = process.env.BENCH_PROBE_OUT;
if (out) {
  process.on('exit', () => {
    const u = process.cpuUsage();
    const r = process.resourceUsage();
    writeFileSync(out, JSON.stringify({ userMs: u.user / 1000, systemMs: u.system / 1000, cpuMs: (u.user + u.system) / 1000, maxRssKb: r.maxRSS }));
  });
}
