/**
 * A small ManageSieve client (RFC 5804), for the one server-side rule
 * peerdial keeps (src/mail/sieve-rule.ts): greeting and capabilities,
 * STARTTLS, AUTHENTICATE PLAIN, LISTSCRIPTS, GETSCRIPT, HAVESPACE,
 * PUTSCRIPT, SETACTIVE, LOGOUT. Strings go out quoted when they can and
 * as non-synchronising literals (`{n+}`) otherwise; answers may carry
 * quoted strings and literals (`{n}` / `{n+}`); the syntax itself is in
 * src/mail/managesieve-syntax.ts.
 *
 * The server is not trusted: a line longer than `maxLineBytes`, a literal
 * larger than `maxLiteralBytes`, an answer of more than `maxResponseLines`
 * lines or no answer within `timeoutMs` ends the connection with
 * SIEVE_FAILED. It never retries and never reconnects.
 */
import net from 'node:net';
import tls from 'node:tls';
import { PeerdialError } from '../errors.js';
import { sanitizeText } from '../wire/sanitize.js';
import { parseLine, SieveFailed, sieveString, words, type Token } from './managesieve-syntax.js';

export { parseLine, sieveString, type Token } from './managesieve-syntax.js';

export interface ManageSieveOptions {
  host: string;
  port: number;
  /** 'starttls' (the RFC's way, default), 'tls' (TLS from the start) or 'none' (loopback tests only). */
  tls?: 'starttls' | 'tls' | 'none';
  /** Extra CA certificate (PEM) to trust. */
  ca?: string;
  /** Each step (connect, greeting, one command) must answer within this. Default 20 s. */
  timeoutMs?: number;
  maxLineBytes?: number;
  maxLiteralBytes?: number;
  maxResponseLines?: number;
}

export const MANAGESIEVE_LIMITS = { timeoutMs: 20_000, maxLineBytes: 8192, maxLiteralBytes: 1 << 20, maxResponseLines: 1000 };

export interface SieveResponse {
  status: 'OK' | 'NO' | 'BYE';
  /** The response code's words, e.g. ['QUOTA/MAXSIZE'] or ['SASL', '...']. */
  code: string[];
  /** The human-readable text, sanitised. */
  text: string;
  /** The lines before the status line (LISTSCRIPTS entries, a GETSCRIPT literal, capabilities). */
  lines: Token[][];
}

export interface SieveScriptEntry {
  name: string;
  active: boolean;
}

export class ManageSieveClient {
  private socket: net.Socket | tls.TLSSocket;
  private buf: Buffer = Buffer.alloc(0);
  private waiter?: () => void;
  private failure?: Error;
  private closed = false;
  private busy: Promise<unknown> = Promise.resolve();
  private readonly limits: typeof MANAGESIEVE_LIMITS;
  /** Capabilities of the last greeting (keys upper-case): SIEVE, SASL, STARTTLS, IMPLEMENTATION, VERSION... */
  capabilities = new Map<string, string>();

  private constructor(private readonly o: ManageSieveOptions, socket: net.Socket | tls.TLSSocket) {
    this.limits = { ...MANAGESIEVE_LIMITS, ...Object.fromEntries(Object.entries(o).filter(([k, v]) => k in MANAGESIEVE_LIMITS && v !== undefined)) };
    this.socket = socket;
    this.attach(socket);
  }

