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
import { createSocket } from 'node:dgram';
import { loadConfig, pickAccount, type Config } from '../config/config.js';
import { defaultConfigPath } from '../store/paths.js';
import { Account } from '../agent/account.js';
import { connectImap } from '../mail/imap.js';
import { probeSmtp } from '../mail/smtp.js';
import { connectControl } from '../agent/control.js';
import { DESK, type DeskMailbox } from '../agent/desk.js';
import { natMapping, stunBinding, type StunServer } from '../address/stun.js';
import { interfaceAddresses } from '../address/interfaces.js';
import { describeMapping, mapUdpPort, MAPPING_MEANING, PORTMAP_HINT } from '../address/portmap.js';
import { parseStunUrl } from '../address/discover.js';
import { describe, withTimeout, type CheckResult, type CheckVerdict } from './result.js';
import { timeIdle } from './idle-timing.js';
import { sieveCheck } from './sieve.js';
import { keptCheck } from './mail-kept.js';
import { checkTurn } from './turn.js';

export type { CheckResult, CheckVerdict } from './result.js';
export { parseStunUrl } from '../address/discover.js';

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
