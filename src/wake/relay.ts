/**
 * The wake relay: a machine that stays awake acts for one that sleeps. It
 * reads the sleeping machine's INBOX READ-ONLY (EXAMINE, header search,
 * BODY.PEEK only: no flags, no moves, not its ledger), and when peerdial
 * mail from one of the sleeping machine's contacts arrives (an offer, as
 * far as outer headers can tell: the kind is encrypted), it sends a
 * Wake-on-LAN packet to the configured MAC. The woken agent finds the offer
 * in its INBOX and answers it (the server that dials the callee, in modern
 * form).
 *
 * Where it stopped is its own mark file in the relay's state dir. At most
 * one packet per machine every `minIntervalMs`.
 */
import path from 'node:path';
import type { ImapFlow } from 'imapflow';
import { loadConfig, pickAccount, type WakeTarget } from '../config/config.js';
import { resolveSecret } from '../config/secret.js';
import { accountStateDir } from '../store/paths.js';
import { ContactStore } from '../store/contacts.js';
import { mayWake } from '../agent/policy.js';
import { readJson, writeJsonAtomic } from '../store/files.js';
import { connectImap, type ImapTarget } from '../mail/imap.js';
import { reconnectDelayMs } from '../agent/mailbox.js';
import { HEADER_VERSION } from '../wire/headers.js';
import { PeerdialError } from '../errors.js';
import { sendWakeOnLan, type WakeOnLanOptions } from '../address/wol.js';
import { sleep } from '../agent/timers.js';

export type WakeEvent =
  | { type: 'watching'; email: string; idle: boolean }
  | { type: 'woke'; email: string; from: string; mac: string; address: string; port: number }
  | { type: 'wake-skipped'; email: string; from: string; why: string }
  | { type: 'ignored'; email: string; from: string; why: string }
  | { type: 'disconnected'; email: string; error: Error; retryInMs: number }
  | { type: 'error'; email: string; error: Error };

/** What the relay needs of the sleeping machine: its IMAP login and its contacts, both read-only. */
export interface SleepingMachine {
  target: WakeTarget;
  imap: ImapTarget;
  contacts: Pick<ContactStore, 'byEmail'>;
}

export interface WakeRelayOptions {
  machines: SleepingMachine[];
  /** The relay's own state dir (mark files). */
  stateDir: string;
  signal: AbortSignal;
  onEvent?: (e: WakeEvent) => void;
  /** Default: a real UDP broadcast. */
  send?: (mac: string, opts: WakeOnLanOptions) => Promise<unknown>;
  minIntervalMs?: number;
  /** Poll interval when the server has no IDLE. */
  pollMs?: number;
  /** Re-issue IDLE this often. */
  maxIdleMs?: number;
}

/** Opens the sleeping machine's config (`[[wake]] config = ...`): its IMAP settings and contacts. */
export async function openSleepingMachine(target: WakeTarget, relayFile: string): Promise<SleepingMachine> {
  if (!target.config) {
    throw new PeerdialError('CONFIG_INVALID', `${relayFile}: the [[wake]] entry for ${target.email} has no config`, {
      hint: `Add config = "/path/to/the sleeping machine's peerdial config.toml" to it: the relay reads that mailbox (read-only).`,
    });
  }
  const cfg = await loadConfig(target.config);
  const acc = pickAccount(cfg, target.email);
  const password = await resolveSecret(acc.imap, `IMAP ${acc.imap.user}@${acc.imap.host}`);
  return { target, imap: { server: acc.imap, password }, contacts: new ContactStore(accountStateDir(cfg.stateDir, acc.email)) };
}

interface Mark {
  uidValidity: string;
  lastUid: number;
}


