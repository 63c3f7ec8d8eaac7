// One side of a call whose transport is restarted when an address changes
// (src/agent/restart*.ts), between two network namespaces: a direct session
// with a per-call certificate, the first SDP carried by the test process
// (as netns-peer.mjs), then a file over a DataChannel. When this machine's
// address changes (netlink, src/address/watch.ts) or the peer restarts, the
// call gets a new transport (CallRestart); the file carrier starts again on
// it and resumes from the bytes the receiver kept. The update's mail leg is
// the test process: it signs, encrypts and parses a real `update` mail
// (wire/build.ts, wire/parse.ts) and hands the parsed message over.
// Uses the compiled library.
//
// argv[2]: { role: 'offerer'|'answerer', ice: IceConfig, dir, file?,
//            connectTimeoutMs, callId, me, peer, mailFallbackMs }
//   offerer:  -> {type:'offer', sdp}   <- {cmd:'answer', sdp}   -> {type:'sent', files, attempts}
//   answerer: <- {cmd:'offer', sdp}    -> {type:'answer', sdp}  -> {type:'received', files, attempts}
//   both:     -> {type:'connected', pair} | {type:'failed', code, message}
//             -> {type:'mail', update}            (an update to mail to the peer)
//             <- {cmd:'mail', message}            (a verified `update` mail from the peer)
//             -> {type:'address-changed', addresses}, {type:'say', text},
//                {type:'log', entry} (a call log line, also in dir/calls.jsonl),
//                {type:'switched', generation, pair}, {type:'refused', reason, detail, via},
//                {type:'bytes', bytes} (received so far, every 8 MiB)
//             <- {cmd:'close'}: close and exit 0
import { mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import path from 'node:path';

const config = JSON.parse(process.argv[2] ?? '{}');
const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
process.on('uncaughtException', (err) => {
  emit({ type: 'failed', code: 'CRASH', message: String(err?.stack ?? err) });
  process.exit(3);
});

const { Session, shutdownSessions, createCallCertificate } = await import('../../dist/session/index.js');
const { receiveFiles, sendFiles, settleChannel } = await import('../../dist/carriers/index.js');
const { CallRestart, controlPathUsable, restartLogEntry } = await import('../../dist/agent/restart-call.js');
const { watchAddresses } = await import('../../dist/address/watch.js');
const { isAnnounceable } = await import('../../dist/address/classify.js');
const { CallLog } = await import('../../dist/store/calllog.js');
const { realTimers } = await import('../../dist/util/timers.js');

mkdirSync(config.dir, { recursive: true });
const certificate = await createCallCertificate({ parentDir: config.dir });
const calls = new CallLog(config.dir);
const direction = config.role === 'offerer' ? 'out' : 'in';

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

/** Where new transports bind: the site's address until it changes. */
let bindAddress = config.ice.bindAddress;
/** This machine's usable IPv4 addresses, as the watcher last saw them. */
let addresses = [config.ice.bindAddress];
const iceNow = () => ({ ...config.ice, bindAddress });

/** The call's present transport, and the file channels its peer opened. */
let current;
let switched = () => undefined;
const nextSwitch = () => new Promise((r) => (switched = r));
let ended;
const endedP = new Promise((r) => (ended = r));

function transport(session, connected) {
  const t = { session, control: connected.channel, pair: connected.pair };
  t.control.onMessage((data) => restarter.fromControl(data));
  session.onClose((reason) => {
    if (current === t) restarter.transportLost(reason);
  });
  return t;
}

/** File channels the peer opens on a session, in order. */
const fileChannels = new WeakMap();
function collectFileChannels(session) {
  const q = { list: [], wake: undefined };
  fileChannels.set(session, q);
  session.onChannel((ch) => {
    if (ch.label !== 'file') return;
    q.list.push(ch);
    q.wake?.();
  });
}
async function nextFileChannel(session) {
  const q = fileChannels.get(session);
  while (q.list.length === 0) await new Promise((r) => (q.wake = r));
  return q.list.shift();
}

function newTransport(made) {
  return {
    sdp: made.sdp,
    connected: () => made.session.connected({ timeoutMs: config.connectTimeoutMs ?? 60_000 }).then((c) => ({ session: made.session, c })),
    acceptAnswer: (sdp) => made.session.acceptAnswer(sdp),
    close: (reason) => made.session.close(reason),
  };
}

const restarter = new CallRestart({
  caller: config.role === 'offerer',
  callId: config.callId,
  peer: config.peer,
  timers: realTimers,
  mailFallbackMs: config.mailFallbackMs ?? 3_000,
  controlOpen: () => controlPathUsable(Boolean(current?.control.isOpen), current?.pair.local, addresses),
  edges: {
    offer: async () => {
      const made = await Session.createOffer({ ice: iceNow(), certificate });
      collectFileChannels(made.session);
      return newTransport(made);
    },
    answer: async (_generation, sdp) => {
      const made = await Session.acceptOffer(sdp, { ice: iceNow(), certificate });
      collectFileChannels(made.session);
      return newTransport(made);
    },
    sendControl: async (text) => {
      if (!current?.control.isOpen) return false;
      await current.control.send(text);
      return true;
    },
    mail: async (update) => emit({ type: 'mail', update }),
    switchTo: ({ session, c }, generation) => {
      const old = current;
      current = transport(session, c);
      emit({ type: 'switched', generation, pair: c.pair });
      old?.session.close(`replaced by restart ${generation}`);
      switched();
    },
    end: (reason) => ended(reason),
    log: (record) => {
      const entry = restartLogEntry(record, { at: new Date().toISOString(), direction, peer: config.peer, callId: config.callId });
      void calls.append(entry).then(() => emit({ type: 'log', entry, record }));
    },
    say: (text) => emit({ type: 'say', text }),
    onRefused: (reason, detail, via) => emit({ type: 'refused', reason, detail, via }),
  },
});

const watching = new AbortController();
watchAddresses({
  signal: watching.signal,
  debounceMs: 300,
  onChange: (now) => {
    const v4 = now.filter((a) => a.family === 4 && isAnnounceable(a.scope)).map((a) => a.ip);
    emit({ type: 'address-changed', addresses: v4 });
    addresses = v4;
    if (v4.length > 0) bindAddress = v4[0];
    restarter.addressChanged(`now ${v4.join(', ') || 'none'}`, v4.length > 0);
  },
});

/** Runs `work` on the present transport; when the transport is replaced under it, again on the new one. */
async function onEveryTransport(work) {
  let attempts = 0;
  for (;;) {
    const t = current;
    attempts++;
    const aborted = new AbortController();
    const replaced = nextSwitch().then(() => aborted.abort());
    try {
      const r = await Promise.race([work(t, aborted.signal), endedP.then((reason) => Promise.reject(Object.assign(new Error(`the call ended: ${reason}`), { code: 'RESTART_FAILED' })))]);
      return { r, attempts };
    } catch (err) {
      if (err?.code === 'RESTART_FAILED') throw err;
      // the transport went (or is going): wait for the new one, unless it is already here
      if (current === t) await Promise.race([replaced, endedP]);
      if (current === t) throw err;
    }
  }
}

let lastBytes = 0;
async function carry() {
  try {
    if (config.role === 'offerer') {
      const { r: files, attempts } = await onEveryTransport(async (t, signal) => {
        const ch = await t.session.openChannel('file');
        const files = await sendFiles(ch, [config.file], { signal });
        await settleChannel(ch);
        return files;
      });
      emit({ type: 'sent', files, attempts });
    } else {
      const { r: files, attempts } = await onEveryTransport(async (t, signal) => {
        const ch = await nextFileChannel(t.session);
        return receiveFiles(ch, { dir: path.join(config.dir, 'in'), signal, onProgress: (p) => {
          // every 8 MiB: the test re-addresses once enough is across
          if (p.bytes - lastBytes >= 8 * 1024 * 1024 || p.bytes === p.total) emit({ type: 'bytes', bytes: (lastBytes = p.bytes) });
        } });
      });
      emit({ type: 'received', files, attempts });
    }
  } catch (err) {
    emit({ type: 'failed', code: err?.code ?? 'ERROR', message: String(err?.message ?? err) });
  }
}

async function first(made) {
  try {
    const c = await made.session.connected({ timeoutMs: config.connectTimeoutMs ?? 60_000 });
    current = transport(made.session, c);
    emit({ type: 'connected', pair: c.pair });
    void carry();
  } catch (err) {
    emit({ type: 'failed', code: err?.code ?? 'ERROR', message: String(err?.message ?? err) });
  }
}

try {
  for (;;) {
    const c = await next();
    if (c.cmd === 'close') break;
    if (c.cmd === 'start' && config.role === 'offerer') {
      const made = await Session.createOffer({ ice: iceNow(), certificate });
      collectFileChannels(made.session);
      emit({ type: 'offer', sdp: made.sdp });
      const answer = await next();
      made.session.acceptAnswer(answer.sdp);
      void first(made);
    } else if (c.cmd === 'offer') {
      const made = await Session.acceptOffer(c.sdp, { ice: iceNow(), certificate });
      collectFileChannels(made.session);
      emit({ type: 'answer', sdp: made.sdp });
      void first(made);
    } else if (c.cmd === 'mail') restarter.fromMail(c.message);
  }
} catch (err) {
  emit({ type: 'failed', code: err?.code ?? 'ERROR', message: String(err?.message ?? err) });
}
watching.abort();
restarter.stop();
try {
  shutdownSessions();
} catch {
  /* ignore */
}
certificate.remove();
setTimeout(() => process.exit(0), 20).unref?.();
