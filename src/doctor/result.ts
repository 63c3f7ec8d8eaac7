/**
 * What a doctor check finds: its verdict, what it saw and what to do about
 * it; and the two helpers every check shares (an error told as detail and
 * hint, a network step given a time limit).
 */
import { PeerdialError } from '../errors.js';

export type CheckVerdict = 'ok' | 'warn' | 'fail' | 'not-checked';

export interface CheckResult {
  id: 'config' | 'imap-login' | 'imap-idle' | 'smtp' | 'sieve' | 'mail-kept' | 'stun' | 'nat' | 'turn' | 'port-mapping' | 'ipv6';
  title: string;
  verdict: CheckVerdict;
  detail: string;
  hint?: string;
  ms?: number;
}

/** What one check found, before runDoctor() adds its id, title and time. */
export type Found = { verdict: CheckVerdict; detail: string; hint?: string };

/** An error as a check's detail, with its hint when it is a PeerdialError. */
export function describe(err: unknown): { detail: string; hint?: string } {
  if (err instanceof PeerdialError) return { detail: `${err.message} [${err.code}]`, ...(err.hint ? { hint: err.hint } : {}) };
  return { detail: (err as Error)?.message ?? String(err) };
}

/** `p`, or a TCP_FAILED error naming `what` when it takes longer than `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new PeerdialError('TCP_FAILED', `${what}: no answer within ${Math.round(ms / 1000)} s`, { hint: 'Check the host, port and firewall.' })), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}
