/**
 * The local web page's server: node:http on 127.0.0.1 only, inside the agent
 * process (`peerdial web`, or `[web] enable = true`). It serves the bundled
 * page (dist/page/, built from page/ by `npm run build`), a small JSON API
 * and one event stream (SSE) that pushes a fresh snapshot of what the page
 * shows whenever the agent says something changed: the page never polls.
 *
 *   GET  /                     the page (no data: it holds no token)
 *   GET  /api/state            the snapshot (page-state.ts)
 *   GET  /api/events?t=TOKEN   event stream: `state`, `notice`, `rtc-offer`
 *   POST /api/answer, /api/decline           {callId[, text]}
 *   POST /api/call                           {contact}: a chat carried by the page
 *   POST /api/chat, /api/hangup              {callId[, text]}
 *   POST /api/send?contact=C&name=N          body: the file's bytes
 *   POST /api/rtc/call, /api/rtc/answer, /api/rtc/hangup: the tab's own WebRTC
 *        descriptions, handed to BrowserCalls (the agent mails them)
 *
 * Every request passes guard.ts first (Host, Origin, token); a refused one
 * gets 403 and an empty body.
 */
import http from 'node:http';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Agent, AgentEvent } from '../agent/agent.js';
import type { ActiveCall } from '../agent/phone-types.js';
import type { BrowserCalls, BrowserOffer } from '../agent/browser-calls-types.js';
import { PeerdialError } from '../errors.js';
import { checkRequest } from './guard.js';
import { PageCalls, keepUpload } from './page-calls.js';
import { contactView, logView, type PageState } from './page-state.js';

/** What the server uses of the agent. */
export type PageAgent = Pick<Agent, 'account' | 'ringingNow' | 'pickRinging' | 'call'>;

export interface PageServerOptions {
  agent: PageAgent;
  /** The tab's own WebRTC calls; without it the page says video is not available. */
  browserCalls?: BrowserCalls;
  /** TCP port on 127.0.0.1; 0 or absent: any free port. */
  port?: number;
  /** Where the bundled page is (default: dist/page of this package). */
  pageDir?: string;
}

export interface PageServer {
  /** The address to open, token included: http://127.0.0.1:PORT/#t=TOKEN */
  url: string;
  port: number;
  /** An agent event: the page gets a fresh snapshot when it changes what it shows. */
  agentEvent(e: AgentEvent): void;
  /** A connected incoming call the page carries (a chat while a page is open); undefined: not the page's. */
  carry(call: ActiveCall): Promise<void> | undefined;
  close(): Promise<void>;
}

/** dist/page beside this file's package: src/web/ and dist/web/ both sit two levels down. */
export function defaultPageDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'page');
}

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob: mediastream:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/page.js': { file: 'page.js', type: 'text/javascript; charset=utf-8' },
  '/page.css': { file: 'page.css', type: 'text/css; charset=utf-8' },
};

/** Largest JSON body (descriptions are a few KiB). */
const MAX_JSON = 256 * 1024;
/** Largest file sent from the page; bigger ones go with `peerdial send`. */
const MAX_UPLOAD = 512 * 1024 * 1024;

