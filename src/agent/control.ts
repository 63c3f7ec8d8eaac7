/**
 * The agent's control socket: a Unix socket in the account's state dir
 * (0600; in a short per-user directory when that path is too long for a
 * socket name, agent/control-path.ts) that lets `peerdial call`, `send`
 * and `listen` work beside a running agent instead of racing it for the
 * mailbox. Only the agent
 * watches the INBOX and drains the outbox; a command that places a call
 *   - queues its mail in the shared outbox and says `poke` (send now),
 *   - says `subscribe CALLID`, and the agent forwards every verified mail
 *     of that call and the "sent" notice of its mail.
 * Commands that would otherwise open the mailbox or drain the outbox
 * themselves (`inbox`, `messages`, `announce`, `outbox flush`, `doctor`)
 * make named requests instead (agent/desk.ts); agentOrAlone() picks.
 * One JSON object per line each way.
 */
import net from 'node:net';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { PeerdialError, type ErrorCode } from '../errors.js';
import type { PeerdialMessage } from '../wire/message.js';
import { controlSocketCandidates, maxSocketPathBytes, prepareSocketDir, type PathContext, type SocketPlace } from './control-path.js';

/** Where a client looks for the agent of this account, in order (agent/control-path.ts). */
export function controlSocketPaths(stateDir: string, ctx: PathContext = {}): string[] {
  return controlSocketCandidates(stateDir, ctx).map((p) => p.file);
}

type ClientMsg =
  | { op: 'hello' }
  | { op: 'poke' }
  | { op: 'subscribe'; callId: string }
  | { op: 'unsubscribe'; callId: string }
  | { op: 'take-incoming' }
  | { op: 'request'; id: number; name: string; args?: Record<string, unknown> };
type ServerMsg =
  | { ev: 'hello'; email: string; pid: number }
  | { ev: 'reply'; id: number; ok: boolean; result?: unknown; error?: string; code?: string; hint?: string }
  | { ev: 'mail'; message: PeerdialMessage; messageId: string }
  | { ev: 'sent'; messageId: string };

function lines(sock: net.Socket, onLine: (v: unknown) => void): void {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => {
    buf += d;
    if (buf.length > 4 * 1024 * 1024) {
      sock.destroy();
      return;
    }
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        onLine(JSON.parse(line));
      } catch {
        // a bad line from a local client is ignored
      }
    }
  });
}

export interface ControlServer {
  /** Offers a verified mail of a call placed by a client; true when a client subscribed to it. */
  deliver(msg: PeerdialMessage, messageId: string): boolean;
  /** Hands a new, allowed offer to a `peerdial listen` client; true when one took it. */
  offerToTaker(msg: PeerdialMessage, messageId: string): boolean;
  sent(messageId: string): void;
  close(): Promise<void>;
}

/** Named requests a client may make of the agent (answer, decline, status, ...). */
export type ControlRequests = Record<string, (args: Record<string, unknown>) => Promise<unknown> | unknown>;

