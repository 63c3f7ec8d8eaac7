/**
 * Announce this machine's addresses to contacts, and send what is queued.
 * The agent announces when an address changes; `peerdial announce` and
 * `peerdial outbox flush` reach this through src/api/mail.ts.
 */
import { PeerdialError } from '../errors.js';
import { requireMailAddress } from '../wire/address.js';
import type { Account } from './account.js';
import { OutboxLoop } from './mailbox.js';
import type { DrainResult } from '../mail/outbox-sender.js';
import { interfaceAddresses, type DetectedAddress } from '../address/interfaces.js';
import { isAnnounceable } from '../address/classify.js';
import type { AddressEntry } from '../wire/message.js';
import type { StandingAnswer } from '../wire/standing.js';

export function addressEntries(detected: DetectedAddress[] = interfaceAddresses()): AddressEntry[] {
  return detected.filter((a) => isAnnounceable(a.scope)).map((a) => ({ ip: a.ip, source: a.source, scope: a.scope }));
}

export interface AnnounceOptions {
  /** Contacts (names, aliases or addresses); default: every contact that wants announcements. */
  to?: string[];
  addresses?: AddressEntry[];
  /** How long the announced address is valid, seconds (default 1 day). */
  validSeconds?: number;
  /** Only queue; a running agent or `peerdial outbox flush` sends it. */
  queueOnly?: boolean;
  /** The user asked for it (`--plain`): contacts without a key get the addresses in clear text. */
  plain?: boolean;
  /**
   * A standing answer for this contact (one-mail calls, agent/one-mail.ts),
   * or undefined: only the agent that answers calls makes them.
   */
  standingFor?: (to: string) => Promise<StandingAnswer | undefined>;
}

export interface AnnounceResult {
  queued: { to: string; messageId: string }[];
  /** Contacts that want announcements but have no key here: their announce would be clear text. */
  skipped: string[];
  addresses: AddressEntry[];
  drain?: DrainResult;
}

export async function announce(account: Account, opts: AnnounceOptions = {}): Promise<AnnounceResult> {
  const addresses = opts.addresses ?? addressEntries();
  let targets: string[];
  const skipped: string[] = [];
  if (opts.to && opts.to.length) {
    targets = [];
    for (const who of opts.to) {
      const c = await account.contacts.resolve(who);
      if (c) targets.push(c.email);
      else if (who.includes('@')) targets.push(requireMailAddress(who));
      else await account.contacts.require(who);
    }
    // all or nothing: a named contact without a key stops the announce before anything is queued
    for (const to of targets) await account.requireKeyFor(to, 'announce', opts.plain);
  } else {
    const wanting = (await account.contacts.list()).filter((c) => c.announce && !c.blocked);
    targets = wanting.filter((c) => opts.plain || c.fingerprint).map((c) => c.email);
    skipped.push(...wanting.filter((c) => !opts.plain && !c.fingerprint).map((c) => c.email));
    if (!wanting.length) {
      throw new PeerdialError('CONTACT_UNKNOWN', 'There is nobody to announce to.', {
        hint: 'Add a contact first: peerdial contacts add NAME EMAIL',
      });
    }
    if (!targets.length) {
      throw new PeerdialError('CONTACT_KEY_MISSING', `No key of ${skipped.join(', ')} here: an announce would carry this machine's addresses in clear text. Nothing was sent.`, {
        hint: 'Exchange keys first: peerdial invite (they run peerdial join), or peerdial contacts add NAME EMAIL --key THEIR-KEY.asc; or send it in clear text anyway with --plain.',
      });
    }
  }
  const result: AnnounceResult = { queued: [], skipped, addresses };
  for (const to of targets) {
    const standing = await opts.standingFor?.(to);
    const q = await account.queue({
      kind: 'announce',
      to,
      addresses,
      ttlSeconds: opts.validSeconds ?? 86_400,
      ...(opts.plain ? { plain: true } : {}),
      ...(standing ? { standing } : {}),
    });
    result.queued.push({ to, messageId: q.messageId });
  }
  if (!opts.queueOnly) result.drain = await flushOutbox(account);
  return result;
}

export async function flushOutbox(account: Account, opts: { force?: boolean } = {}): Promise<DrainResult> {
  const loop = new OutboxLoop(account);
  return loop.drainOnce(opts);
}
