/**
 * A throw-away mail server inside the Node process, for `peerdial demo`:
 * no root, no system packages, nothing on disk, loopback only.
 *
 *   SMTP  one `smtp-server` for everybody; AUTH PLAIN/LOGIN without TLS,
 *         mail for a known user is delivered straight into that user's
 *         INBOX (an IDLE-ing client sees EXISTS at once), anyone else is
 *         refused with 550.
 *   IMAP  one `hoodiecrow-imap` per user, each on its own port: hoodiecrow
 *         keeps a single mailbox store per server instance.
 *
 * Hoodiecrow is old and unmaintained: an optionalDependency that only
 * this file imports, when the demo starts (its types, as far as we use
 * it: hoodiecrow-imap.d.ts). What peerdial needs from it is switched on
 * here through its documented extension points (plugins,
 * command handlers), never by editing it:
 *   - plugins MOVE (UID MOVE), UIDPLUS (COPYUID, UID EXPUNGE), UNSELECT,
 *     NAMESPACE, LITERAL+;
 *   - IDLE is our own handler: hoodiecrow's keeps a 30-minute timer that
 *     nothing clears when the client goes away (the process would not
 *     exit), and it leaves notifications "direct" after DONE;
 *   - every accepted socket gets setNoDelay(true) (else ~40 ms a command)
 *     and is tracked, so stop() can end the connections hoodiecrow's own
 *     close() leaves open.
 * A mail reaches an IDLE-ing client as EXISTS within a few milliseconds
 * of its DATA; a whole SMTP transaction takes ~105 ms, nearly all of it
 * smtp-server's fixed 100 ms greeting delay (its early-talker check).
 * Hoodiecrow's `new Buffer()` is silent unless Node runs with
 * --pending-deprecation (Node does not warn for code in node_modules).
 */
import type net from 'node:net';
import type hoodiecrowType from 'hoodiecrow-imap';
import type { HoodiecrowServer } from 'hoodiecrow-imap';
import type { SMTPServer as SMTPServerType, SMTPServerAddress, SMTPServerSession } from 'smtp-server';
import { PeerdialError } from '../errors.js';

export interface DemoMailUser {
  email: string;
  password: string;
  imapPort: number;
}

/** ServerConfig-shaped settings (see src/config/config.ts), plain-text on loopback. */
export interface DemoServerSettings {
  host: string;
  port: number;
  tls: 'none';
  user: string;
  password: string;
}

export interface DemoMailServer {
  host: '127.0.0.1';
  smtpPort: number;
  users: Record<string, DemoMailUser>;
  /** IMAP settings for peerdial's config of user `name`. */
  imapServer(name: string): DemoServerSettings;
  /** SMTP settings for peerdial's config of user `name`. */
  smtpServer(name: string): DemoServerSettings;
  /** Closes the listeners and every open connection; the process can exit afterwards. */
  stop(): Promise<void>;
}

export interface DemoMailServerOptions {
  /** Local parts, e.g. ['alice', 'hitoshi']: each becomes name@domain. */
  users: string[];
  /** Default 'example.test' (a reserved name that passes peerdial's address checks). */
  domain?: string;
}

const HOST = '127.0.0.1';
const MAX_MAIL_BYTES = 32 * 1024 * 1024;

/** The demo's server packages and versions, as in package.json's optionalDependencies. */
const DEMO_PACKAGES = { 'hoodiecrow-imap': { version: '2.1.0', role: 'IMAP server' }, 'smtp-server': { version: '3.21.6', role: 'SMTP server' } } as const;

/**
 * One of the demo's mail server packages, imported when the demo starts:
 * every other command runs without them. Not installed (npm install
 * --omit=optional): MISSING_PACKAGE, with the command that installs it.
 */
async function loadDemoPackage<T>(name: keyof typeof DEMO_PACKAGES, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if ((e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND') && (e.message ?? '').includes(`'${name}'`)) {
      const { version, role } = DEMO_PACKAGES[name];
      throw new PeerdialError('MISSING_PACKAGE', `peerdial demo needs the ${role} package ${name} (an optional dependency), and it is not installed.`, {
        hint: `Install it beside peerdial: npm install ${name}@${version} (or install peerdial again without --omit=optional). Only the demo needs it.`,
        cause: err,
      });
    }
    throw err;
  }
}

const loadHoodiecrow = (): Promise<typeof hoodiecrowType> => loadDemoPackage('hoodiecrow-imap', async () => (await import('hoodiecrow-imap')).default);
const loadSmtpServer = (): Promise<typeof SMTPServerType> => loadDemoPackage('smtp-server', async () => (await import('smtp-server')).SMTPServer);

let lastUidValidity = 0;

/**
 * IDLE (RFC 2177) that ends with the connection: an unref'd, cleared
 * 29-minute limit, updates sent while idling and queued again after DONE.
 */
