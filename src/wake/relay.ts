/**
 * The wake relay: a machine that stays awake acts for one that sleeps. It
 * reads the sleeping machine's INBOX READ-ONLY (EXAMINE, header search,
 * BODY.PEEK only: no flags, no moves, not its ledger), and when an offer
 * arrives whose signature verifies against the pinned key of one of the
 * sleeping machine's contacts, it sends a Wake-on-LAN packet to the
 * configured MAC. A From that names a contact is not enough: the relay
 * first screens size and outer headers (a stranger's mail costs a header
 * fetch), then decrypts and verifies the mail with the sleeping machine's
 * key in the capped examiner (src/mail/examiner.ts). The woken agent finds the offer
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
import { HEADER_SIGNER, HEADER_VERSION, IMAP_SEARCH_QUERY } from '../wire/headers.js';
import { LIMITS } from '../wire/limits.js';
import { loadIdentity, type Identity } from '../wire/identity.js';
import { screenHeaders } from '../wire/parse.js';
import { Examiner } from '../mail/examiner.js';
import { promises as fs } from 'node:fs';
import { PeerdialError } from '../errors.js';
import { sendWakeOnLan, type WakeOnLanOptions } from '../address/wol.js';
import { sleep } from '../util/timers.js';

export type WakeEvent =
  | { type: 'watching'; email: string; idle: boolean }
  | { type: 'woke'; email: string; from: string; mac: string; address: string; port: number }
  | { type: 'wake-skipped'; email: string; from: string; why: string }
  | { type: 'ignored'; email: string; from: string; why: string }
  | { type: 'disconnected'; email: string; error: Error; retryInMs: number }
  | { type: 'error'; email: string; error: Error };

/** What the relay needs of the sleeping machine: its IMAP login, its key (to read mail encrypted to it) and its contacts, all read-only. */
export interface SleepingMachine {
  target: WakeTarget;
  imap: ImapTarget;
  identity: Identity;
  contacts: Pick<ContactStore, 'list'>;
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
  const stateDir = accountStateDir(cfg.stateDir, acc.email);
  const keyFile = path.join(stateDir, 'identity.asc');
  let armored: string;
  try {
    armored = await fs.readFile(keyFile, 'utf8');
  } catch (err) {
    throw new PeerdialError('KEY_MISSING', `${relayFile}: cannot read the key of ${target.email} (${keyFile}): ${(err as Error).message}`, {
      hint: 'The relay checks each mail\'s signature and must read mail encrypted to the sleeping machine: give it read access to that file.',
    });
  }
  return { target, imap: { server: acc.imap, password }, identity: await loadIdentity(armored), contacts: new ContactStore(stateDir) };
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

  const examiner = new Examiner(m.identity.armoredPrivateKey);

  /** Is this an offer signed by the pinned key of a contact? Headers first, then the capped examiner. */
  const verify = async (client: ImapFlow, uid: number): Promise<{ ok: true; from: string } | { ok: false; from: string; why: string }> => {
    // Envelope, size and two headers: imapflow fetches them without touching \Seen, and EXAMINE forbids flag changes anyway.
    const meta = await client.fetchOne(String(uid), { uid: true, size: true, envelope: true, headers: [HEADER_VERSION, HEADER_SIGNER] }, { uid: true });
    if (!meta) return { ok: false, from: '', why: 'gone' };
    const froms = (meta.envelope?.from ?? []).map((a) => (a.address ?? '').toLowerCase());
    const from = froms[0] ?? '';
    const all = new Map((await m.contacts.list()).map((c) => [c.email, c]));
    // Only pinned keys count: a contact known by address alone cannot wake anybody.
    const pinned = new Map([...all.values()].filter((c) => !c.blocked && c.publicKey && c.fingerprint).map((c) => [c.email, c]));
    const screened = screenHeaders(
      { size: meta.size ?? 0, from: froms, headers: meta.headers ?? '' },
      {
        policy: 'contacts',
        contact: (e) => {
          const c = all.get(e);
          return c ? { blocked: c.blocked, ...(c.fingerprint ? { fingerprint: c.fingerprint } : {}) } : undefined;
        },
      },
    );
    if (screened) return { ok: false, from, why: screened.reason === 'unknown-sender' ? 'not a contact' : screened.reason === 'blocked-sender' ? 'blocked' : `${screened.reason}: ${screened.detail}` };
    if (!pinned.has(from)) return { ok: false, from, why: 'no pinned key for this contact: only a verified signature wakes' };
    const contact = pinned.get(from)!;
    if (!mayWake(contact)) return { ok: false, from, why: `a wake needs an introduced or verified key (${contact.trust ?? 'no key yet'})` };
    const body = await client.fetchOne(String(uid), { uid: true, source: { maxLength: LIMITS.mailBytes } }, { uid: true });
    if (!body || !body.source) return { ok: false, from, why: 'no source' };
    const parsed = await examiner.examine(body.source, {
      selfEmail: m.identity.email,
      now: new Date(),
      policy: 'contacts',
      contacts: [...pinned.values()].map((c) => ({ email: c.email, publicKey: c.publicKey!, blocked: false })),
      seen: () => false,
    });
    if (!parsed.ok) return { ok: false, from, why: `${parsed.reason}: ${parsed.detail}` };
    if (parsed.learnedKey) return { ok: false, from, why: 'the signing key is not pinned' };
    if (parsed.message.kind !== 'offer') return { ok: false, from, why: `a verified ${parsed.message.kind}, not an offer` };
    return { ok: true, from: parsed.message.from };
  };

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
    const ours = ((await client.search({ uid: `${mark.lastUid + 1}:${maxUid}`, ...IMAP_SEARCH_QUERY }, { uid: true })) || []).filter((u) => u > mark.lastUid && u <= maxUid);
    for (const uid of ours.sort((a, b) => a - b)) {
      const verdict = await verify(client, uid);
      if (!verdict.ok) {
        o.onEvent?.({ type: 'ignored', email, from: verdict.from || 'unknown', why: verdict.why });
        continue;
      }
      const from = verdict.from;
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
  await examiner.close();
}

/** Watches every sleeping machine until `signal` aborts. */
export async function runWakeRelay(o: WakeRelayOptions): Promise<void> {
  await Promise.all(o.machines.map((m) => watchOne(m, o)));
}
