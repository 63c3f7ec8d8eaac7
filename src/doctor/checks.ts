/**
 * `peerdial doctor`: what works and what does not between this machine, its
 * mail account and the network, each with a verdict and what to do about it.
 *
 * The one mail it writes is a peerdial `announce` to itself, to time the way
 * from SMTP submission to the IMAP IDLE notification; its own watcher
 * recognises it by Message-ID and files it into peerdial's folder like any
 * verified peerdial mail. Other mail is left alone (a throw-away ledger
 * starting at the current end of the INBOX: the agent's mark is not moved).
 * Beside a running agent the doctor opens no mailbox of its own: it asks the
 * agent (control socket) whether it is logged in, and the agent times the
 * test mail with its own watcher.
 */
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { loadConfig, pickAccount, type Config } from '../config/config.js';
import { defaultConfigPath } from '../store/paths.js';
import { Account } from '../agent/account.js';
import { connectImap } from '../mail/imap.js';
import { probeSmtp, sendRaw, smtpTransport } from '../mail/smtp.js';
import { InboxWatcher, type Verdict } from '../mail/inbox.js';
import { Ledger } from '../store/ledger.js';
import { connectControl } from '../agent/control.js';
import { DESK, messageIdOf, selfTestMail, type DeskMailbox } from '../agent/desk.js';
import { natMapping, stunBinding, type StunServer } from '../address/stun.js';
import { interfaceAddresses } from '../address/interfaces.js';
import { describeMapping, mapUdpPort, MAPPING_MEANING, PORTMAP_HINT } from '../address/portmap.js';
import { PeerdialError } from '../errors.js';
import { checkSieveRule, describeSieveRule, MANAGESIEVE_PORT, sieveLoginFor, type SieveRuleStatus } from '../mail/sieve-rule.js';
import { watchedMailboxes } from '../agent/mailbox.js';

export type CheckVerdict = 'ok' | 'warn' | 'fail' | 'not-checked';

export interface CheckResult {
  id: 'config' | 'imap-login' | 'imap-idle' | 'smtp' | 'sieve' | 'mail-kept' | 'stun' | 'nat' | 'turn' | 'port-mapping' | 'ipv6';
  title: string;
  verdict: CheckVerdict;
  detail: string;
  hint?: string;
  ms?: number;
}

export interface DoctorOptions {
  config?: string;
  account?: string;
  /** Time allowed for each network step. */
  timeoutMs?: number;
  onProgress?: (c: CheckResult) => void;
  signal?: AbortSignal;
  /** How long the test mail for `mail-kept` is left alone to see whether another client deletes it (default 10 s). */
  keptWatchMs?: number;
  /** The port-mapping check: the router to ask (default: the IPv4 default gateway) and how ('off': not checked). */
  portMapping?: { gateway?: string; method?: 'auto' | 'natpmp' | 'upnp' | 'off' };
}

const TITLES: Record<CheckResult['id'], string> = {
  config: 'config readable',
  'imap-login': 'IMAP login',
  'imap-idle': 'IMAP IDLE (time from a sent mail to its notification)',
  smtp: 'SMTP submission',
  sieve: 'server-side rule (Sieve) for peerdial mail',
  'mail-kept': 'peerdial mail stays until peerdial reads it',
  stun: 'STUN reachability',
  nat: 'NAT behaviour',
  turn: 'TURN relay (allocation over UDP)',
  'port-mapping': 'port mapping (UPnP-IGD, NAT-PMP/PCP)',
  ipv6: 'IPv6',
};

export { parseStunUrl } from '../address/discover.js';
import { checkTurn } from './turn.js';
import { parseStunUrl } from '../address/discover.js';

function describe(err: unknown): { detail: string; hint?: string } {
  if (err instanceof PeerdialError) return { detail: `${err.message} [${err.code}]`, ...(err.hint ? { hint: err.hint } : {}) };
  return { detail: (err as Error)?.message ?? String(err) };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new PeerdialError('TCP_FAILED', `${what}: no answer within ${Math.round(ms / 1000)} s`, { hint: 'Check the host, port and firewall.' })), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

