/**
 * A small Internet in network namespaces, made by a test and removed again
 * (root only). Nothing here can leave the machine: every namespace is new,
 * the "public" segment is a bridge inside its own namespace and uses only
 * benchmarking (198.18.0.0/24) and documentation (2001:db8::/32) addresses;
 * the root namespace gets no interface, address or rule.
 *
 *   pub (bridge br0, coturn on 198.18.0.2 + .3 and 2001:db8::2: STUN only, or
 *        STUN + TURN over UDP with one user when BuildOptions.turn is given)
 *    |-- site "public":    host 198.18.0.x directly on the bridge
 *    |-- site behind NAT:  router (wan0 198.18.0.x, lan0 10.0.i.1) -- host 10.0.i.2
 *    `-- site "v6only":    router (wan0 2001:db8::x, lan0 2001:db8:i::1) -- host 2001:db8:i::2
 *
 * Site kinds (behaviour as measured in ../shared/notes/nat.md):
 * - public:     no NAT, no firewall.
 * - fullcone:   nftables masquerade + a dynamic map "UDP source port -> LAN
 *               host" filled on the way out and used for DNAT on the way in.
 * - restricted: port-restricted cone: iptables MASQUERADE + stateful forward.
 * - symmetric:  MASQUERADE --random-fully + stateful forward.
 * - v6only:     IPv6 only, routed, no NAT, stateful forward (no unsolicited in).
 * - upnp:       port-restricted router running miniupnpd (NAT-PMP + UPnP-IGD)
 *               with ext_perform_stun against the public STUN server.
 *
 * Every namespace name starts with a per-run prefix (`pdn<pid>-`); destroy()
 * (also run from a process 'exit' handler) kills every process the harness
 * started and deletes every namespace it made.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isRoot, requireCommand } from './system.js';

const execFileP = promisify(execFile);

export type SiteKind = 'public' | 'fullcone' | 'restricted' | 'symmetric' | 'v6only' | 'upnp';
export const SITE_KINDS: readonly SiteKind[] = ['public', 'fullcone', 'restricted', 'symmetric', 'v6only', 'upnp'];

export interface SiteSpec {
  name: string;
  kind: SiteKind;
}

export interface Site {
  name: string;
  kind: SiteKind;
  /** The namespace of the site's host, where peers run. */
  hostNs: string;
  /** The router's namespace (none for `public`). */
  routerNs?: string;
  /** The host's IPv4 address (none for `v6only`). */
  ip?: string;
  /** The host's IPv6 address (only `v6only`). */
  ip6?: string;
  /** The router's LAN address (NAT-PMP / UPnP gateway), if any. */
  gateway?: string;
  /** The router's public (WAN) address, or the host's for `public`. */
  publicIp?: string;
  /** The address ICE should bind to: ip or ip6. */
  bindAddress: string;
  /** iceServers for node-datachannel in this site. */
  iceServers: string[];
}

export interface Network {
  prefix: string;
  site(name: string): Site;
  sites: Site[];
  /** The namespace of the public segment (bridge + STUN server). */
  publicNs: string;
  /** STUN server addresses (IPv4: two addresses of one RFC 5780 server; IPv6: one). */
  stun: { v4: [string, string]; v6: string; port: number };
  /** `stun:` URLs of the IPv4 STUN server addresses. */
  stunServers: string[];
  /** With BuildOptions.turn: coturn's TURN service (UDP, long-term credentials) at the first IPv4 address. */
  turn?: { host: string; port: number; user: string; password: string; realm: string };
  /** Run a command in a namespace; resolves with stdout, rejects with stderr in the message. */
  exec(ns: string, cmd: string, args: string[], input?: string): Promise<string>;
  /** Start `node <args>` in a namespace (cwd: the repo); killed on destroy(). */
  spawnInNs(ns: string, args: string[]): ChildProcess;
  /** Start any command in a namespace; killed on destroy(). */
  spawnCmdInNs(ns: string, cmd: string, args: string[]): ChildProcess;
  /** Human-readable log of what the daemons printed (for failure messages). */
  daemonLog(): string;
  destroy(): Promise<void>;
}

export interface BuildOptions {
  sites: SiteSpec[];
  /** Extra log lines to stderr while building. */
  verbose?: boolean;
  /** coturn also relays (TURN over UDP, long-term credentials) for this one user; otherwise it is STUN only. */
  turn?: { user: string; password: string };
}

const TURN_REALM = 'peerdial.test';

const PUB_V4 = { gw: '198.18.0.1', stun1: '198.18.0.2', stun2: '198.18.0.3' };
const PUB_V6 = { gw: '2001:db8::1', stun: '2001:db8::2' };
const STUN_PORT = 3478;