function idlePlugin(server: HoodiecrowServer): void {
  server.registerCapability('IDLE');
  server.setCommandHandler('IDLE', (connection, parsed, data, done) => {
    const reply = (command: 'OK' | 'NO' | 'BAD', text: string) =>
      connection.send({ tag: parsed.tag, command, attributes: [{ type: 'TEXT', value: text }] }, 'IDLE', parsed, data);
    if (connection.state === 'Not Authenticated') {
      reply('NO', 'Login first');
      return done();
    }
    if (parsed.attributes) {
      reply('BAD', 'Unexpected arguments to IDLE');
      return done();
    }
    const socket = connection.socket;
    if (!socket || socket.destroyed) return done();
    const finish = () => {
      clearTimeout(limit);
      socket.off('close', finish);
      connection.inputHandler = false;
      connection.directNotifications = false;
    };
    const limit = setTimeout(() => {
      finish();
      connection.send({ tag: '*', command: 'BYE', attributes: [{ type: 'TEXT', value: 'IDLE terminated' }] }, 'IDLE EXPIRED', parsed, data);
      socket.end();
    }, 29 * 60_000);
    limit.unref();
    socket.once('close', finish);
    connection.inputHandler = (line) => {
      finish();
      if (line.trim().toUpperCase() === 'DONE') reply('OK', 'IDLE terminated');
      else reply('BAD', 'Invalid IDLE continuation');
    };
    connection.directNotifications = true;
    socket.write('+ idling\r\n');
    connection.processNotifications();
    return done();
  });
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/** setNoDelay on every accepted socket, and remember it until it closes. */
function trackSockets(server: net.Server, sockets: Set<net.Socket>): void {
  server.on('connection', (socket: net.Socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}

function smtpError(message: string, responseCode: number): Error {
  return Object.assign(new Error(message), { responseCode });
}

/** What a delivering MTA puts on top: where the bounce goes and who received it. */
function traceHeaders(from: SMTPServerAddress | false, session: SMTPServerSession, now: Date): string {
  const sender = from ? from.address : '';
  const helo = session.hostNameAppearsAs || 'unknown';
  return `Return-Path: <${sender}>\r\n` + `Received: from ${helo} ([${session.remoteAddress}]) by peerdial-demo with ESMTPA id ${session.id}; ${now.toUTCString()}\r\n`;
}

export async function startDemoMailServer(opts: DemoMailServerOptions): Promise<DemoMailServer> {
  const domain = (opts.domain ?? 'example.test').toLowerCase();
  const names = [...new Set(opts.users.map((u) => u.toLowerCase()))];
  if (names.length === 0) throw new PeerdialError('USAGE', 'The demo mail server needs at least one user.');
  const hoodiecrow = await loadHoodiecrow();
  const SMTPServer = await loadSmtpServer();
  const sockets = new Set<net.Socket>();
  const listeners: net.Server[] = [];
  const users: Record<string, DemoMailUser> = {};
  const stores = new Map<string, HoodiecrowServer>(); // by e-mail address
  // A fresh UIDVALIDITY per start (as Dovecot does): a ledger kept from an
  // earlier demo must not mistake this run's UID 1 for mail it already saw.
  const uidvalidity = (lastUidValidity = Math.max(lastUidValidity + 1, Math.floor(Date.now() / 1000)));

  const stop = async () => {
    const closed = Promise.all(listeners.map(closeServer)); // no new connections from here on
    for (const s of sockets) s.destroy(); // hoodiecrow's and smtp-server's close() would wait for these
    await closed;
  };

  try {
    for (const name of names) {
      const email = `${name}@${domain}`;
      // Demo passwords: the servers listen on loopback only and live as long as the demo.
      const password = `demo-${name}`;
      const imap = hoodiecrow({
        users: { [email]: { password } },
        plugins: ['UNSELECT', 'NAMESPACE', 'LITERALPLUS', 'UIDPLUS', 'MOVE', idlePlugin],
        storage: { INBOX: { messages: [], uidvalidity }, '': { separator: '/', folders: {} } },
      });
      trackSockets(imap.server, sockets);
      listeners.push(imap.server);
      const imapPort = await listen(imap.server);
      users[name] = { email, password, imapPort };
      stores.set(email, imap);
    }

    const passwords = new Map(Object.values(users).map((u) => [u.email, u.password]));
    const smtp = new SMTPServer({
      logger: false,
      banner: 'peerdial demo',
      // The client is on loopback: no reverse DNS lookup.
      disableReverseLookup: true,
      authMethods: ['PLAIN', 'LOGIN'],
      authOptional: false,
      allowInsecureAuth: true,
      disabledCommands: ['STARTTLS'],
      size: MAX_MAIL_BYTES,
      onAuth(auth, _session, callback) {
        const user = (auth.username ?? '').toLowerCase();
        if (passwords.get(user) === auth.password && auth.password !== undefined) return callback(null, { user });
        return callback(smtpError('Authentication failed', 535));
      },
      onRcptTo(address, _session, callback) {
        if (stores.has(address.address.toLowerCase())) return callback();
        return callback(smtpError(`<${address.address}>: no such user here`, 550));
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('error', (err) => callback(err));
        stream.on('end', () => {
          if (stream.sizeExceeded) return callback(smtpError('Message too large', 552));
          const raw = traceHeaders(session.envelope.mailFrom, session, new Date()) + Buffer.concat(chunks).toString('binary');
          for (const rcpt of session.envelope.rcptTo) stores.get(rcpt.address.toLowerCase())?.appendMessage('INBOX', [], undefined, raw);
          callback();
        });
      },
    });
    // smtp-server re-emits every client's socket error on itself: one
    // client hanging up mid-session must not end the demo.
    smtp.on('error', () => undefined);
    trackSockets(smtp.server, sockets);
    listeners.push(smtp.server);
    const smtpPort = await listen(smtp.server);

    const user = (name: string): DemoMailUser => {
      const u = users[name.toLowerCase()];
      if (!u) throw new PeerdialError('USAGE', `The demo mail server has no user ${name} (it has ${Object.keys(users).join(', ')}).`);
      return u;
    };
    return {
      host: HOST,
      smtpPort,
      users,
      imapServer: (name) => {
        const u = user(name);
        return { host: HOST, port: u.imapPort, tls: 'none', user: u.email, password: u.password };
      },
      smtpServer: (name) => {
        const u = user(name);
        return { host: HOST, port: smtpPort, tls: 'none', user: u.email, password: u.password };
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