/** Runs every check; never throws for a failed check (that is a `fail` verdict). */
export async function runDoctor(o: DoctorOptions = {}): Promise<CheckResult[]> {
  const timeoutMs = o.timeoutMs ?? 20_000;
  const out: CheckResult[] = [];
  const report = (id: CheckResult['id'], verdict: CheckVerdict, detail: string, extra: { hint?: string; ms?: number } = {}) => {
    const c: CheckResult = { id, title: TITLES[id], verdict, detail, ...(extra.hint ? { hint: extra.hint } : {}), ...(extra.ms !== undefined ? { ms: extra.ms } : {}) };
    out.push(c);
    o.onProgress?.(c);
    return c;
  };
  const skip = (ids: CheckResult['id'][], why: string) => ids.forEach((id) => report(id, 'not-checked', why));

  // ---- config
  let cfg: Config | undefined;
  let account: Account | undefined;
  try {
    cfg = await loadConfig(defaultConfigPath(o.config));
    pickAccount(cfg, o.account);
    account = await Account.open(cfg, o.account ? { email: o.account } : {});
    report('config', 'ok', `${cfg.file}: account ${account.email}`);
  } catch (err) {
    const d = describe(err);
    report('config', 'fail', d.detail, d.hint ? { hint: d.hint } : {});
    if (cfg) {
      skip(['imap-login', 'imap-idle', 'smtp', 'sieve', 'mail-kept'], 'needs a usable account');
    } else {
      skip(['imap-login', 'imap-idle', 'smtp', 'sieve', 'mail-kept', 'stun', 'nat', 'turn'], 'needs the config');
    }
  }

  // ---- mail
  const agent = account ? await connectControl(account.stateDir) : undefined;
  let imapOk = false;
  let smtpOk = false;
  if (account) {
    let idle = false;
    const t0 = Date.now();
    const s = account.account.imap;
    if (agent) {
      // one consumer of the mailbox: the running agent answers for it
      try {
        const mb = (await withTimeout(agent.request(DESK.mailbox), timeoutMs, 'the running agent')) as DeskMailbox;
        idle = mb.idle;
        imapOk = mb.connected;
        if (mb.connected) report('imap-login', 'ok', `the running agent (pid ${mb.pid}) is logged in as ${s.user} at ${s.host}:${s.port} (${s.tls})`, { ms: Date.now() - t0 });
        else report('imap-login', 'fail', `the running agent (pid ${mb.pid}) is not connected to ${s.host}:${s.port}`, { hint: 'See why: peerdial status', ms: Date.now() - t0 });
      } catch (err) {
        const d = describe(err);
        report('imap-login', 'fail', `the running agent did not answer: ${d.detail}`, { ...(d.hint ? { hint: d.hint } : {}), ms: Date.now() - t0 });
      }
    } else try {
      const client = await withTimeout(connectImap(await account.imapTarget()), timeoutMs, 'IMAP');
      idle = client.capabilities.has('IDLE');
      await client.logout().catch(() => client.close());
      imapOk = true;
      report('imap-login', 'ok', `logged in as ${s.user} at ${s.host}:${s.port} (${s.tls})`, { ms: Date.now() - t0 });
    } catch (err) {
      const d = describe(err);
      report('imap-login', 'fail', d.detail, { ...(d.hint ? { hint: d.hint } : {}), ms: Date.now() - t0 });
    }
    const t1 = Date.now();
    try {
      await withTimeout(probeSmtp(await account.smtpTarget()), timeoutMs, 'SMTP');
      smtpOk = true;
      const s = account.account.smtp;
      report('smtp', 'ok', `logged in as ${s.user} at ${s.host}:${s.port} (${s.tls})`, { ms: Date.now() - t1 });
    } catch (err) {
      const d = describe(err);
      report('smtp', 'fail', d.detail, { ...(d.hint ? { hint: d.hint } : {}), ms: Date.now() - t1 });
    }
    if (!imapOk) report('imap-idle', 'not-checked', 'the IMAP login failed');
    else if (!idle) {
      report('imap-idle', 'warn', `${account.account.imap.host} does not offer IDLE: peerdial polls every ${account.config.pollSeconds} s, so a call can ring that much later`, {
        hint: 'Lower defaults.poll_seconds for faster rings (more traffic), or use a provider whose IMAP server offers IDLE.',
      });
    } else if (!smtpOk) report('imap-idle', 'not-checked', 'IDLE is offered; the timing needs SMTP, which failed');
    else {
      try {
        const r = agent ? ((await withTimeout(agent.request(DESK.idleTiming, { timeoutMs }), timeoutMs + 5000, 'the running agent')) as { ms: number }) : await timeIdle(account, timeoutMs);
        report(
          'imap-idle',
          r.ms > 30_000 ? 'warn' : 'ok',
          `IDLE supported; a mail to yourself was submitted, delivered and announced by IDLE in ${r.ms} ms (filed into ${account.account.folder})`,
          { ms: r.ms, ...(r.ms > 30_000 ? { hint: 'Mail is slow here: calls take that long to ring. Raise defaults.ring_seconds.' } : {}) },
        );
      } catch (err) {
        const d = describe(err);
        report('imap-idle', 'fail', `IDLE is offered, but: ${d.detail}`, { hint: d.hint ?? 'Check that mail to yourself arrives in the INBOX (filters, spam folder).' });
      }
    }
  }

  agent?.close();

  // ---- the server-side rule, and whether another client deletes peerdial mail
  if (account) {
    if (!imapOk) report('sieve', 'not-checked', 'the IMAP login failed');
    else {
      const t = Date.now();
      const r = await sieveCheck(account, Math.min(timeoutMs, 10_000));
      report('sieve', r.verdict, r.detail, { ...(r.hint ? { hint: r.hint } : {}), ms: Date.now() - t });
    }
    if (!imapOk || !smtpOk) report('mail-kept', 'not-checked', 'needs the IMAP and SMTP logins');
    else if (agent) {
      // one consumer of the mailbox: beside the agent the doctor logs in to no IMAP of its own
      report('mail-kept', 'not-checked', 'the agent is running and reads peerdial mail as it arrives; to see whether another mail client deletes peerdial mail first, stop the agent and run peerdial doctor again');
    } else {
      const t = Date.now();
      try {
        const r = await keptCheck(account, timeoutMs, o.keptWatchMs ?? 10_000);
        report('mail-kept', r.verdict, r.detail, { ...(r.hint ? { hint: r.hint } : {}), ms: Date.now() - t });
      } catch (err) {
        const d = describe(err);
        report('mail-kept', 'fail', d.detail, { ...(d.hint ? { hint: d.hint } : {}), ms: Date.now() - t });
      }
    }
  }

  // ---- network
  if (cfg) {
    const stuns = cfg.ice.servers.map(parseStunUrl).filter((s): s is StunServer => !!s);
    const stunTimeout = Math.min(timeoutMs, 3000);
    if (stuns.length === 0) {
      report('stun', 'warn', 'no STUN server in ice.servers: peerdial only knows its interface addresses', {
        hint: 'Behind a NAT, add one: [ice] servers = ["stun:stun.example.org:3478"].',
      });
      report('nat', 'not-checked', 'needs two STUN servers in ice.servers');
    } else {
      const s = stuns[0]!;
      const t = Date.now();
      try {
        const mapped = await stunBinding(s, { timeoutMs: stunTimeout, ...(cfg.ice.bindAddress ? { localAddress: cfg.ice.bindAddress } : {}), ...(o.signal ? { signal: o.signal } : {}) });
        const local = interfaceAddresses().some((a) => a.ip === mapped.address);
        report('stun', 'ok', `${s.host}:${s.port} sees this machine at ${mapped.address}:${mapped.port}${local ? ' (an address of this machine: no NAT on the way)' : ' (behind a NAT)'}`, { ms: Date.now() - t });
      } catch (err) {
        const d = describe(err);
        report('stun', 'fail', `${s.host}:${s.port}: ${d.detail}`, {
          hint: `Check ice.servers in ${cfg.file} (is a STUN server at ${s.host}:${s.port}?) and that outgoing UDP to it is allowed.`,
          ms: Date.now() - t,
        });
      }
      if (stuns.length < 2) report('nat', 'not-checked', 'needs two STUN servers in ice.servers to compare what each sees');
      else {
        try {
          const r = await natMapping([stuns[0]!, stuns[1]!], { timeoutMs: stunTimeout, ...(cfg.ice.bindAddress ? { localAddress: cfg.ice.bindAddress } : {}) });
          if (r.mapping === 'endpoint-independent') report('nat', 'ok', 'endpoint-independent mapping (no NAT, or a cone NAT): peers can reach the address STUN reports');
          else if (r.mapping === 'endpoint-dependent') {
            report('nat', 'warn', `endpoint-dependent mapping (symmetric NAT): each peer sees another port (${r.seen.map((m) => (m ? `${m.address}:${m.port}` : '-')).join(' vs ')})`, {
              hint: 'Calls to peers behind another symmetric NAT cannot connect directly: map a port on the router (UPnP/NAT-PMP, or by hand) or use a TURN server.',
            });
          } else report('nat', 'warn', 'unknown: one of the two STUN servers did not answer', { hint: 'Check the second entry of ice.servers.' });
        } catch (err) {
          const d = describe(err);
          report('nat', 'fail', d.detail, d.hint ? { hint: d.hint } : {});
        }
      }
    }
  }
  if (cfg) await checkTurn(cfg, report, { timeoutMs: Math.min(timeoutMs, 5000), ...(o.signal ? { signal: o.signal } : {}) });
  // ---- port mapping: map an ephemeral UDP port for 60 s and remove it again
  const pm = o.portMapping ?? {};
  if (pm.method === 'off') report('port-mapping', 'not-checked', 'skipped (--map-method off)');
  else {
    const t = Date.now();
    const probe = createSocket('udp4');
    try {
      await new Promise<void>((resolve, reject) => {
        probe.once('error', reject);
        probe.bind(0, cfg?.ice.bindAddress, () => resolve());
      });
      const m = await mapUdpPort({
        internalPort: probe.address().port,
        ttlSeconds: 60,
        timeoutMs: Math.min(timeoutMs, 5000),
        ...(pm.method ? { method: pm.method } : {}),
        ...(pm.gateway ? { gateway: pm.gateway } : {}),
        ...(cfg?.ice.bindAddress ? { internalHost: cfg.ice.bindAddress } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      });
      const ms = Date.now() - t;
      let removed = 'removed again';
      try {
        await m.unmap();
      } catch (err) {
        removed = `not removed (${(err as Error).message})`;
      }
      report('port-mapping', 'ok', `the router ${m.gateway} mapped ${describeMapping(m)} for 60 s, ${removed}: ${MAPPING_MEANING}`, { ms });
    } catch (err) {
      const d = describe(err);
      report('port-mapping', 'warn', `${d.detail} (not needed when this machine has a public address or a port is forwarded by hand)`, {
        hint: d.hint ?? `${PORTMAP_HINT[0]!.toUpperCase()}${PORTMAP_HINT.slice(1)}.`,
        ms: Date.now() - t,
      });
    } finally {
      probe.close();
    }
  }

  // ---- IPv6
  const v6 = interfaceAddresses().filter((a) => a.scope === 'ipv6-global');
  if (v6.length) report('ipv6', 'ok', `global IPv6 address${v6.length > 1 ? 'es' : ''}: ${v6.map((a) => `${a.ip} (${a.interface})`).join(', ')}: peers with IPv6 can reach this machine without NAT (if no firewall drops it)`);
  else {
    report('ipv6', 'warn', 'no global IPv6 address on any interface: only IPv4 (usually behind NAT)', {
      hint: 'Ask your provider for IPv6 or enable it on the router; with it, most calls connect without NAT traversal.',
    });
  }
  return out;
}

/** Sends a peerdial `announce` to ourselves and times it until our IDLE watcher has it; files it into peerdial's folder. */
async function timeIdle(account: Account, timeoutMs: number): Promise<{ ms: number }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'peerdial-doctor-'));
  const client = await connectImap(await account.imapTarget());
  const ac = new AbortController();
  let watching: Promise<void> | undefined;
  try {
    const ledger = new Ledger(dir);
    let ourId = '';
    let resolveSeen!: () => void;
    const seen = new Promise<void>((r) => (resolveSeen = r));
    const watcher = new InboxWatcher<Verdict>({
      client,
      ledger,
      folder: account.account.folder,
      ...watchedMailboxes(account),
      classify: async (raw) => {
        const id = messageIdOf(raw);
        // Only our test mail is "verified" (and so filed); everything else stays where it is, untouched.
        return id && id === ourId
          ? { ok: true, messageId: id, nonce: randomBytes(8).toString('hex'), expires: new Date(Date.now() + 60_000).toISOString() }
          : { ok: false, messageId: id, reason: 'not-doctors', detail: 'not the doctor\'s test mail' };
      },
      onMail: (m) => {
        if (m.verdict.ok) resolveSeen();
      },
    });
    await watcher.prepare();
    // Start at the current end of the INBOX (and the folder): older mail is not the doctor's business.
    const mb = client.mailbox;
    if (mb) await ledger.setMark(mb.path, { uidValidity: String(mb.uidValidity), lastUid: Number(mb.uidNext) - 1 });
    const other = watchedMailboxes(account).alsoCheck;
    const st = other ? await client.status(other, { uidNext: true, uidValidity: true }) : undefined;
    if (other && st) await ledger.setMark(other, { uidValidity: String(st.uidValidity), lastUid: Number(st.uidNext) - 1 });
    const built = await selfTestMail(account);
    ourId = built.messageId;
    watching = watcher.watch({ signal: ac.signal });
    const target = await account.smtpTarget();
    const transport = await smtpTransport(target);
    const t0 = Date.now();
    try {
      await sendRaw(transport, target, { from: account.email, to: [account.email] }, built.raw);
    } finally {
      transport.close();
    }
    await withTimeout(Promise.race([seen, watching!.then(() => Promise.reject(new PeerdialError('IMAP_FAILED', 'the IMAP connection ended')))]), timeoutMs, 'the test mail to yourself');
    return { ms: Date.now() - t0 };
  } finally {
    ac.abort();
    // the watcher's pass ends (its last ledger write) before its ledger is removed
    await watching?.catch(() => undefined);
    await client.logout().catch(() => client.close());
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Found = { verdict: CheckVerdict; detail: string; hint?: string };

/** The rule on the server (ManageSieve on the IMAP host: sieve_port, else 4190). */
async function sieveCheck(account: Account, timeoutMs: number): Promise<Found> {
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

/**
 * Sends a peerdial mail to ourselves and leaves it alone for `watchMs`: if
 * it disappears from the INBOX and peerdial's folder meanwhile, another
 * mail client deletes (or moves) peerdial mail before peerdial can read it.
 * The test mail is removed at the end (only it: by UID).
 */
async function keptCheck(account: Account, timeoutMs: number, watchMs: number): Promise<Found> {
  const folder = account.account.folder;
  const client = await connectImap(await account.imapTarget());
  try {
    const built = await selfTestMail(account);
    const boxes = ['INBOX', folder];
    for (const box of boxes) {
      // the folder may not exist yet (a fresh account)
      if (box !== 'INBOX') await client.mailboxCreate(box).catch(() => undefined);
    }
    const where = async (): Promise<{ box: string; uid: number } | undefined> => {
      for (const box of boxes) {
        await client.mailboxOpen(box);
        const uids = (await client.search({ header: { 'message-id': built.messageId } }, { uid: true })) || [];
        if (uids.length) return { box, uid: uids[0]! };
      }
      return undefined;
    };
    const target = await account.smtpTarget();
    const transport = await smtpTransport(target);
    try {
      await sendRaw(transport, target, { from: account.email, to: [account.email] }, built.raw);
    } finally {
      transport.close();
    }
    const sent = Date.now();
    let seen: { box: string; uid: number } | undefined;
    while (!seen && Date.now() - sent < timeoutMs) {
      seen = await where();
      if (!seen) await pause(250);
    }
    const gone: Found = {
      verdict: 'fail',
      detail: '',
      hint: `Another mail program on this address deletes or moves peerdial mail before peerdial reads it: calls can be lost. Turn on the server-side rule (peerdial init --sieve --force with your usual options), which files peerdial mail into ${folder} at delivery; in Delta Chat, turn off "Delete from server" (Settings, Chats and media, Delete messages from server: never).`,
    };
    if (!seen) {
      return { ...gone, detail: `the test mail to yourself did not show up in INBOX or ${folder} within ${Math.round(timeoutMs / 1000)} s: another mail client deleted or moved it at once, or a filter put it elsewhere (spam?)`, hint: `${gone.hint} If a filter of yours moves it, let mail with the header Peerdial-Version stay in the INBOX.` };
    }
    const firstSeen = seen.box;
    while (Date.now() - sent < watchMs) {
      await pause(500);
      seen = await where();
      if (!seen) {
        return { ...gone, detail: `the test mail to yourself was deleted or moved by another mail client ${Date.now() - sent} ms after it was sent (it had arrived in ${firstSeen}; peerdial had not read it)` };
      }
    }
    // only our own test mail goes: by UID in the mailbox it is in
    await client.mailboxOpen(seen.box);
    await client.messageDelete(String(seen.uid), { uid: true }).catch(() => undefined);
    return {
      verdict: 'ok',
      detail: `a test mail to yourself stayed ${Math.round(watchMs / 1000)} s in ${seen.box} untouched${seen.box === folder && firstSeen === folder ? ' (filed there at delivery by the server-side rule)' : ''}; removed again`,
    };
  } finally {
    await client.logout().catch(() => client.close());
  }
}