export class NotRootError extends Error {
  constructor() {
    super(
      'the network tests build network namespaces and NAT routers and must run as root ' +
        '(CI runs them as root): sudo npm test -- test/nat.test.ts',
    );
    this.name = 'NotRootError';
  }
}

/** The commands the harness needs; as root, missing Debian packages are installed. */
export function ensureNetworkTools(kinds: Iterable<SiteKind>): void {
  if (!isRoot()) throw new NotRootError();
  requireCommand('ip', 'iproute2');
  requireCommand('iptables', 'iptables');
  requireCommand('turnserver', 'coturn');
  const set = new Set(kinds);
  if (set.has('fullcone')) requireCommand('nft', 'nftables');
  if (set.has('upnp')) requireCommand('miniupnpd', 'miniupnpd');
}

// Cleanup state shared by every network of this process (for the 'exit' handler).
const liveNamespaces = new Set<string>();
const liveProcesses = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHandlerInstalled = false;

function cleanupSync(): void {
  for (const p of liveProcesses) {
    try {
      if (p.pid !== undefined && p.exitCode === null) process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  liveProcesses.clear();
  for (const ns of liveNamespaces) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      /* gone */
    }
    rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
  }
  liveNamespaces.clear();
  for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
  liveDirs.clear();
}

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  process.on('exit', cleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      cleanupSync();
      process.exit(130);
    });
  }
}