/** Watches one sleeping machine's INBOX until `signal` aborts; reconnects after failures. */
async function watchOne(m: SleepingMachine, o: WakeRelayOptions): Promise<void> {
  const email = m.target.email;
  const markFile = path.join(o.stateDir, 'wake', `${email.replace(/[^a-z0-9@._+-]/gi, '_')}.json`);
  const minInterval = o.minIntervalMs ?? 30_000;
  let lastWake = 0;
  let attempt = 0;

  const check = async (client: ImapFlow): Promise<void> => {
    const mb = client.mailbox;
    if (!mb) throw new PeerdialError('IMAP_FAILED', 'The mailbox is not open.');
    const uidValidity = String(mb.uidValidity);
    const mark = await readJson<Mark | null>(markFile, null);
    if (!mark || mark.uidValidity !== uidValidity) {
      // First look (or the mailbox was rebuilt): what is there now is old news.
      await writeJsonAtomic(markFile, { uidValidity, lastUid: Number(mb.uidNext) - 1 } satisfies Mark);
      return;
    }
    if (mb.exists === 0) return;
    const all = ((await client.search({ uid: `${mark.lastUid + 1}:*` }, { uid: true })) || []).filter((u) => u > mark.lastUid);
    if (all.length === 0) return;
    const maxUid = Math.max(...all);
    const ours = ((await client.search({ uid: `${mark.lastUid + 1}:${maxUid}`, header: { [HEADER_VERSION]: true } }, { uid: true })) || []).filter((u) => u > mark.lastUid && u <= maxUid);
    if (ours.length > 0) {
      // Envelope only: imapflow fetches it without touching \Seen, and EXAMINE forbids flag changes anyway.
      for await (const msg of client.fetch(ours.join(','), { uid: true, envelope: true }, { uid: true })) {
        const from = msg.envelope?.from?.[0]?.address?.toLowerCase() ?? '';
        const contact = from ? await m.contacts.byEmail(from) : undefined;
        if (!contact || contact.blocked || !mayWake(contact)) {
          const why = !contact ? 'not a contact' : contact.blocked ? 'blocked' : `a wake needs an introduced or verified key (${contact.trust ?? 'no key yet'})`;
          o.onEvent?.({ type: 'ignored', email, from: from || 'unknown', why });
          continue;
        }
        const now = Date.now();
        if (now - lastWake < minInterval) {
          o.onEvent?.({ type: 'wake-skipped', email, from, why: `woken ${Math.round((now - lastWake) / 1000)} s ago` });
          continue;
        }
        lastWake = now;
        try {
          await (o.send ?? sendWakeOnLan)(m.target.mac, { address: m.target.address, port: m.target.port });
          o.onEvent?.({ type: 'woke', email, from, mac: m.target.mac, address: m.target.address, port: m.target.port });
        } catch (err) {
          o.onEvent?.({ type: 'error', email, error: err as Error });
        }
      }
    }
    await writeJsonAtomic(markFile, { uidValidity, lastUid: maxUid } satisfies Mark);
  };

  while (!o.signal.aborted) {
    let client: ImapFlow | undefined;
    try {
      client = await connectImap(m.imap, { maxIdleMs: o.maxIdleMs ?? 300_000 });
      const c = client;
      await c.mailboxOpen('INBOX', { readOnly: true });
      attempt = 0;
      const idle = c.capabilities.has('IDLE');
      o.onEvent?.({ type: 'watching', email, idle });
      let dirty = false;
      let idling = false;
      let wake: (() => void) | undefined;
      const poke = () => {
        dirty = true;
        if (idling && c.usable) c.noop().catch(() => undefined);
        wake?.();
      };
      c.on('exists', poke);
      c.on('close', () => wake?.());
      o.signal.addEventListener('abort', poke);
      try {
        while (!o.signal.aborted) {
          if (!c.usable) throw new PeerdialError('IMAP_FAILED', 'The IMAP connection was closed.');
          dirty = false;
          await check(c);
          if (dirty || o.signal.aborted) continue;
          if (idle) {
            idling = true;
            await c.idle();
            idling = false;
          } else {
            await new Promise<void>((resolve) => {
              const t = setTimeout(resolve, o.pollMs ?? 60_000);
              wake = () => {
                clearTimeout(t);
                resolve();
              };
            });
            wake = undefined;
          }
        }
      } finally {
        o.signal.removeEventListener('abort', poke);
      }
    } catch (err) {
      if (o.signal.aborted) break;
      const delay = reconnectDelayMs(attempt++);
      o.onEvent?.({ type: 'disconnected', email, error: err as Error, retryInMs: delay });
      await sleep(delay, o.signal);
    } finally {
      if (client) await client.logout().catch(() => client!.close());
    }
  }
}

/** Watches every sleeping machine until `signal` aborts. */
export async function runWakeRelay(o: WakeRelayOptions): Promise<void> {
  await Promise.all(o.machines.map((m) => watchOne(m, o)));
}
