// A throw-away real mail system for tests: Dovecot (IMAP, IMAPS, LMTP,
// SASL for Postfix) and Postfix (submission with STARTTLS + AUTH, implicit
// TLS submission, delivery over LMTP to Dovecot), all inside one fresh temp
// dir, on 127.0.0.1 and free high ports. Nothing can leave the machine:
// Postfix only knows the test users and has no route to anywhere else.
//
// Needs root (Postfix's master and Dovecot's mail uid switching) and the
// Debian packages dovecot-imapd, dovecot-lmtpd, postfix, openssl; see
// ./system.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
} from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ensureMailServers, ensureSieve, requireCommand } from './system.js';

export interface MailUser {
  name: string;
  email: string;
  /** IMAP / SMTP login */
  user: string;
  password: string;
  /** absolute path of the user's Maildir (has cur/ new/ tmp/) */
  maildir: string;
}

export interface ImapTestConfig {
  host: string;
  port: number;
  secure: false;
  auth: { user: string; pass: string };
  tls: { ca: string };
}

export interface SmtpTestConfig {
  host: string;
  port: number;
  secure: false;
  requireTLS: true;
  auth: { user: string; pass: string };
  tls: { ca: string };
}

export interface MailStack {
  dir: string;
  host: '127.0.0.1';
  /** PEM of the self-signed CA that issued the server certificate (CN localhost, SAN localhost + 127.0.0.1) */
  ca: string;
  /** plain IMAP, STARTTLS-capable */
  imapPort: number;
  /** implicit-TLS IMAP */
  imapsPort: number;
  /** submission: STARTTLS required, AUTH required */
  smtpPort: number;
  /** implicit-TLS submission, AUTH required */
  smtpsPort: number;
  /** Dovecot LMTP (Postfix delivers here) */
  lmtpPort: number;
  /** ManageSieve (STARTTLS), with the `sieve` option; 0 without. */
  sievePort: number;
  domain: string;
  users: Record<string, MailUser>;
  /** Stops exactly the processes this stack started and removes dir. Idempotent. */
  stop(): Promise<void>;
  /** Stops Dovecot only (IMAP and LMTP go away; Postfix queues mail meanwhile). */
  stopImap(): Promise<void>;
  /** Starts Dovecot again: same ports, same mail; asks Postfix to retry queued mail. */
  startImap(): Promise<void>;
  /** From now on Postfix accepts submitted mail (all, or only mail from `from`) but keeps it in its hold queue. */
  holdDelivery(opts?: { from?: string }): Promise<void>;
  /** Stops holding and delivers everything queued now; resolves once the queue is empty. */
  releaseDelivery(): Promise<void>;
  /** Number of messages in Postfix's queues (incoming, active, deferred, hold). */
  queueSize(): Promise<number>;
  /** Puts a message straight into a user's Maildir (folder default INBOX), as new mail. */
  deliverRaw(name: string, raw: Buffer | string, folder?: string): Promise<void>;
  /** Options for `new ImapFlow(...)` (plain port, STARTTLS, verifying `ca`). */
  imapConfig(name: string): ImapTestConfig;
  /** Options for nodemailer's `createTransport(...)` (submission, STARTTLS + AUTH, verifying `ca`). */
  smtpConfig(name: string): SmtpTestConfig;
  /** Dovecot and Postfix logs, for diagnostics of failed tests. */
  log(): Promise<string>;
}

export interface MailStackOptions {
  users?: string[];
  domain?: string;
  /** Dovecot leaves IDLE out of its capabilities (a server without IDLE, for `peerdial doctor`). */
  disableIdle?: boolean;
  /**
   * Dovecot (IMAP and Postfix's SASL) also takes OAuth2 bearer tokens
   * (XOAUTH2, OAUTHBEARER), checked by POSTing them to `introspectionUrl`
   * (RFC 7662; the answer must say {"active": true, "username": USER}).
   * Passwords keep working.
   */
  oauth2?: { introspectionUrl: string };
  /**
   * Dovecot's Pigeonhole: Sieve runs at LMTP delivery (each user's active
   * script in ~/sieve) and a ManageSieve server (STARTTLS, AUTH PLAIN)
   * listens on `sievePort`. Needs the Debian packages dovecot-sieve and
   * dovecot-managesieved.
   */
  sieve?: boolean;
}

const DOVECOT = '/usr/sbin/dovecot';
const POSTFIX = '/usr/sbin/postfix';
const POSTQUEUE = '/usr/sbin/postqueue';
const POSTSUPER = '/usr/sbin/postsuper';
const POSTMAP = '/usr/sbin/postmap';
const MAIL_UID = 65534;
const MAIL_GID = 65534;
const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
/** Set PEERDIAL_KEEP_MAIL_STACK=1 to keep the temp dir (configs, logs, mail) after stop(). */
const KEEP_DIR = process.env.PEERDIAL_KEEP_MAIL_STACK === '1';

