// One peer of a test call, run by test/harness/netns.ts inside a host
// namespace: `ip netns exec NS node test/harness/netns-peer.mjs '<json>'`.
// Uses the compiled library (npm run build). Talks JSON lines: reads
// commands on stdin, writes events on stdout. No mail: the test process
// carries the SDP.
//
// argv[2]: { role: 'offerer'|'answerer', ice: IceConfig, connectTimeoutMs,
//            natpmp?: { gateway }, stripEndOfCandidates?: boolean,
//            stripCandidates?: boolean, keepAnswerMs?: number,
//            keepAnswerRefreshMs?: number, dir?: string,
//            keepOfferConnection?: boolean (offerer: OfferOptions') }
//   ice.turn: TURN relays ({ host, port, username, password }), as IceConfig.
//   transfer: { bytes, dir }: after the echo the offerer writes `bytes` random
//   bytes to dir/payload.bin and sends the file with the file carrier on a
//   channel "file" -> {type:'sent', sha256, bytes, status, ms}; the answerer
//   saves it into dir and reads the saved file back ->
//   {type:'received', sha256, bytes, status} (the SHA-256 of what is on disk).
//   keepAnswerMs, keepAnswerRefreshMs (answerer): Session.acceptOffer's
//   options; the certificate is made by createCallCertificate() in `dir` when
//   given (removed at exit), else by the Session itself.
//   offerer:  -> {type:'offer', sdp}   <- {cmd:'answer', sdp}
//   answerer: <- {cmd:'offer', sdp}    -> {type:'answer', sdp}
//   one-mail call (a standing answer, src/session/standing.ts):
//   answerer: <- {cmd:'prepare-standing'} -> {type:'standing', identity}
//             then <- {cmd:'offer', sdp, standing: true} answers on it
//   offerer:  <- {cmd:'standing-answer', identity}: applies the answer made
//             from it (provisional) at once
//   both:     -> {type:'connected', ms, pair} then {type:'echo', ms}
//             or {type:'failed', code, message, hint}
//             -> {type:'progress', t, event} along the way
//             <- {cmd:'close'}: close and exit 0, after
//             -> {type:'lag', max} the longest event-loop stall seen (ms)
//
// argv[2] may instead be { role: 'stun', servers, localAddress, timeoutMs }:
// runs stunBinding + natMapping and prints {type:'stun', ...}.
//
// Environment NDC_LOG_DIR (diagnosis, never set by the tests): libdatachannel
// and libjuice log verbosely to NDC_LOG_DIR/ROLE-PID.log (how the DTLS stall
// of src/session/options.ts DTLS_STALL_MS was found, with gdb on the PID).
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { createReadStream, mkdirSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const config = JSON.parse(process.argv[2] ?? '{}');
const t0 = performance.now();
const since = () => Math.round(performance.now() - t0);
const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

process.on('uncaughtException', (err) => {
  emit({ type: 'failed', code: 'CRASH', message: String(err?.stack ?? err) });
  process.exit(3);
});

if (config.role === 'stun') {
  const { stunBinding, natMapping } = await import('../../dist/address/stun.js');
  const [a, b] = config.servers;
  const out = { type: 'stun' };
  try {
    out.binding = await stunBinding(a, { localAddress: config.localAddress, timeoutMs: config.timeoutMs });
  } catch (err) {
    out.bindingError = { code: err.code, message: err.message };
  }
  try {
    out.mapping = await natMapping([a, b], { localAddress: config.localAddress, timeoutMs: config.timeoutMs });
  } catch (err) {
    out.mappingError = { code: err.code, message: err.message };
  }
  emit(out);
  process.exit(0);
}

const { Session, shutdownSessions, createCallCertificate, prepareStanding, answerFromStanding } = await import('../../dist/session/index.js');
if (process.env.NDC_LOG_DIR) {
  const { initLogger } = await import('node-datachannel');
  const { appendFileSync } = await import('node:fs');
  const file = `${process.env.NDC_LOG_DIR}/${config.role}-${process.pid}.log`;
  initLogger('Verbose', (level, message) => appendFileSync(file, `${since()} ${level} ${message}\n`));
}
let prepared;

// Event-loop stalls (a native call that blocks, e.g. a hanging close()).
let maxLag = 0;
let lastTick = performance.now();
setInterval(() => {
  const now = performance.now();
  maxLag = Math.max(maxLag, Math.round(now - lastTick - 100));
  lastTick = now;
}, 100).unref();
let certificate;

/** NAT-PMP (RFC 6886) UDP mapping request: internal port -> external port. */
function natPmpMap(gateway, internalPort, lifetimeS) {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    const req = Buffer.alloc(12);
    req.writeUInt8(0, 0); // version
    req.writeUInt8(1, 1); // map UDP
    req.writeUInt16BE(internalPort, 4);
    req.writeUInt16BE(internalPort, 6); // suggested external port
    req.writeUInt32BE(lifetimeS, 8);
    let tries = 0;
    let timer;
    const send = () => {
      if (tries++ >= 5) {
        sock.close();
        reject(new Error(`no NAT-PMP answer from ${gateway}`));
        return;
      }
      sock.send(req, 5351, gateway);
      timer = setTimeout(send, 250 * 2 ** tries);
    };
    sock.on('message', (msg) => {
      if (msg.length < 16 || msg.readUInt8(1) !== 129) return;
      clearTimeout(timer);
      sock.close();
      const result = msg.readUInt16BE(2);
      if (result !== 0) reject(new Error(`NAT-PMP refused the mapping: result ${result}`));
      else resolve({ internal: msg.readUInt16BE(8), external: msg.readUInt16BE(10), lifetime: msg.readUInt32BE(12) });
    });
    sock.bind(0, () => send());
  });
}

