/** The implementation of the commands described in ../status.ts, loaded when one runs. */
import { openConfig } from '../../api/open.js';
import { pickAccount } from '../../config/config.js';
import { accountStateDir } from '../../store/paths.js';
import { connectControl } from '../../agent/control.js';
import type { AgentHealth } from '../../agent/health.js';
import { PeerdialError } from '../../errors.js';
import { age, printJson, say, table, type GlobalOptions } from '../output.js';

export const AGENT_NOT_RUNNING = 'agent not running (start it: peerdial agent, or peerdial service install)';

/** Asks the running agent of the account; undefined when none answers. */
export async function agentHealth(g: GlobalOptions, timeoutMs = 3000): Promise<AgentHealth | undefined> {
  const cfg = await openConfig(g);
  const acc = pickAccount(cfg, g.account);
  const client = await connectControl(accountStateDir(cfg.stateDir, acc.email), timeoutMs);
  if (!client) return undefined;
  try {
    const answer = client.request('status');
    const timeout = new Promise<undefined>((r) => setTimeout(() => r(undefined), timeoutMs).unref());
    return (await Promise.race([answer, timeout]).catch(() => undefined)) as AgentHealth | undefined;
  } finally {
    client.close();
  }
}

export function describeHealth(h: AgentHealth, now = Date.now()): string {
  const mailbox = h.mailbox === 'connected'
    ? `connected (${h.idle ? 'IDLE alive' : 'polling'})`
    : h.mailbox === 'disconnected'
      ? `disconnected${h.lastError ? `: ${h.lastError}` : ''}${h.retryAt ? `; retrying ${new Date(h.retryAt).getTime() > now ? `in ${Math.max(0, Math.round((Date.parse(h.retryAt) - now) / 1000))} s` : 'now'}` : ''}`
      : 'connecting';
  return table([
    ['agent:', `up (pid ${h.pid}, started ${age(h.startedAt, now)})`],
    ['account:', h.email],
    ['mailbox:', mailbox],
    ['last check:', h.lastCheck ? `${h.lastCheck} (${age(h.lastCheck, now)})` : 'none yet'],
    ['outbox:', `${h.outboxLength} mail(s) waiting`],
    ['calls:', `${h.activeCalls} active`],
  ]);
}

export async function status(g: GlobalOptions): Promise<void> {
  const h = await agentHealth(g);
  if (!h) {
    if (g.json) printJson({ agentUp: false });
    throw new PeerdialError('AGENT_NOT_RUNNING', AGENT_NOT_RUNNING);
  }
  if (g.json) return printJson(h);
  say(describeHealth(h));
}