const TRACE = process.env.PEERDIAL_MAIL_STACK_TRACE === '1';
const trace = (t0: number, what: string) => {
  if (TRACE) process.stderr.write(`[mail-stack +${Date.now() - t0} ms] ${what}\n`);
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- processes

interface ProcId {
  pid: number;
  /** start time in clock ticks since boot (field 22 of /proc/PID/stat): tells a reused PID apart */
  start: string;
}

function procStat(pid: number): { state: string; ppid: number; start: string } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // rest[0] = field 3 (state), rest[1] = field 4 (ppid), rest[19] = field 22 (starttime)
    return { state: rest[0] ?? '?', ppid: Number(rest[1]), start: rest[19] ?? '' };
  } catch {
    return undefined;
  }
}

function procId(pid: number): ProcId | undefined {
  const st = procStat(pid);
  return st ? { pid, start: st.start } : undefined;
}

/** Still the same process and not a zombie. */
function isAlive(p: ProcId): boolean {
  const st = procStat(p.pid);
  return !!st && st.start === p.start && st.state !== 'Z' && st.state !== 'X';
}

function signal(p: ProcId, sig: NodeJS.Signals): void {
  if (!isAlive(p)) return;
  try {
    process.kill(p.pid, sig);
  } catch {
    /* gone meanwhile */
  }
}

async function waitGone(procs: ProcId[], timeoutMs: number): Promise<ProcId[]> {
  const deadline = Date.now() + timeoutMs;
  let alive = procs.filter(isAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(10);
    alive = alive.filter(isAlive);
  }
  return alive;
}

/** SIGTERM, wait, then SIGKILL what is left. */
async function terminate(procs: ProcId[]): Promise<void> {
  for (const p of procs) signal(p, 'SIGTERM');
  const left = await waitGone(procs, STOP_TIMEOUT_MS);
  for (const p of left) signal(p, 'SIGKILL');
  await waitGone(left, 2_000);
}

/** Live processes whose working directory, or a descendant thereof, is inside dir. */
export function processesUsing(dir: string): ProcId[] {
  const out: ProcId[] = [];
  const prefix = dir.endsWith('/') ? dir : dir + '/';
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let cwd: string;
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      continue;
    }
    if (cwd === dir || cwd.startsWith(prefix)) {
      const id = procId(pid);
      if (id && isAlive(id)) out.push(id);
    }
  }
  return out;
}

/** The process and all its live descendants. */
function processTree(root: ProcId): ProcId[] {
  if (!isAlive(root)) return [];
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const st = procStat(Number(entry));
    if (!st) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(Number(entry));
    children.set(st.ppid, list);
  }
  const out: ProcId[] = [root];
  const queue = [root.pid];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    for (const child of children.get(pid) ?? []) {
      const id = procId(child);
      if (id && isAlive(id)) {
        out.push(id);
        queue.push(child);
      }
    }
  }
  return out;
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command, waiting for its exit (not for its pipes to close: daemons
 * forked by it may keep them). Output goes to temp files when daemons may
 * inherit it.
 */
function run(file: string, args: string[], opts: { outFile?: string; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (opts.outFile) {
      const fd = openSync(opts.outFile, 'a');
      const child = spawn(file, args, { stdio: ['ignore', fd, fd] });
      closeSync(fd);
      child.once('error', reject);
      child.once('exit', (code, sig) => resolve({ code, signal: sig, stdout: '', stderr: '' }));
      return;
    }
    const child = spawn(file, args, { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code, sig) => resolve({ code, signal: sig, stdout, stderr }));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

async function runOk(file: string, args: string[], what: string, logHint = ''): Promise<RunResult> {
  const r = await run(file, args);
  if (r.code !== 0) {
    throw new Error(
      `${what} failed (${path.basename(file)} ${args.join(' ')} -> ${r.code ?? r.signal}): ${(r.stderr || r.stdout).trim()}${logHint}`,
    );
  }
  return r;
}

// ---------------------------------------------------------------- network

/** Free TCP ports on 127.0.0.1, chosen by the kernel (all held open together, so distinct). */
async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve());
      });
      ports.push((srv.address() as net.AddressInfo).port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** Connects and reads the first line; resolves true when it starts with `expect`. */
function greets(port: number, expect: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean) => {
      sock.removeAllListeners();
      sock.on('error', () => {});
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(2_000, () => done(false));
    sock.once('error', () => done(false));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\n')) done(buf.startsWith(expect));
    });
    sock.once('end', () => done(false));
  });
}

// ---------------------------------------------------------------- files

async function tail(file: string, bytes = 4_000): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.length > bytes ? '...' + text.slice(-bytes) : text;
  } catch {
    return '';
  }
}