  /** Connects, reads the greeting, and upgrades to TLS unless tls = 'none'. */
  static async connect(o: ManageSieveOptions): Promise<ManageSieveClient> {
    const timeoutMs = o.timeoutMs ?? MANAGESIEVE_LIMITS.timeoutMs;
    const mode = o.tls ?? 'starttls';
    const where = `ManageSieve ${o.host}:${o.port}`;
    const socket = await new Promise<net.Socket | tls.TLSSocket>((resolve, reject) => {
      const s: net.Socket | tls.TLSSocket =
        mode === 'tls' ? tls.connect({ host: o.host, port: o.port, servername: net.isIP(o.host) ? undefined : o.host, ...(o.ca ? { ca: o.ca } : {}) }) : net.connect({ host: o.host, port: o.port });
      const t = setTimeout(() => {
        s.destroy();
        reject(new SieveFailed(`${where}: no connection within ${Math.round(timeoutMs / 1000)} s`, 'Check the host, the port (ManageSieve is usually 4190) and the firewall.'));
      }, timeoutMs);
      s.once(mode === 'tls' ? 'secureConnect' : 'connect', () => {
        clearTimeout(t);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(t);
        reject(new SieveFailed(`${where}: ${(err as Error).message}`, 'Check the host, the port (ManageSieve is usually 4190) and the firewall; many providers do not offer ManageSieve at all.', err));
      });
    });
    const c = new ManageSieveClient(o, socket);
    try {
      c.readCapabilities(await c.response('greeting'));
      if (mode === 'starttls') {
        if (!c.capabilities.has('STARTTLS')) throw new SieveFailed(`${where} does not offer STARTTLS: peerdial will not send the password in clear text`);
        await c.command('STARTTLS');
        await c.upgrade();
        // RFC 5804 2.2: the server sends its capabilities again after the handshake
        c.readCapabilities(await c.response('capabilities after STARTTLS'));
      }
    } catch (err) {
      c.close();
      throw err;
    }
    return c;
  }