async function run(cmd: string, args: string[], input?: string): Promise<string> {
  try {
    const child = execFileP(cmd, args, { maxBuffer: 16 * 1024 * 1024, timeout: 30_000 });
    if (input !== undefined) {
      child.child.stdin?.end(input);
    }
    const { stdout } = await child;
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

let runCounter = 0;

export async function buildNetwork(opts: BuildOptions): Promise<Network> {
  ensureNetworkTools(opts.sites.map((s) => s.kind));
  installExitHandler();
  const prefix = `pdn${process.pid}${runCounter++ === 0 ? '' : `x${runCounter}`}-`;
  const dir = join(tmpdir(), `${prefix}netns`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  liveDirs.add(dir);
  const namespaces: string[] = [];
  const processes: ChildProcess[] = [];
  const logs: string[] = [];
  const log = (line: string) => {
    logs.push(line);
    if (opts.verbose) process.stderr.write(`[netns] ${line}\n`);
  };

  const ip = (...args: string[]) => run('ip', args);
  const inNs = (ns: string, cmd: string, args: string[], input?: string) =>
    run('ip', ['netns', 'exec', ns, cmd, ...args], input);
  const sysctl = (ns: string, kv: string) => inNs(ns, 'sysctl', ['-qw', kv]);
  const addNs = async (short: string): Promise<string> => {
    const name = `${prefix}${short}`;
    await ip('netns', 'add', name);
    namespaces.push(name);
    liveNamespaces.add(name);
    await ip('-n', name, 'link', 'set', 'lo', 'up');
    // No router advertisements or DAD delays in this little world.
    await sysctl(name, 'net.ipv6.conf.all.accept_ra=0');
    await sysctl(name, 'net.ipv6.conf.default.accept_ra=0');
    await sysctl(name, 'net.ipv6.conf.default.accept_dad=0');
    await sysctl(name, 'net.ipv6.conf.all.accept_dad=0');
    return name;
  };
  /** veth from `a` (named ifA) to `b` (named ifB), both up. */
  const link = async (a: string, ifA: string, b: string, ifB: string) => {
    await ip('-n', a, 'link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB, 'netns', b);
    await ip('-n', a, 'link', 'set', ifA, 'up');
    await ip('-n', b, 'link', 'set', ifB, 'up');
  };

  const spawnCmdInNs = (ns: string, cmd: string, args: string[]): ChildProcess => {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'], cwd: process.cwd() });
    processes.push(child);
    liveProcesses.add(child);
    child.once('exit', () => liveProcesses.delete(child));
    return child;
  };

  const destroy = async (): Promise<void> => {
    for (const p of processes) {
      if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) {
        try {
          process.kill(p.pid, 'SIGTERM');
        } catch {
          /* gone */
        }
      }
    }
    // Up to 2 s for graceful exits, then SIGKILL.
    const deadline = Date.now() + 2000;
    while (processes.some((p) => p.exitCode === null && p.signalCode === null) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const p of processes) {
      if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      liveProcesses.delete(p);
    }
    for (const ns of namespaces.splice(0).reverse()) {
      try {
        await ip('netns', 'del', ns);
      } catch {
        /* already gone */
      }
      rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
      liveNamespaces.delete(ns);
    }
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  };

  const sites: Site[] = [];
  try {
    // --- the public segment -------------------------------------------------
    const pub = await addNs('pub');
    await ip('-n', pub, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', pub, 'link', 'set', 'br0', 'up');
    for (const a of [PUB_V4.gw, PUB_V4.stun1, PUB_V4.stun2]) await ip('-n', pub, 'addr', 'add', `${a}/24`, 'dev', 'br0');
    for (const a of [PUB_V6.gw, PUB_V6.stun]) await ip('-n', pub, '-6', 'addr', 'add', `${a}/64`, 'dev', 'br0', 'nodad');
    await sysctl(pub, 'net.ipv6.conf.all.forwarding=1');

    // --- coturn: STUN only, or STUN + TURN over UDP for one user ----------------
    const relay = opts.turn
      ? [
          '--lt-cred-mech',
          '--user',
          `${opts.turn.user}:${opts.turn.password}`,
          '--realm',
          TURN_REALM,
          '--relay-ip',
          PUB_V4.stun1,
          '--min-port',
          '50000',
          '--max-port',
          '59999',
          '--no-tcp-relay',
          // The sites' private addresses (host candidates) are not routed on
          // the public segment; coturn ends an allocation whose relay socket
          // fails to send there (ENETUNREACH), so it refuses them as peers,
          // as relays on the Internet commonly do.
          '--denied-peer-ip',
          '10.0.0.0-10.255.255.255',
          '--no-tcp',
          '--fingerprint',
        ]
      : ['--stun-only'];
    const turn = spawnCmdInNs(pub, 'turnserver', [
      '-n', // no config file
      ...relay,
      '--no-cli',
      '--no-tls',
      '--no-dtls',
      '--listening-port',
      String(STUN_PORT),
      '--listening-ip',
      PUB_V4.stun1,
      '--listening-ip',
      PUB_V4.stun2,
      '--listening-ip',
      PUB_V6.stun,
      '--log-file',
      'stdout',
      '--simple-log',
      '--pidfile',
      join(dir, 'turnserver.pid'),
      '--userdb',
      join(dir, 'turnserver.db'),
    ]);
    collect(turn, 'turnserver', log);
    await waitForStun(pub, inNs, turn, logs);

    // --- sites --------------------------------------------------------------
    let index = 0;
    for (const spec of opts.sites) {
      index++;
      if (index > 200) throw new Error('at most 200 sites');
      const short = `s${index}`;
      const wanV4 = `198.18.0.${10 + index}`;
      const wanV6 = `2001:db8::${(0x100 + index).toString(16)}`;
      const stunV4 = `stun:${PUB_V4.stun1}:${STUN_PORT}`;
      if (spec.kind === 'public') {
        const host = await addNs(`${short}h`);
        await link(pub, short, host, 'eth0');
        await ip('-n', pub, 'link', 'set', short, 'master', 'br0');
        await ip('-n', host, 'addr', 'add', `${wanV4}/24`, 'dev', 'eth0');
        sites.push({
          name: spec.name,
          kind: spec.kind,
          hostNs: host,
          ip: wanV4,
          publicIp: wanV4,
          bindAddress: wanV4,
          iceServers: [stunV4],
        });
        log(`site ${spec.name} (public): host ${wanV4} in ${host}`);
        continue;
      }
      const router = await addNs(`${short}r`);
      const host = await addNs(`${short}h`);
      await link(pub, short, router, 'wan0');
      await ip('-n', pub, 'link', 'set', short, 'master', 'br0');
      await link(router, 'lan0', host, 'eth0');

      if (spec.kind === 'v6only') {
        const lan = `2001:db8:${index.toString(16)}::`;
        await ip('-n', router, '-6', 'addr', 'add', `${wanV6}/64`, 'dev', 'wan0', 'nodad');
        await ip('-n', router, '-6', 'addr', 'add', `${lan}1/64`, 'dev', 'lan0', 'nodad');
        await ip('-n', router, '-6', 'route', 'add', 'default', 'via', PUB_V6.gw);
        await sysctl(router, 'net.ipv6.conf.all.forwarding=1');
        await ip('-n', host, '-6', 'addr', 'add', `${lan}2/64`, 'dev', 'eth0', 'nodad');
        await ip('-n', host, '-6', 'route', 'add', 'default', 'via', `${lan}1`);
        await ip('-n', pub, '-6', 'route', 'add', `${lan}/64`, 'via', wanV6);
        // A home router's IPv6 firewall: replies only, nothing unsolicited.
        await inNs(router, 'ip6tables', ['-P', 'FORWARD', 'DROP']);
        await inNs(router, 'ip6tables', ['-A', 'FORWARD', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT']);
        await inNs(router, 'ip6tables', ['-A', 'FORWARD', '-i', 'lan0', '-o', 'wan0', '-j', 'ACCEPT']);
        await inNs(router, 'ip6tables', ['-A', 'FORWARD', '-p', 'ipv6-icmp', '-j', 'ACCEPT']);
        // libjuice refuses "stun:[v6]:port"; a host name from the namespace's
        // own /etc/hosts (bind-mounted by `ip netns exec`) works.
        mkdirSync(`/etc/netns/${host}`, { recursive: true });
        writeFileSync(`/etc/netns/${host}/hosts`, `127.0.0.1 localhost\n::1 localhost\n${PUB_V6.stun} stun6.test\n`);
        sites.push({
          name: spec.name,
          kind: spec.kind,
          hostNs: host,
          routerNs: router,
          ip6: `${lan}2`,
          gateway: `${lan}1`,
          publicIp: `${lan}2`,
          bindAddress: `${lan}2`,
          iceServers: [`stun:stun6.test:${STUN_PORT}`],
        });
        log(`site ${spec.name} (v6only): host ${lan}2 in ${host}`);
        continue;
      }

      const lanNet = `10.0.${index}`;
      await ip('-n', router, 'addr', 'add', `${wanV4}/24`, 'dev', 'wan0');
      await ip('-n', router, 'addr', 'add', `${lanNet}.1/24`, 'dev', 'lan0');
      await sysctl(router, 'net.ipv4.ip_forward=1');
      await ip('-n', host, 'addr', 'add', `${lanNet}.2/24`, 'dev', 'eth0');
      await ip('-n', host, 'route', 'add', 'default', 'via', `${lanNet}.1`);

      if (spec.kind === 'fullcone') {
        await inNs(router, 'nft', ['-f', '-'], fullConeRules());
      } else if (spec.kind !== 'upnp') {
        const ipt = (...args: string[]) => inNs(router, 'iptables', args);
        const masq = ['-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan0', '-j', 'MASQUERADE'];
        if (spec.kind === 'symmetric') masq.push('--random-fully');
        await ipt(...masq);
        await ipt('-P', 'FORWARD', 'DROP');
        await ipt('-A', 'FORWARD', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
        await ipt('-A', 'FORWARD', '-i', 'lan0', '-o', 'wan0', '-j', 'ACCEPT');
        await ipt('-P', 'INPUT', 'DROP');
        await ipt('-A', 'INPUT', '-i', 'lo', '-j', 'ACCEPT');
        await ipt('-A', 'INPUT', '-i', 'lan0', '-j', 'ACCEPT');
        await ipt('-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
      }
      if (spec.kind === 'upnp') await startMiniupnpd(router, index, lanNet, dir, spawnCmdInNs, inNs, log);
      sites.push({
        name: spec.name,
        kind: spec.kind,
        hostNs: host,
        routerNs: router,
        ip: `${lanNet}.2`,
        gateway: `${lanNet}.1`,
        publicIp: wanV4,
        bindAddress: `${lanNet}.2`,
        iceServers: [stunV4],
      });
      log(`site ${spec.name} (${spec.kind}): host ${lanNet}.2 behind ${wanV4} in ${host}`);
    }

  } catch (err) {
    await destroy();
    throw err;
  }

  const byName = new Map(sites.map((s) => [s.name, s]));
  return {
    prefix,
    sites,
    publicNs: `${prefix}pub`,
    site(name: string): Site {
      const s = byName.get(name);
      if (!s) throw new Error(`no site ${name}`);
      return s;
    },
    stun: { v4: [PUB_V4.stun1, PUB_V4.stun2], v6: PUB_V6.stun, port: STUN_PORT },
    stunServers: [`stun:${PUB_V4.stun1}:${STUN_PORT}`, `stun:${PUB_V4.stun2}:${STUN_PORT}`],
    ...(opts.turn ? { turn: { host: PUB_V4.stun1, port: STUN_PORT, user: opts.turn.user, password: opts.turn.password, realm: TURN_REALM } } : {}),
    exec: (ns, cmd, args, input) => inNs(ns, cmd, args, input),
    spawnInNs: (ns, args) => spawnCmdInNs(ns, process.execPath, args),
    spawnCmdInNs,
    daemonLog: () => logs.join('\n'),
    destroy,
  };
}

/** Keep the last lines a daemon printed, for failure messages. */
function collect(child: ChildProcess, name: string, log: (line: string) => void): void {
  let count = 0;
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() && count++ < 400) log(`${name}: ${line.trim()}`);
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  child.once('exit', (code, signal) => log(`${name} exited (${code ?? signal})`));
}

async function waitForStun(
  pub: string,
  inNs: (ns: string, cmd: string, args: string[]) => Promise<string>,
  turn: ChildProcess,
  logs: string[],
): Promise<void> {
  const want = [`${PUB_V4.stun1}:${STUN_PORT}`, `${PUB_V4.stun2}:${STUN_PORT}`, `[${PUB_V6.stun}]:${STUN_PORT}`];
  const deadline = Date.now() + 15_000;
  for (;;) {
    const out = await inNs(pub, 'ss', ['-Hlun']);
    if (want.every((w) => out.includes(w))) return;
    if (turn.exitCode !== null || Date.now() > deadline) {
      throw new Error(`coturn did not start listening on ${want.join(', ')}:\n${logs.slice(-30).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * nftables full-cone NAT: masquerade outgoing traffic and remember "UDP
 * source port -> LAN host"; any packet arriving at that port on the WAN side
 * is DNATed to the host, whoever sent it (endpoint-independent filtering).
 */
function fullConeRules(): string {
  return `
table ip fullcone {
  map udpmap {
    type inet_service : ipv4_addr
    flags dynamic,timeout
    timeout 5m
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "wan0" udp dport @udpmap dnat ip to udp dport map @udpmap
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" masquerade
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "lan0" oifname "wan0" meta l4proto udp update @udpmap { udp sport : ip saddr }
  }
}
`;
}

/**
 * The upnp router: a port-restricted NAT in nftables with the chains
 * miniupnpd (Debian's nftables build) fills in, plus miniupnpd answering
 * NAT-PMP and UPnP-IGD on the LAN. miniupnpd regards 198.18/15 as reserved
 * and refuses to map unless it learns the public address by STUN
 * (ext_perform_stun), which needs a STUN server with two addresses (our
 * coturn). It rewrites the source port of a mapped host to the external
 * port, so the host's srflx candidate equals the mapping.
 */
async function startMiniupnpd(
  router: string,
  index: number,
  lanNet: string,
  dir: string,
  spawnCmdInNs: (ns: string, cmd: string, args: string[]) => ChildProcess,
  inNs: (ns: string, cmd: string, args: string[], input?: string) => Promise<string>,
  log: (line: string) => void,
): Promise<void> {
  await inNs(
    router,
    'nft',
    ['-f', '-'],
    `
table inet filter {
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "lan0" oifname "wan0" accept
    jump miniupnpd
  }
  chain miniupnpd {
  }
  chain input {
    type filter hook input priority 0; policy drop;
    iif "lo" accept
    iifname "lan0" accept
    ct state established,related accept
    jump miniupnpd
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    jump postrouting_miniupnpd
    oifname "wan0" masquerade
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
`,
  );
  const conf = join(dir, `miniupnpd-${index}.conf`);
  writeFileSync(
    conf,
    [
      'ext_ifname=wan0',
      'listening_ip=lan0',
      'port=0',
      'enable_natpmp=yes',
      'enable_upnp=yes',
      'secure_mode=yes',
      'system_uptime=yes',
      'ext_perform_stun=yes',
      `ext_stun_host=${PUB_V4.stun1}`,
      `ext_stun_port=${STUN_PORT}`,
      'upnp_table_name=filter',
      'upnp_nat_table_name=filter',
      'upnp_forward_chain=miniupnpd',
      'upnp_nat_chain=prerouting_miniupnpd',
      'upnp_nat_postrouting_chain=postrouting_miniupnpd',
      `uuid=00000000-0000-4000-8000-${index.toString(16).padStart(12, '0')}`,
      `allow 1024-65535 ${lanNet}.0/24 1024-65535`,
      'deny 0-65535 0.0.0.0/0 0-65535',
      '',
    ].join('\n'),
  );
  const child = spawnCmdInNs(router, 'miniupnpd', ['-d', '-f', conf, '-P', join(dir, `miniupnpd-${index}.pid`)]);
  collect(child, `miniupnpd[${index}]`, log);
  // Wait until NAT-PMP listens on the LAN (after its STUN check, ~1-10 s).
  const deadline = Date.now() + 20_000;
  for (;;) {
    const out = await inNs(router, 'ss', ['-Hlun']);
    if (out.includes(`${lanNet}.1:5351`)) return;
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`miniupnpd did not start (NAT-PMP on ${lanNet}.1:5351)`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