const ice = { ...config.ice };
if (config.natpmp) {
  // Map first, then pin ICE to the mapped port (nat.md: miniupnpd rewrites the
  // source port to the external port, so the srflx candidate is the mapping).
  const port = 20000 + Math.floor(Math.random() * 20000);
  try {
    const m = await natPmpMap(config.natpmp.gateway, port, 600);
    emit({ type: 'mapping', internal: port, external: m.external, lifetime: m.lifetime });
    ice.portRangeBegin = port;
    ice.portRangeEnd = port;
  } catch (err) {
    emit({ type: 'mapping-failed', message: String(err.message ?? err) });
  }
}

const onProgress = (event) => emit({ type: 'progress', t: since(), event });
const connectTimeoutMs = config.connectTimeoutMs ?? 20_000;
let session;

const lines = createInterface({ input: process.stdin });
const commands = [];
let wake;
lines.on('line', (line) => {
  if (!line.trim()) return;
  commands.push(JSON.parse(line));
  wake?.();
});
lines.on('close', () => {
  commands.push({ cmd: 'close' });
  wake?.();
});
async function next() {
  while (commands.length === 0) await new Promise((r) => (wake = r));
  return commands.shift();
}

function finish(code) {
  try {
    shutdownSessions();
  } catch {
    /* ignore */
  }
  certificate?.remove();
  prepared?.certificate.remove();
  emit({ type: 'lag', max: maxLag });
  setTimeout(() => process.exit(code), 20).unref?.();
}

function report(err) {
  emit({ type: 'failed', t: since(), code: err?.code ?? 'ERROR', message: String(err?.message ?? err), hint: err?.hint });
}

async function sha256Of(file) {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file)) {
    h.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: h.digest('hex'), bytes };
}

async function sendPayload() {
  const { sendFiles } = await import('../../dist/carriers/index.js');
  mkdirSync(config.transfer.dir, { recursive: true });
  const file = join(config.transfer.dir, 'payload.bin');
  const fd = openSync(file, 'wx', 0o600);
  for (let left = config.transfer.bytes; left > 0; left -= 1 << 20) writeSync(fd, randomBytes(Math.min(left, 1 << 20)));
  closeSync(fd);
  const { sha256, bytes } = await sha256Of(file);
  const t = performance.now();
  const ch = await session.openChannel('file');
  const [sent] = await sendFiles(ch, [file]);
  emit({ type: 'sent', sha256, bytes, status: sent?.status, ms: Math.round(performance.now() - t) });
}