/** Fails early with a clear message if uid 65534 could not reach the temp dir. */
function checkTraversable(dir: string): void {
  let d = path.dirname(dir);
  for (;;) {
    const st = statSync(d);
    if ((st.mode & 0o001) === 0) {
      throw new Error(`${d} is not traversable by other users (mode ${(st.mode & 0o777).toString(8)}); Dovecot's mail uid ${MAIL_UID} must reach ${dir}. Point TMPDIR elsewhere.`);
    }
    const up = path.dirname(d);
    if (up === d) return;
    d = up;
  }
}

async function chownR(p: string, uid: number, gid: number): Promise<void> {
  await chown(p, uid, gid);
  const st = await stat(p);
  if (!st.isDirectory()) return;
  for (const e of await readdir(p)) await chownR(path.join(p, e), uid, gid);
}

async function makeMaildir(dir: string): Promise<void> {
  for (const sub of ['cur', 'new', 'tmp']) {
    await mkdir(path.join(dir, sub), { recursive: true, mode: 0o700 });
  }
}

let deliverCounter = 0;

// ---------------------------------------------------------------- TLS

async function makeCerts(tlsDir: string): Promise<string> {
  await mkdir(tlsDir, { recursive: true, mode: 0o755 });
  const f = (n: string) => path.join(tlsDir, n);
  const openssl = 'openssl';
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const hint = ' (openssl)';
  await runOk(openssl, [
    'req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '3',
    '-subj', '/CN=peerdial test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ], 'creating the test CA', hint);
  await runOk(openssl, ['req', '-new', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost'],
    'creating the server key', hint);
  await writeFile(
    f('server.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n',
  );
  await runOk(openssl, [
    'x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial',
    '-out', f('server.crt'), '-days', '3', '-extfile', f('server.ext'),
  ], 'signing the server certificate', hint);
  await chmod(f('server.key'), 0o600);
  await chmod(f('ca.key'), 0o600);
  return readFile(f('ca.crt'), 'utf8');
}


// ---------------------------------------------------------------- Dovecot processes

interface DovecotProc {
  label: string;
  child: ChildProcess;
  proc: ProcId;
  exited: Promise<void>;
  exitInfo?: string;
}

/** Starts `dovecot -F -c conf` (our child, stdio into `out`) and waits until `ready()` says so. */
async function spawnDovecot(
  label: string,
  conf: string,
  out: string,
  log: string,
  ready: () => Promise<boolean>,
  readyWhat: string,
  logHint: string,
): Promise<DovecotProc> {
  const fd = openSync(out, 'a');
  const child = spawn(DOVECOT, ['-F', '-c', conf], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  const proc = await new Promise<ProcId>((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => {
      const p = child.pid !== undefined ? procId(child.pid) : undefined;
      if (p) resolve(p);
      else reject(new Error('exited immediately'));
    });
  }).catch(async (err: Error) => {
    throw new Error(`could not start ${label}: ${err.message}\n${await tail(out)}${logHint}`);
  });
  const d: DovecotProc = { label, child, proc, exited: Promise.resolve() };
  d.exited = new Promise<void>((resolve) => {
    child.once('exit', (code, sig) => {
      d.exitInfo = `exit ${code ?? sig}`;
      resolve();
    });
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (d.exitInfo !== undefined) {
      const text = ((await tail(out)) + '\n' + (await tail(log))).trim();
      throw new Error(`${label} stopped during start (${d.exitInfo}):\n${text}${logHint}`);
    }
    if (await ready()) return d;
    if (Date.now() > deadline) {
      await stopDovecotProc(d);
      throw new Error(`${label} did not answer (${readyWhat}) within ${READY_TIMEOUT_MS} ms${logHint}`);
    }
    await sleep(10);
  }
}

/**
 * SIGTERM to the master and its children at once, then make sure the whole
 * tree is gone. (SIGTERM to the master alone makes it wait ~1.1 s for its
 * children; all at once, Dovecot is gone in a few ms.)
 */
async function stopDovecotProc(d: DovecotProc): Promise<void> {
  const tree = processTree(d.proc);
  for (const p of tree) signal(p, 'SIGTERM');
  // The master is our child: node reaps it.
  await Promise.race([d.exited, sleep(STOP_TIMEOUT_MS)]);
  await terminate(tree.filter(isAlive));
}

function unixSocketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (!existsSync(socketPath)) return resolve(false);
    const sock = net.connect({ path: socketPath });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

// ---------------------------------------------------------------- config

interface Layout {
  dir: string;
  id: string;
  domain: string;
  tls: string;
  dovecotDir: string;
  dovecotConf: string;
  dovecotRun: string;
  dovecotLog: string;
  dovecotOut: string;
  usersFile: string;
  authDir: string;
  authConf: string;
  authRun: string;
  authLog: string;
  authOut: string;
  postfixConf: string;
  postfixSpool: string;
  postfixData: string;
  postfixLog: string;
  postfixOut: string;
  holdMap: string;
  mailRoot: string;
}

interface Ports {
  imap: number;
  imaps: number;
  lmtp: number;
  smtp: number;
  smtps: number;
  /** ManageSieve; 0 when the stack has no Sieve. */
  sieve: number;
}

function dovecotCommon(l: Layout, oauth2 = false): string {
  return `default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = ${MAIL_UID}
last_valid_uid = ${MAIL_UID}
auth_mechanisms = plain login${oauth2 ? ' xoauth2 oauthbearer' : ''}
${oauth2 ? `passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = ${oauth2ConfFile(l)}
}
` : ''}# tests log in with wrong passwords on purpose: no 2 s failure delay, no per-IP penalty
auth_failure_delay = 0
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n ${l.usersFile}
}
userdb {
  driver = passwd-file
  args = username_format=%n ${l.usersFile}
}
`;
}

/** Dovecot 2.3's post-login capabilities without IDLE (imap_capability replaces the whole list). */
const CAPABILITIES_WITHOUT_IDLE =
  'IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE';

/** The mail instance: IMAP (STARTTLS), IMAPS, LMTP. stopImap()/startImap() stop and start this one. */
/** Dovecot's oauth2 passdb settings (introspection against the test's token endpoint). */
function oauth2ConfFile(l: Layout): string {
  return path.join(l.dir, 'dovecot-oauth2.conf.ext');
}

function oauth2Conf(introspectionUrl: string): string {
  return `introspection_mode = post
introspection_url = ${introspectionUrl}
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
`;
}

/** Pigeonhole: Sieve at LMTP delivery, scripts in ~/sieve (active one ~/.dovecot.sieve), ManageSieve on its port. */
function sieveConf(p: Ports): string {
  return `plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
}
protocol managesieve {
  managesieve_max_line_length = 65536
}
service managesieve-login {
  inet_listener sieve {
    address = 127.0.0.1
    port = ${p.sieve}
  }
}
`;
}

function dovecotConf(l: Layout, p: Ports, disableIdle = false, oauth2 = false): string {
  const dh = existsSync('/usr/share/dovecot/dh.pem') ? 'ssl_dh = </usr/share/dovecot/dh.pem\n' : '';
  const sieve = p.sieve > 0;
  return `# generated by test/harness/mail-stack.ts: IMAP + LMTP
instance_name = peerdial-${l.id}
base_dir = ${l.dovecotRun}
state_dir = ${l.dovecotDir}/state
log_path = ${l.dovecotLog}
protocols = imap lmtp${sieve ? ' sieve' : ''}
listen = 127.0.0.1
ssl = yes
ssl_cert = <${l.tls}/server.crt
ssl_key = <${l.tls}/server.key
${dh}ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
${dovecotCommon(l, oauth2)}mail_location = maildir:~/Maildir
mail_fsync = never
${disableIdle ? `imap_capability = ${CAPABILITIES_WITHOUT_IDLE}\n` : ''}protocol lmtp {
  postmaster_address = postmaster@${l.domain}
${sieve ? '  mail_plugins = $mail_plugins sieve\n' : ''}}
${sieve ? sieveConf(p) : ''}service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${p.imap}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${p.imaps}
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${p.lmtp}
  }
}
`;
}

/**
 * A second, auth-only instance for Postfix's SASL: submission keeps
 * working (and queueing) while the mail instance is stopped by stopImap().
 */
function dovecotAuthConf(l: Layout, oauth2 = false): string {
  return `# generated by test/harness/mail-stack.ts: SASL auth for Postfix only
instance_name = peerdial-${l.id}-auth
base_dir = ${l.authRun}
state_dir = ${l.authDir}/state
log_path = ${l.authLog}
protocols = none
ssl = no
${dovecotCommon(l, oauth2)}service auth {
  unix_listener auth-postfix {
    mode = 0660
    user = postfix
    group = postfix
  }
}
`;
}

function postfixMain(l: Layout, p: Ports): string {
  return `# generated by test/harness/mail-stack.ts
compatibility_level = 3.6
queue_directory = ${l.postfixSpool}
data_directory = ${l.postfixData}
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.${l.domain}
mydomain = ${l.domain}
myorigin = $mydomain
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
local_transport = error:local delivery is disabled in tests
# loopback only; nothing leaves the machine
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
relay_domains =
default_transport = error:mail to the outside is disabled in tests
relay_transport = error:mail to the outside is disabled in tests
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
# every domain is "virtual"; only the test users exist, all go to Dovecot LMTP
virtual_mailbox_domains = static:all
virtual_mailbox_maps = regexp:${l.postfixConf}/virtual_mailbox
virtual_transport = lmtp:inet:127.0.0.1:${p.lmtp}
lmtp_connect_timeout = 5s
smtpd_banner = $myhostname ESMTP
biff = no
append_dot_mydomain = no
notify_classes =
delay_warning_time = 0
message_size_limit = 52428800
# retry quickly when Dovecot was down
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 5s
maillog_file = ${l.postfixLog}
maillog_file_prefixes = ${l.dir}
smtpd_tls_cert_file = ${l.tls}/server.crt
smtpd_tls_key_file = ${l.tls}/server.key
smtpd_tls_security_level = may
smtpd_tls_session_cache_database =
smtpd_sasl_type = dovecot
smtpd_sasl_path = ${l.authRun}/auth-postfix
smtpd_sasl_auth_enable = no
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
# holdDelivery(): the table maps 127.0.0.1 (or one sender address) to HOLD (hash tables are re-read by new smtpd processes)
smtpd_recipient_restrictions = check_client_access hash:${l.holdMap}, check_sender_access hash:${l.holdMap}
`;
}

function postfixMasterCf(p: Ports): string {
  const auth = [
    '  -o smtpd_sasl_auth_enable=yes',
    '  -o smtpd_client_restrictions=permit_sasl_authenticated,reject',
  ];
  return [
    '# generated by test/harness/mail-stack.ts; chroot = n everywhere',
    `127.0.0.1:${p.smtp} inet n - n - - smtpd`,
    '  -o syslog_name=postfix/submission',
    '  -o smtpd_tls_security_level=encrypt',
    '  -o smtpd_tls_auth_only=yes',
    ...auth,
    `127.0.0.1:${p.smtps} inet n - n - - smtpd`,
    '  -o syslog_name=postfix/smtps',
    '  -o smtpd_tls_wrappermode=yes',
    ...auth,
    'pickup    unix  n - n 60   1 pickup',
    'cleanup   unix  n - n -    0 cleanup',
    'qmgr      unix  n - n 300  1 qmgr',
    'tlsmgr    unix  - - n 1000? 1 tlsmgr',
    'rewrite   unix  - - n -    - trivial-rewrite',
    'bounce    unix  - - n -    0 bounce',
    'defer     unix  - - n -    0 bounce',
    'trace     unix  - - n -    0 bounce',
    'verify    unix  - - n -    1 verify',
    'flush     unix  n - n 1000? 0 flush',
    'proxymap  unix  - - n -    - proxymap',
    'proxywrite unix - - n -    1 proxymap',
    'smtp      unix  - - n -    - smtp',
    'relay     unix  - - n -    - smtp',
    'showq     unix  n - n -    - showq',
    'error     unix  - - n -    - error',
    'retry     unix  - - n -    - error',
    'discard   unix  - - n -    - discard',
    'lmtp      unix  - - n -    - lmtp',
    'anvil     unix  - - n -    1 anvil',
    'scache    unix  - - n -    1 scache',
    'postlog   unix-dgram n - n - 1 postlogd',
    '',
  ].join('\n');
}

function regexpQuote(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

// ---------------------------------------------------------------- cleanup on exit

const liveStacks = new Set<() => void>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const kill of liveStacks) {
      try {
        kill();
      } catch {
        /* best effort */
      }
    }
  });
}

// ---------------------------------------------------------------- the stack

export async function startMailStack(opts: MailStackOptions = {}): Promise<MailStack> {
  ensureMailServers();
  if (opts.sieve) ensureSieve();
  requireCommand('openssl', 'openssl');
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error('startMailStack needs root (Postfix master, Dovecot mail uid switching)');
  }
  const names = opts.users ?? ['alice', 'hitoshi', 'carol'];
  const domain = opts.domain ?? 'example.test';
  for (const n of names) {
    if (!/^[a-z0-9][a-z0-9._-]*$/i.test(n)) throw new Error(`invalid test user name ${JSON.stringify(n)}`);
  }
  if (!/^[a-z0-9.-]+$/i.test(domain)) throw new Error(`invalid domain ${JSON.stringify(domain)}`);

  // Ports are picked before the daemons bind them; if another process takes
  // one meanwhile, start again with new ports.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(names, domain, opts);
    } catch (err) {
      lastError = err;
      if (!/address already in use|EADDRINUSE/i.test(String((err as Error)?.message))) throw err;
    }
  }
  throw lastError;
}