  private attach(s: net.Socket): void {
    s.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.waiter?.();
    });
    s.on('error', (err) => this.fail(new SieveFailed(`ManageSieve ${this.o.host}:${this.o.port}: ${err.message}`, undefined, err)));
    s.on('close', () => this.fail(new SieveFailed(`ManageSieve ${this.o.host}:${this.o.port}: the server closed the connection`)));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.waiter?.();
  }

  private async upgrade(): Promise<void> {
    const plain = this.socket as net.Socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    this.buf = Buffer.alloc(0);
    const timeoutMs = this.limits.timeoutMs;
    this.socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: plain, host: this.o.host, servername: net.isIP(this.o.host) ? undefined : this.o.host, ...(this.o.ca ? { ca: this.o.ca } : {}) });
      const t = setTimeout(() => {
        s.destroy();
        reject(new SieveFailed(`ManageSieve ${this.o.host}:${this.o.port}: no TLS handshake within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      s.once('secureConnect', () => {
        clearTimeout(t);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(t);
        reject(new PeerdialError('TLS_FAILED', `ManageSieve ${this.o.host}:${this.o.port}: TLS failed: ${err.message}`, { hint: 'Check the server\'s certificate (or ca_file for a private CA).', cause: err }));
      });
    });
    this.attach(this.socket);
  }

  private readCapabilities(r: SieveResponse): void {
    if (r.status !== 'OK') throw new SieveFailed(`ManageSieve ${this.o.host}:${this.o.port} refused the connection: ${r.text}`);
    this.capabilities = new Map();
    for (const line of r.lines) {
      const [k, v] = line.map((t) => words(t).join(' '));
      if (k) this.capabilities.set(k.toUpperCase(), v ?? '');
    }
  }

  /** Reads one whole answer: lines up to the OK/NO/BYE line. */
  private async response(what: string): Promise<SieveResponse> {
    const lines: Token[][] = [];
    const deadline = Date.now() + this.limits.timeoutMs;
    for (;;) {
      const parsed = parseLine(this.buf, this.limits);
      if (!parsed) {
        if (this.failure) throw this.failure;
        const left = deadline - Date.now();
        if (left <= 0) throw this.abort(new SieveFailed(`ManageSieve ${this.o.host}:${this.o.port}: no answer to ${what} within ${Math.round(this.limits.timeoutMs / 1000)} s`));
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          this.waiter = () => {
            clearTimeout(t);
            this.waiter = undefined;
            resolve();
          };
        });
        continue;
      }
      this.buf = this.buf.subarray(parsed.used);
      const first = parsed.tokens[0];
      const status = first && 'atom' in first ? first.atom.toUpperCase() : '';
      if (status === 'OK' || status === 'NO' || status === 'BYE') {
        const rest = parsed.tokens.slice(1);
        const code = rest[0] && 'code' in rest[0] ? words(rest.shift()) : [];
        const text = sanitizeText(rest.map((t) => words(t).join(' ')).join(' ')).slice(0, 500);
        if (status === 'BYE') this.closed = true;
        return { status, code, text, lines };
      }
      lines.push(parsed.tokens);
      if (lines.length > this.limits.maxResponseLines) throw this.abort(new SieveFailed(`ManageSieve ${this.o.host}:${this.o.port}: more than ${this.limits.maxResponseLines} lines in one answer`));
    }
  }

  private abort(err: Error): Error {
    this.failure ??= err;
    this.close();
    return err;
  }

  /** Sends one command line (its arguments already quoted) and reads the answer; NO and BYE throw SIEVE_FAILED unless `allowNo`. */
  async command(line: string, opts: { allowNo?: boolean } = {}): Promise<SieveResponse> {
    const run = async () => {
      if (this.failure) throw this.failure;
      if (this.closed) throw new SieveFailed('the ManageSieve connection is closed');
      this.socket.write(line + '\r\n');
      const verb = line.split(' ')[0]!;
      const r = await this.response(verb);
      if (r.status === 'BYE') throw this.abort(new SieveFailed(`ManageSieve ${this.o.host}:${this.o.port} ended the connection on ${verb}: ${r.text}`));
      if (r.status === 'NO' && !opts.allowNo) throw new SieveFailed(`ManageSieve ${this.o.host}:${this.o.port} refused ${verb}: ${r.text}${r.code.length ? ` (${r.code.join(' ')})` : ''}`);
      return r;
    };
    const p = this.busy.then(run, run);
    this.busy = p.catch(() => undefined);
    return p;
  }

  /** AUTHENTICATE "PLAIN" with the initial response (RFC 4616). */
  async authenticate(user: string, password: string): Promise<void> {
    const sasl = (this.capabilities.get('SASL') ?? '').toUpperCase().split(/\s+/);
    if (!sasl.includes('PLAIN')) throw new SieveFailed(`ManageSieve ${this.o.host}:${this.o.port} does not offer SASL PLAIN (offers: ${sasl.join(' ') || 'nothing'})`);
    const ir = Buffer.from(`\0${user}\0${password}`, 'utf8').toString('base64');
    const r = await this.command(`AUTHENTICATE "PLAIN" ${sieveString(ir)}`, { allowNo: true });
    if (r.status === 'NO') {
      throw new PeerdialError('AUTH_FAILED', `ManageSieve ${this.o.host}:${this.o.port} refused the login: ${r.text}`, { hint: 'ManageSieve takes the same user and password as IMAP at most providers; check them with: peerdial doctor' });
    }
  }

  async listScripts(): Promise<SieveScriptEntry[]> {
    const r = await this.command('LISTSCRIPTS');
    return r.lines
      .filter((l) => l[0] && 'str' in l[0])
      .map((l) => ({ name: (l[0] as { str: string }).str, active: l.slice(1).some((t) => 'atom' in t && t.atom.toUpperCase() === 'ACTIVE') }));
  }

  async getScript(name: string): Promise<string> {
    const r = await this.command(`GETSCRIPT ${sieveString(name)}`);
    const t = r.lines[0]?.[0];
    if (!t || !('str' in t)) throw new SieveFailed(`ManageSieve ${this.o.host}:${this.o.port}: GETSCRIPT answered without the script`);
    return t.str;
  }

  /** Whether the server would take a script of this size under this name (false: over quota). */
  async haveSpace(name: string, bytes: number): Promise<{ ok: boolean; why: string }> {
    const r = await this.command(`HAVESPACE ${sieveString(name)} ${bytes}`, { allowNo: true });
    return { ok: r.status === 'OK', why: r.status === 'OK' ? '' : `${r.text}${r.code.length ? ` (${r.code.join(' ')})` : ''}` };
  }

  async putScript(name: string, script: string): Promise<void> {
    await this.command(`PUTSCRIPT ${sieveString(name)} ${sieveString(script)}`);
  }

  async setActive(name: string): Promise<void> {
    await this.command(`SETACTIVE ${sieveString(name)}`);
  }

  async logout(): Promise<void> {
    try {
      if (!this.failure && !this.closed) await this.command('LOGOUT', { allowNo: true }).catch(() => undefined);
    } finally {
      this.close();
    }
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
}