function receivePayload() {
  session.onChannel((ch) => {
    if (ch.label !== 'file') return;
    void (async () => {
      try {
        const { receiveFiles } = await import('../../dist/carriers/index.js');
        const got = await receiveFiles(ch, { dir: config.transfer.dir });
        for (const f of got) {
          const disk = f.path ? await sha256Of(f.path) : { sha256: undefined, bytes: 0 };
          emit({ type: 'received', ...disk, status: f.status });
        }
      } catch (err) {
        emit({ type: 'received', status: 'error', message: String(err?.message ?? err) });
      }
    })();
  });
}

async function connectAndEcho() {
  try {
    const c = await session.connected({ timeoutMs: connectTimeoutMs });
    emit({ type: 'connected', t: since(), ms: c.ms, pair: c.pair });
    if (session.role === 'offerer') {
      const tSend = performance.now();
      const got = new Promise((resolve) => c.channel.onMessage(resolve));
      await c.channel.send('ping');
      const reply = await Promise.race([got, new Promise((r) => setTimeout(() => r(undefined), 5000))]);
      emit({ type: 'echo', ok: reply === 'pong', ms: Math.round(performance.now() - tSend) });
      if (config.transfer) await sendPayload();
    } else {
      if (config.transfer) receivePayload();
      c.channel.onMessage((m) => {
        if (m === 'ping') c.channel.send('pong').catch(() => undefined);
      });
    }
  } catch (err) {
    report(err);
  }
}

try {
  if (config.role === 'offerer') {
    const made = await Session.createOffer({ ice, onProgress, ...(config.keepOfferConnection === undefined ? {} : { keepOfferConnection: config.keepOfferConnection }) });
    session = made.session;
    emit({ type: 'offer', sdp: made.sdp });
    for (;;) {
      const c = await next();
      if (c.cmd === 'answer') {
        emit({ type: 'progress', t: since(), event: { type: 'answer-applied' } });
        session.acceptAnswer(c.sdp);
        void connectAndEcho();
      } else if (c.cmd === 'standing-answer') {
        emit({ type: 'progress', t: since(), event: { type: 'answer-applied', standing: true } });
        session.acceptAnswer(answerFromStanding(made.sdp, c.identity), { provisional: true });
        void connectAndEcho();
      } else if (c.cmd === 'close') break;
    }
  } else if (config.role === 'answerer') {
    for (;;) {
      const c = await next();
      if (c.cmd === 'prepare-standing') {
        prepared = await prepareStanding(Session, ice);
        emit({ type: 'standing', identity: prepared.identity });
      } else if (c.cmd === 'offer') {
        let offer = c.sdp;
        if (config.stripEndOfCandidates || config.stripCandidates) offer = offer.replace(/^a=end-of-candidates\r?\n/gm, '');
        if (config.stripCandidates) offer = offer.replace(/^a=candidate:.*\r?\n/gm, '');
        const opts = { ice, onProgress };
        if (config.keepAnswerMs) {
          opts.keepAnswerMs = config.keepAnswerMs;
          if (config.keepAnswerRefreshMs) opts.keepAnswerRefreshMs = config.keepAnswerRefreshMs;
          if (config.dir) {
            mkdirSync(config.dir, { recursive: true });
            certificate = await createCallCertificate({ parentDir: config.dir });
            opts.certificate = certificate;
          }
        }
        if (c.standing) opts.standing = prepared.kept;
        const made = await Session.acceptOffer(offer, opts);
        session = made.session;
        emit({ type: 'answer', sdp: made.sdp });
        void connectAndEcho();
      } else if (c.cmd === 'close') break;
    }
  } else {
    throw new Error(`unknown role ${config.role}`);
  }
} catch (err) {
  report(err);
}
finish(0);