export async function serveControl(opts: {
  stateDir: string;
  email: string;
  poke: () => void;
  requests?: ControlRequests;
  /** Every named request a client makes (for the agent's log). */
  onRequest?: (name: string) => void;
  /** Environment, uid and temp dir for the socket's place (tests); the process's own by default. */
  where?: PathContext;
}): Promise<ControlServer> {
  const places = controlSocketCandidates(opts.stateDir, opts.where);
  if (!places.length) {
    throw new PeerdialError('CONTROL_SOCKET_FAILED', `No place for the agent's control socket: ${path.join(opts.stateDir, 'agent.sock')} and the temporary directory's are longer than a socket name may be (${maxSocketPathBytes(opts.where?.platform)} bytes).`, {
      hint: 'Give peerdial a shorter state directory (state_dir in the config), or set XDG_RUNTIME_DIR or TMPDIR to a short directory.',
    });
  }
  for (const place of places) {
    const existing = await connectRaw(place.file).catch(() => undefined);
    if (existing) {
      existing.destroy();
      throw new PeerdialError('USAGE', `An agent for ${opts.email} is already running (${place.file}).`, {
        hint: 'Stop it first (peerdial service stop, or kill it), or just use it: peerdial call talks to it.',
      });
    }
  }
  const clients = new Set<net.Socket>();
  const subs = new Map<string, net.Socket>();
  const takers: net.Socket[] = [];
  const server = net.createServer((sock) => {
    clients.add(sock);
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clients.delete(sock);
      for (const [id, s] of subs) if (s === sock) subs.delete(id);
      const i = takers.indexOf(sock);
      if (i >= 0) takers.splice(i, 1);
    });
    lines(sock, (v) => {
      const m = v as ClientMsg;
      if (m.op === 'hello') sock.write(JSON.stringify({ ev: 'hello', email: opts.email, pid: process.pid } satisfies ServerMsg) + '\n');
      else if (m.op === 'poke') opts.poke();
      else if (m.op === 'subscribe' && typeof m.callId === 'string') subs.set(m.callId, sock);
      else if (m.op === 'unsubscribe') subs.delete(m.callId);
      else if (m.op === 'take-incoming') takers.push(sock);
      else if (m.op === 'request' && typeof m.id === 'number') {
        const handler = opts.requests?.[m.name];
        opts.onRequest?.(String(m.name));
        const reply = (r: Omit<Extract<ServerMsg, { ev: 'reply' }>, 'ev' | 'id'>) => {
          if (sock.writable) sock.write(JSON.stringify({ ev: 'reply', id: m.id, ...r } satisfies ServerMsg) + '\n');
        };
        if (!handler) reply({ ok: false, error: `unknown request "${m.name}"` });
        else {
          Promise.resolve()
            .then(() => handler(m.args ?? {}))
            .then(
              (result) => reply({ ok: true, result }),
              (err) => reply({ ok: false, error: (err as Error).message, ...(err instanceof PeerdialError ? { code: err.code, ...(err.hint ? { hint: err.hint } : {}) } : {}) }),
            );
        }
      }
    });
  });
  const file = await listenOnFirst(server, places, opts.where?.uid);
  return {
    deliver(msg, messageId) {
      const sock = subs.get(msg.callId);
      if (!sock) return false;
      sock.write(JSON.stringify({ ev: 'mail', message: msg, messageId } satisfies ServerMsg) + '\n');
      return true;
    },
    offerToTaker(msg, messageId) {
      const sock = takers.at(-1);
      if (!sock || !sock.writable) return false;
      subs.set(msg.callId, sock);
      sock.write(JSON.stringify({ ev: 'mail', message: msg, messageId } satisfies ServerMsg) + '\n');
      return true;
    },
    sent(messageId) {
      for (const c of clients) c.write(JSON.stringify({ ev: 'sent', messageId } satisfies ServerMsg) + '\n');
    },
    async close() {
      for (const c of clients) c.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await fs.rm(file, { force: true });
    },
  };
}

/**
 * Serves on the first place that works: its directory ready, the socket
 * there under its full name, 0600. An agent that cannot serve its socket
 * fails here with CONTROL_SOCKET_FAILED (and the CLI exits non-zero): a
 * running agent nobody can reach would look up and do nothing.
 */
async function listenOnFirst(server: net.Server, places: SocketPlace[], uid?: number): Promise<string> {
  const failures: string[] = [];
  let firstError: PeerdialError | undefined;
  for (const place of places) {
    try {
      await prepareSocketDir(place, uid);
      await fs.rm(place.file, { force: true });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(place.file, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      failures.push(`${place.file}: ${(err as Error).message}`);
      if (!firstError && err instanceof PeerdialError) firstError = err;
      continue;
    }
    try {
      // a name the kernel cut short would not be here: never serve where nobody finds us
      const st = await fs.lstat(place.file);
      if (!st.isSocket()) throw new Error('not a socket');
      await fs.chmod(place.file, 0o600);
      return place.file;
    } catch (err) {
      failures.push(`${place.file}: ${(err as Error).message}`);
      await new Promise<void>((r) => server.close(() => r()));
    }
  }
  throw new PeerdialError('CONTROL_SOCKET_FAILED', `The agent cannot serve its control socket (${failures.join('; ')}).`, {
    hint: firstError?.hint ?? 'Give peerdial a shorter state directory (state_dir in the config), or check the permissions of the directories named above.',
    cause: firstError,
  });
}

function connectRaw(file: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(file);
    sock.once('connect', () => resolve(sock));
    sock.once('error', reject);
  });
}

