/**
 * The doctor's look at the server-side rule (Sieve) that files peerdial
 * mail into peerdial's folder at delivery.
 */
import type { Account } from '../agent/account.js';
import { PeerdialError } from '../errors.js';
import { checkSieveRule, describeSieveRule, MANAGESIEVE_PORT, sieveLoginFor, type SieveRuleStatus } from '../mail/sieve-rule.js';
import { describe, type Found } from './result.js';

/** The rule on the server (ManageSieve on the IMAP host: sieve_port, else 4190). */
export async function sieveCheck(account: Account, timeoutMs: number): Promise<Found> {
  const configured = account.account.sievePort;
  const port = configured ?? MANAGESIEVE_PORT;
  const folder = account.account.folder;
  const target = await account.imapTarget();
  if (target.password === undefined) return { verdict: 'not-checked', detail: 'the account logs in with OAuth2; a server-side rule cannot be checked with it' };
  let status: SieveRuleStatus;
  try {
    // only a look whether the standard port answers when none is configured: a short wait
    status = await checkSieveRule(await sieveLoginFor(target, port, { timeoutMs: configured ? timeoutMs : Math.min(timeoutMs, 5000) }), folder);
  } catch (err) {
    const d = describe(err);
    if (!configured && !(err instanceof PeerdialError && err.code === 'AUTH_FAILED')) {
      return { verdict: 'not-checked', detail: `no ManageSieve server at ${target.server.host}:${port} (${d.detail}): peerdial mail lands in the INBOX` };
    }
    return { verdict: 'fail', detail: `ManageSieve at ${target.server.host}:${port}: ${d.detail}`, ...(d.hint ? { hint: d.hint } : {}) };
  }
  const d = describeSieveRule(status, folder);
  if (d.ok && !configured) {
    return { verdict: 'warn', detail: `${d.detail}; but this config does not know it (no sieve_port), so the agent watches the INBOX and notices peerdial mail late`, hint: `Set sieve_port = ${port} for this account in the config (or run peerdial init --sieve --force with your usual options).` };
  }
  return { verdict: d.ok ? 'ok' : 'warn', detail: d.detail, ...(d.hint ? { hint: d.hint } : {}) };
}
