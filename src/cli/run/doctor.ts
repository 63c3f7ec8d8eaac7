/** `peerdial doctor`: every check with its verdict and what to do (descriptor in ../doctor.ts). */
import { runDoctor, type CheckResult } from '../../doctor/checks.js';
import { PeerdialError } from '../../errors.js';
import { printJson, type GlobalOptions } from '../output.js';

const MARK: Record<CheckResult['verdict'], string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', 'not-checked': ' -  ' };

export function describeCheck(c: CheckResult): string {
  const head = `[${MARK[c.verdict]}] ${c.title}: ${c.verdict === 'not-checked' ? 'not checked: ' : ''}${c.detail}`;
  return c.hint && c.verdict !== 'ok' ? `${head}\n       what to do: ${c.hint}` : head;
}

export async function doctor(g: GlobalOptions, o: { timeout: string; gateway?: string; mapMethod: string; watchSeconds?: string }): Promise<void> {
  if (!['auto', 'natpmp', 'upnp', 'off'].includes(o.mapMethod)) throw new PeerdialError('USAGE', `--map-method: auto, natpmp, upnp or off, not ${o.mapMethod}`);
  const checks = await runDoctor({
    ...(g.config ? { config: g.config } : {}),
    ...(g.account ? { account: g.account } : {}),
    timeoutMs: Math.max(1, Number(o.timeout) || 20) * 1000,
    keptWatchMs: Math.max(1, Number(o.watchSeconds ?? 10) || 10) * 1000,
    portMapping: { method: o.mapMethod as 'auto', ...(o.gateway ? { gateway: o.gateway } : {}) },
    ...(g.json ? {} : { onProgress: (c: CheckResult) => console.log(describeCheck(c)) }),
  });
  const failed = checks.filter((c) => c.verdict === 'fail').length;
  if (g.json) printJson({ ok: failed === 0, checks });
  else {
    const warned = checks.filter((c) => c.verdict === 'warn').length;
    console.log(failed ? `${failed} check(s) failed${warned ? `, ${warned} warning(s)` : ''}.` : warned ? `no failures, ${warned} warning(s).` : 'all checks passed.');
  }
  if (failed) process.exitCode = 1;
}