/** Agent events that change what the page shows. */
const SHOWN = new Set(['ringing', 'connected', 'ended', 'message', 'state', 'address-changed']);

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export async function startPageServer(o: PageServerOptions): Promise<PageServer> {
  const token = randomBytes(24).toString('base64url');
  const pageDir = o.pageDir ?? defaultPageDir();
  const streams = new Set<http.ServerResponse>();
  const offers = new Map<string, BrowserOffer>();
  let pending = false;
  let closed = false;

  const send = (event: string, data: unknown) => {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const s of streams) s.write(frame);
  };
  const snapshot = async (): Promise<PageState> => {
    const acc = o.agent.account;
    const [contacts, entries] = await Promise.all([acc.contacts.list(), acc.calls.list().catch(() => [])]);
    const now = Date.now();
    return {
      me: acc.email,
      contacts: contacts.map((c) => contactView(c, now)),
      ...logView(entries),
      ringing: o.agent.ringingNow().map((r) => ({ callId: r.callId, peer: r.peer, purpose: r.purpose, trust: r.trust })),
      calls: calls.list(),
      video: !!o.browserCalls,
      offers: [...offers.values()],
    };
  };
  /** One fresh snapshot to every open page, after the current burst of changes. */
  const changed = () => {
    if (pending || closed || !streams.size) return;
    pending = true;
    setImmediate(() => {
      pending = false;
      snapshot().then((s) => send('state', s), () => undefined);
    });
  };
  const calls = new PageCalls(changed);
  const notice = (text: string) => send('notice', { text });
  // media offers come to the tabs only while a page is open (else the agent answers them itself)
  let unsubscribeOffers: (() => void) | undefined;
  const listenForOffers = () => {
    if (unsubscribeOffers || !o.browserCalls) return;
    unsubscribeOffers = o.browserCalls.onOffer((offer) => {
      offers.set(offer.callId, offer);
      send('rtc-offer', offer);
      changed();
    });
  };
  const stopListeningForOffers = () => {
    unsubscribeOffers?.();
    unsubscribeOffers = undefined;
    offers.clear();
  };

  const routes: Record<string, (req: http.IncomingMessage, url: URL) => Promise<unknown>> = {
    'GET /api/state': () => snapshot(),
    'POST /api/answer': async (req) => {
      const { callId } = await jsonBody(req);
      o.agent.pickRinging(str(callId, 'callId')).accept();
      changed();
      return { ok: true };
    },
    'POST /api/decline': async (req) => {
      const { callId, text } = await jsonBody(req);
      o.agent.pickRinging(str(callId, 'callId')).decline(typeof text === 'string' && text ? text : undefined);
      changed();
      return { ok: true };
    },
    'POST /api/call': async (req) => {
      const contact = str((await jsonBody(req)).contact, 'contact');
      notice(`calling ${contact}...`);
      // the answer comes by mail: the page hears of it over the event stream
      o.agent.call(contact, { purpose: 'chat' }).then(
        async (call) => calls.carryChat(call, await call.session.openChannel('chat')),
        (err: Error) => notice(`call to ${contact}: ${err.message}`),
      );
      return { ok: true };
    },
    'POST /api/chat': async (req) => {
      const { callId, text } = await jsonBody(req);
      calls.say(str(callId, 'callId'), str(text, 'text'));
      return { ok: true };
    },
    'POST /api/hangup': async (req) => {
      calls.hangup(str((await jsonBody(req)).callId, 'callId'));
      return { ok: true };
    },
    'POST /api/send': async (req, url) => {
      const contact = str(url.searchParams.get('contact'), 'contact');
      const upload = await keepUpload(str(url.searchParams.get('name'), 'name'), req, MAX_UPLOAD);
      try {
        notice(`calling ${contact} to send ${path.basename(upload.file)}...`);
        const call = await o.agent.call(contact, { purpose: 'file' });
        return await calls.sendFile(call, upload.file);
      } finally {
        await upload.remove();
      }
    },
    'POST /api/rtc/call': async (req) => {
      const b = await jsonBody(req);
      return rtc().call(str(b.contact, 'contact'), str(b.offerSdp, 'offerSdp'), { video: b.video !== false, audio: b.audio !== false });
    },
    'POST /api/rtc/answer': async (req) => {
      const b = await jsonBody(req);
      const callId = str(b.callId, 'callId');
      await rtc().answer(callId, str(b.answerSdp, 'answerSdp'));
      offers.delete(callId);
      changed();
      return { ok: true };
    },
    'POST /api/rtc/hangup': async (req) => {
      const callId = str((await jsonBody(req)).callId, 'callId');
      offers.delete(callId);
      await rtc().hangup(callId);
      changed();
      return { ok: true };
    },
  };
  const rtc = (): BrowserCalls => {
    if (!o.browserCalls) throw new HttpError(404, 'Video in the browser is not available in this agent.');
    return o.browserCalls;
  };

  let port = 0;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const api = url.pathname.startsWith('/api/');
    const verdict = checkRequest(
      {
        host: req.headers.host,
        origin: req.headers.origin,
        fetchSite: header(req, 'sec-fetch-site'),
        token: header(req, 'x-peerdial-token') ?? url.searchParams.get('t') ?? undefined,
        api,
      },
      port,
      token,
    );
    if (!verdict.ok) {
      res.writeHead(403, { 'Content-Length': '0', 'Cache-Control': 'no-store' });
      res.end();
      req.resume();
      return;
    }
    const common = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer', 'Content-Security-Policy': CSP, 'X-Frame-Options': 'DENY', 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Resource-Policy': 'same-origin' };
    if (!api) {
      const asset = STATIC[url.pathname];
      if (req.method !== 'GET' || !asset) {
        res.writeHead(404, { ...common, 'Content-Length': '0' });
        res.end();
        return;
      }
      fs.readFile(path.join(pageDir, asset.file)).then(
        (body) => {
          res.writeHead(200, { ...common, 'Content-Type': asset.type, 'Content-Length': String(body.length) });
          res.end(body);
        },
        () => {
          const text = 'The page is not built: run npm run build.\n';
          res.writeHead(500, { ...common, 'Content-Type': 'text/plain; charset=utf-8' });
          res.end(text);
        },
      );
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/events') {
      res.writeHead(200, { ...common, 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive' });
      res.write(': peerdial\n\n');
      streams.add(res);
      listenForOffers();
      req.on('close', () => {
        streams.delete(res);
        if (!streams.size) stopListeningForOffers();
      });
      snapshot().then((s) => res.write(`event: state\ndata: ${JSON.stringify(s)}\n\n`), () => undefined);
      return;
    }
    const route = routes[`${req.method} ${url.pathname}`];
    if (!route) {
      res.writeHead(404, { ...common, 'Content-Length': '0' });
      res.end();
      req.resume();
      return;
    }
    route(req, url).then(
      (result) => reply(res, 200, common, result),
      (err: Error) => {
        const status = err instanceof HttpError ? err.status : err instanceof PeerdialError ? 400 : 500;
        reply(res, status, common, { error: err.message, ...(err instanceof PeerdialError ? { code: err.code, ...(err.hint ? { hint: err.hint } : {}) } : {}) });
        req.resume();
      },
    );
  });
  // SSE streams stay open: a keep-alive comment now and then, on an unref'd timer
  const keepAlive = setInterval(() => {
    for (const s of streams) s.write(': keep-alive\n\n');
  }, 25_000);
  keepAlive.unref();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new PeerdialError('USAGE', `The web page cannot listen on 127.0.0.1:${o.port ?? 0}: ${err.message}.`, {
          hint: 'Choose another port ([web] port in the config, or peerdial web --port N), or 0 for any free one.',
          cause: err,
        }),
      ),
    );
    server.listen(o.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as { port: number }).port;

  return {
    url: `http://127.0.0.1:${port}/#t=${token}`,
    port,
    agentEvent(e) {
      if (e.type === 'ended') calls.ended(e.callId, e.detail);
      if (SHOWN.has(e.type)) changed();
    },
    carry(call) {
      if (closed || !streams.size || call.purpose !== 'chat') return undefined;
      return calls.carryChat(call);
    },
    async close() {
      closed = true;
      clearInterval(keepAlive);
      stopListeningForOffers();
      for (const s of streams) s.end();
      streams.clear();
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    },
  };
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function reply(res: http.ServerResponse, status: number, common: Record<string, string>, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body ?? null);
  res.writeHead(status, { ...common, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)) });
  res.end(text);
}

function str(v: unknown, name: string): string {
  if (typeof v !== 'string' || !v) throw new HttpError(400, `${name} is missing`);
  return v;
}

async function jsonBody(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) throw new HttpError(415, 'The API takes application/json.');
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_JSON) throw new HttpError(413, 'The request is too large.');
    chunks.push(c);
  }
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // below
  }
  throw new HttpError(400, 'The body is not a JSON object.');
}