async function connectFirst(files: string[]): Promise<net.Socket | undefined> {
  for (const file of files) {
    const sock = await connectRaw(file).catch(() => undefined);
    if (sock) return sock;
  }
  return undefined;
}

export interface ControlClient {
  email: string;
  pid: number;
  poke(): void;
  subscribe(callId: string): void;
  /** `peerdial listen`: the agent hands new allowed offers to this client. */
  takeIncoming(): void;
  onMail(cb: (msg: PeerdialMessage, messageId: string) => void): void;
  onSent(cb: (messageId: string) => void): void;
  /** Asks the agent something by name; rejects with the agent's error. */
  request(name: string, args?: Record<string, unknown>): Promise<unknown>;
  close(): void;
}

/** Connects to a running agent of this account; undefined when none runs. */
export async function connectControl(stateDir: string, timeoutMs = 2000, where?: PathContext): Promise<ControlClient | undefined> {
  const sock = await connectFirst(controlSocketPaths(stateDir, where));
  if (!sock) return undefined;
  sock.on('error', () => undefined);
  sock.on('close', () => {
    for (const p of pending.values()) p.reject(new PeerdialError('AGENT_NOT_RUNNING', 'The agent closed the connection before it answered.', { hint: 'See its log (peerdial service logs) and run the command again.' }));
    pending.clear();
  });
  const mailCbs: ((m: PeerdialMessage, id: string) => void)[] = [];
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  const sentCbs: ((id: string) => void)[] = [];
  const hello = await new Promise<{ email: string; pid: number } | undefined>((resolve) => {
    const t = setTimeout(() => resolve(undefined), timeoutMs);
    lines(sock, (v) => {
      const m = v as ServerMsg;
      if (m.ev === 'hello') {
        clearTimeout(t);
        resolve({ email: m.email, pid: m.pid });
      } else if (m.ev === 'mail') mailCbs.forEach((cb) => cb(m.message, m.messageId));
      else if (m.ev === 'sent') sentCbs.forEach((cb) => cb(m.messageId));
      else if (m.ev === 'reply') {
        const p = pending.get(m.id);
        pending.delete(m.id);
        // the agent's error as it was: same code and hint as when the command ran alone
        if (p) m.ok ? p.resolve(m.result) : p.reject(new PeerdialError((m.code as ErrorCode | undefined) ?? 'USAGE', m.error ?? 'the agent refused', m.hint ? { hint: m.hint } : {}));
      }
    });
    sock.write(JSON.stringify({ op: 'hello' } satisfies ClientMsg) + '\n');
  });
  if (!hello) {
    sock.destroy();
    return undefined;
  }
  const send = (m: ClientMsg) => sock.writable && sock.write(JSON.stringify(m) + '\n');
  return {
    ...hello,
    poke: () => send({ op: 'poke' }),
    subscribe: (callId) => send({ op: 'subscribe', callId }),
    takeIncoming: () => send({ op: 'take-incoming' }),
    onMail: (cb) => void mailCbs.push(cb),
    onSent: (cb) => void sentCbs.push(cb),
    request: (name, args) =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve, reject });
        if (!send({ op: 'request', id, name, ...(args ? { args } : {}) })) {
          pending.delete(id);
          reject(new PeerdialError('USAGE', 'the agent closed the connection'));
        }
      }),
    close: () => sock.end(),
  };
}

/**
 * A command's work: through the running agent of the account when there is
 * one (it alone consumes the mailbox and the outbox), else alone.
 */
export async function agentOrAlone<T>(stateDir: string, withAgent: (agent: ControlClient) => Promise<T>, alone: () => Promise<T>): Promise<T> {
  const agent = await connectControl(stateDir);
  if (!agent) return alone();
  try {
    return await withAgent(agent);
  } finally {
    agent.close();
  }
}