async function startOnce(names: string[], domain: string, opts: MailStackOptions = {}): Promise<MailStack> {
  const t0 = Date.now();
  installExitHook();
  const [imap, imaps, lmtp, smtp, smtps, sieve] = (await freePorts(opts.sieve ? 6 : 5)) as [number, number, number, number, number, number | undefined];
  const ports: Ports = { imap, imaps, lmtp, smtp, smtps, sieve: sieve ?? 0 };
  const base = os.tmpdir();
  const dir = await mkdtemp(path.join(base, 'peerdial-mail-'));
  await chmod(dir, 0o755);
  const id = path.basename(dir).replace(/^peerdial-mail-/, '') + '-' + randomBytes(3).toString('hex');
  const l: Layout = {
    dir,
    id,
    domain,
    tls: path.join(dir, 'tls'),
    dovecotDir: path.join(dir, 'dovecot'),
    dovecotConf: path.join(dir, 'dovecot', 'dovecot.conf'),
    dovecotRun: path.join(dir, 'dovecot', 'run'),
    dovecotLog: path.join(dir, 'dovecot.log'),
    dovecotOut: path.join(dir, 'dovecot.stdout.log'),
    usersFile: path.join(dir, 'dovecot', 'users'),
    authDir: path.join(dir, 'dovecot-auth'),
    authConf: path.join(dir, 'dovecot-auth', 'dovecot.conf'),
    authRun: path.join(dir, 'dovecot-auth', 'run'),
    authLog: path.join(dir, 'dovecot-auth.log'),
    authOut: path.join(dir, 'dovecot-auth.stdout.log'),
    postfixConf: path.join(dir, 'postfix', 'conf'),
    postfixSpool: path.join(dir, 'postfix', 'spool'),
    postfixData: path.join(dir, 'postfix', 'data'),
    postfixLog: path.join(dir, 'postfix.log'),
    postfixOut: path.join(dir, 'postfix.start.log'),
    holdMap: path.join(dir, 'postfix', 'conf', 'hold'),
    mailRoot: path.join(dir, 'mail'),
  };
  const logHint = `; logs: ${l.dovecotLog}, ${l.authLog}, ${l.postfixLog} and *.stdout.log / postfix.start.log in ${dir} (removed by stop(); set PEERDIAL_KEEP_MAIL_STACK=1 to keep them)`;

  let dovecot: DovecotProc | undefined;
  let dovecotAuth: DovecotProc | undefined;
  let postfixMaster: ProcId | undefined;
  let stopping: Promise<void> | undefined;
  let holdGeneration = 0;
  const dirCreatedAt = Math.floor(Date.now() / 1000);

  const killSync = () => {
    if (dovecot && isAlive(dovecot.proc)) process.kill(dovecot.proc.pid, 'SIGTERM');
    if (dovecotAuth && isAlive(dovecotAuth.proc)) process.kill(dovecotAuth.proc.pid, 'SIGTERM');
    if (postfixMaster && isAlive(postfixMaster)) process.kill(postfixMaster.pid, 'SIGTERM');
    if (!KEEP_DIR) rmSync(dir, { recursive: true, force: true });
  };
  liveStacks.add(killSync);

  // ---- Dovecot: the mail instance (IMAP, LMTP) and the auth instance (SASL for Postfix)
  const startDovecot = async (): Promise<void> => {
    if (dovecot && isAlive(dovecot.proc)) return;
    dovecot = await spawnDovecot('dovecot', l.dovecotConf, l.dovecotOut, l.dovecotLog,
      () => greets(ports.imap, '* OK'), `IMAP port ${ports.imap}`, logHint);
  };
  const stopDovecot = async (): Promise<void> => {
    const d = dovecot;
    if (!d) return;
    await stopDovecotProc(d);
    dovecot = undefined;
  };
  const startAuth = async (): Promise<void> => {
    const socket = path.join(l.authRun, 'auth-postfix');
    dovecotAuth = await spawnDovecot('dovecot (auth)', l.authConf, l.authOut, l.authLog,
      () => unixSocketAnswers(socket), socket, logHint);
  };
  const stopAuth = async (): Promise<void> => {
    const d = dovecotAuth;
    if (!d) return;
    await stopDovecotProc(d);
    dovecotAuth = undefined;
  };

  // ---- Postfix
  const pfArgs = (...args: string[]) => ['-c', l.postfixConf, ...args];

  const startPostfix = async (): Promise<void> => {
    const r = await run(POSTFIX, pfArgs('start'), { outFile: l.postfixOut });
    if (r.code !== 0) {
      throw new Error(`postfix start failed (${r.code ?? r.signal}):\n${(await tail(l.postfixOut)).trim()}\n${(await tail(l.postfixLog)).trim()}${logHint}`);
    }
    const pidFile = path.join(l.postfixSpool, 'pid', 'master.pid');
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    const p = Number.isInteger(pid) && pid > 0 ? procId(pid) : undefined;
    if (!p || !isAlive(p)) throw new Error(`postfix master (pid file ${pidFile}: ${pid}) is not running${logHint}`);
    postfixMaster = p;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!(await greets(ports.smtp, '220'))) {
      if (!isAlive(p)) throw new Error(`postfix master died during start${logHint}\n${await tail(l.postfixLog)}`);
      if (Date.now() > deadline) {
        throw new Error(`postfix did not answer on submission port ${ports.smtp} within ${READY_TIMEOUT_MS} ms${logHint}`);
      }
      await sleep(15);
    }
  };

  const stopPostfix = async (): Promise<void> => {
    const p = postfixMaster;
    if (!p) return;
    const tree = processTree(p);
    // The master sends SIGTERM to its whole process group when it gets one.
    await terminate(tree);
    postfixMaster = undefined;
  };

  const writeHold = async (hold: boolean, from?: string): Promise<void> => {
    await writeFile(l.holdMap, hold ? `${from ?? '127.0.0.1'} HOLD held by the test harness (holdDelivery)\n` : '');
    await runOk(POSTMAP, ['-c', l.postfixConf, `hash:${l.holdMap}`], 'postmap of the hold table', logHint);
    // Postfix notices changed tables by mtime (whole seconds): give every
    // version its own, distinct mtime so a hold/release within one second is seen.
    holdGeneration++;
    const t = dirCreatedAt - 3600 + holdGeneration;
    await utimes(`${l.holdMap}.db`, t, t);
    await utimes(l.holdMap, t, t);
  };

  const queueSize = async (): Promise<number> => {
    const r = await runOk(POSTQUEUE, ['-c', l.postfixConf, '-j'], 'postqueue -j', logHint);
    return r.stdout.split('\n').filter((line) => line.trim().startsWith('{')).length;
  };

  const flushQueue = async (): Promise<void> => {
    await runOk(POSTQUEUE, ['-c', l.postfixConf, '-f'], 'postqueue -f', logHint);
  };

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      try {
        const t1 = Date.now();
        await Promise.all([
          stopPostfix().then(() => trace(t1, 'postfix stopped')),
          stopDovecot().then(() => trace(t1, 'dovecot stopped')),
          stopAuth().then(() => trace(t1, 'dovecot auth stopped')),
        ]);
        // Anything left that still works inside our dir is ours.
        await terminate(processesUsing(dir));
        trace(t1, 'stopped');
      } finally {
        liveStacks.delete(killSync);
        if (!KEEP_DIR) await rm(dir, { recursive: true, force: true });
      }
    })();
    return stopping;
  };

  try {
    checkTraversable(dir);
    // ---- files
    const caPromise = makeCerts(l.tls);
    caPromise.catch(() => {}); // awaited below; do not leave it unhandled if we fail before
    const users: Record<string, MailUser> = {};
    for (const name of names) {
      users[name] = {
        name,
        email: `${name}@${domain}`,
        user: name,
        password: randomBytes(12).toString('base64url'),
        maildir: path.join(l.mailRoot, name, 'Maildir'),
      };
    }
    await mkdir(l.dovecotRun, { recursive: true, mode: 0o755 });
    await mkdir(path.join(l.dovecotDir, 'state'), { recursive: true, mode: 0o755 });
    await mkdir(l.mailRoot, { recursive: true, mode: 0o755 });
    for (const u of Object.values(users)) {
      const home = path.join(l.mailRoot, u.name);
      await makeMaildir(u.maildir);
      await chownR(home, MAIL_UID, MAIL_GID);
      await chmod(home, 0o700);
    }
    await writeFile(
      l.usersFile,
      Object.values(users)
        .map((u) => `${u.user}:{PLAIN}${u.password}:${MAIL_UID}:${MAIL_GID}::${path.join(l.mailRoot, u.name)}::`)
        .join('\n') + '\n',
      { mode: 0o640 },
    );
    await chown(l.usersFile, 0, Number((await run('id', ['-g', 'dovecot'])).stdout.trim()) || 0);
    trace(t0, 'maildirs made');
    if (opts.oauth2) await writeFile(oauth2ConfFile(l), oauth2Conf(opts.oauth2.introspectionUrl), { mode: 0o644 });
    await writeFile(l.dovecotConf, dovecotConf(l, ports, opts.disableIdle, Boolean(opts.oauth2)));
    await mkdir(l.authRun, { recursive: true, mode: 0o755 });
    await mkdir(path.join(l.authDir, 'state'), { recursive: true, mode: 0o755 });
    await writeFile(l.authConf, dovecotAuthConf(l, Boolean(opts.oauth2)));

    await mkdir(l.postfixConf, { recursive: true, mode: 0o755 });
    await mkdir(l.postfixSpool, { recursive: true, mode: 0o755 });
    await mkdir(l.postfixData, { recursive: true, mode: 0o700 });
    const postfixIds = (await run('id', ['-u', 'postfix'])).stdout.trim();
    const postfixGid = (await run('id', ['-g', 'postfix'])).stdout.trim();
    await chown(l.postfixData, Number(postfixIds), Number(postfixGid));
    await writeFile(path.join(l.postfixConf, 'main.cf'), postfixMain(l, ports));
    await writeFile(path.join(l.postfixConf, 'master.cf'), postfixMasterCf(ports));
    await writeFile(
      path.join(l.postfixConf, 'virtual_mailbox'),
      Object.values(users)
        .map((u) => `/^${regexpQuote(u.email)}$/ ${u.name}/\n`)
        .join(''),
    );
    // Postfix (also postmap) waits until its config is a couple of seconds old: back-date it.
    const old = dirCreatedAt - 3600;
    for (const f of ['main.cf', 'master.cf', 'virtual_mailbox']) {
      await utimes(path.join(l.postfixConf, f), old, old);
    }
    trace(t0, 'postfix config written');
    await writeHold(false);
    trace(t0, 'postmap done');
    trace(t0, 'config written');
    const ca = await caPromise;
    trace(t0, 'certificates made');

    // ---- daemons
    await Promise.all([
      startDovecot().then(() => trace(t0, 'dovecot answers')),
      startAuth().then(() => trace(t0, 'dovecot auth answers')),
      startPostfix().then(() => trace(t0, 'postfix answers')),
    ]);

    const user = (name: string): MailUser => {
      const u = users[name];
      if (!u) throw new Error(`no test user ${JSON.stringify(name)} (have ${Object.keys(users).join(', ')})`);
      return u;
    };

    const stack: MailStack = {
      dir,
      host: '127.0.0.1',
      ca,
      imapPort: ports.imap,
      imapsPort: ports.imaps,
      smtpPort: ports.smtp,
      smtpsPort: ports.smtps,
      lmtpPort: ports.lmtp,
      sievePort: ports.sieve,
      domain,
      users,
      stop,
      async stopImap() {
        if (stopping) throw new Error('mail stack is stopped');
        await stopDovecot();
      },
      async startImap() {
        if (stopping) throw new Error('mail stack is stopped');
        await startDovecot();
        // Mail deferred while Dovecot was away: deliver it now, not at the next retry.
        await flushQueue();
      },
      async holdDelivery(opts?: { from?: string }) {
        await writeHold(true, opts?.from);
      },
      async releaseDelivery() {
        trace(t0, 'postfix config written');
    await writeHold(false);
    trace(t0, 'postmap done');
        await runOk(POSTSUPER, ['-c', l.postfixConf, '-H', 'ALL'], 'postsuper -H ALL', logHint);
        await flushQueue();
        const deadline = Date.now() + READY_TIMEOUT_MS;
        let n = await queueSize();
        while (n > 0) {
          if (Date.now() > deadline) {
            throw new Error(`releaseDelivery: ${n} message(s) still queued after ${READY_TIMEOUT_MS} ms${logHint}\n${await tail(l.postfixLog)}`);
          }
          await sleep(25);
          n = await queueSize();
        }
      },
      queueSize,
      async deliverRaw(name, raw, folder) {
        const u = user(name);
        let md = u.maildir;
        if (folder && folder.toUpperCase() !== 'INBOX') {
          md = path.join(u.maildir, '.' + folder.replace(/\//g, '.'));
          if (!existsSync(md)) {
            await makeMaildir(md);
            await writeFile(path.join(md, 'maildirfolder'), '');
            await chownR(md, MAIL_UID, MAIL_GID);
          }
        }
        const data = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
        const now = Date.now();
        const base = `${Math.floor(now / 1000)}.M${(now % 1000) * 1000}P${process.pid}Q${++deliverCounter}.peerdial-test,S=${data.length}`;
        const tmp = path.join(md, 'tmp', base);
        await writeFile(tmp, data, { mode: 0o600 });
        await chown(tmp, MAIL_UID, MAIL_GID);
        await rename(tmp, path.join(md, 'new', base));
      },
      imapConfig(name) {
        const u = user(name);
        return { host: '127.0.0.1', port: ports.imap, secure: false, auth: { user: u.user, pass: u.password }, tls: { ca } };
      },
      smtpConfig(name) {
        const u = user(name);
        return {
          host: '127.0.0.1',
          port: ports.smtp,
          secure: false,
          requireTLS: true,
          auth: { user: u.user, pass: u.password },
          tls: { ca },
        };
      },
      async log() {
        const parts: string[] = [];
        for (const [label, file] of [
          ['dovecot', l.dovecotLog],
          ['dovecot stdout', l.dovecotOut],
          ['dovecot auth', l.authLog],
          ['dovecot auth stdout', l.authOut],
          ['postfix', l.postfixLog],
          ['postfix start', l.postfixOut],
        ] as const) {
          const text = await readFile(file, 'utf8').catch(() => '');
          if (text) parts.push(`==> ${label} (${file}) <==\n${text}`);
        }
        return parts.join('\n');
      },
    };
    return stack;
  } catch (err) {
    // Started halfway: kill whatever did start, keep nothing behind (the
    // logs go into the error message, as dir is removed).
    const logs: string[] = [];
    for (const f of [l.dovecotOut, l.dovecotLog, l.authOut, l.authLog, l.postfixOut, l.postfixLog]) {
      const t = (await tail(f, 2_000)).trim();
      if (t) logs.push(`--- ${path.basename(f)}:\n${t}`);
    }
    await stop().catch(() => {});
    if (err instanceof Error && logs.length > 0 && !KEEP_DIR) {
      err.message += `\n(temp dir removed; its logs:)\n${logs.join('\n')}`;
    }
    throw err;
  }
}
