// One side of a file transfer between two network namespaces, over a TLS
// lane or its DataChannel fallback (src/carriers/tls-lane.ts): a direct
// session with a per-call certificate, the SDP carried by the test process
// (as netns-peer.mjs), then `send` of one file. Uses the compiled library.
//
// argv[2]: { role: 'offerer'|'answerer', ice: IceConfig, dir, file?,
//            connectTimeoutMs }
//   offerer:  -> {type:'offer', sdp}   <- {cmd:'answer', sdp}
//             -> {type:'sent', via, reason, files}
//   answerer: <- {cmd:'offer', sdp}    -> {type:'answer', sdp}
//             -> {type:'received', via, files}
//   both:     -> {type:'connected', pair} or {type:'failed', code, message}
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
const { answerLanes, carrierChannelNamed, openCarrierChannel, receiveFiles, sendFiles, settleChannel, viaOf } = await import('../../dist/carriers/index.js');

mkdirSync(config.dir, { recursive: true });
const certificate = await createCallCertificate({ parentDir: config.dir });

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

let session;
async function carry(peerSdp) {
  try {
    const c = await session.connected({ timeoutMs: config.connectTimeoutMs ?? 20_000 });
    emit({ type: 'connected', pair: c.pair });
    const ended = new Promise((resolve) => session.onClose((reason) => resolve(reason)));
    const call = {
      control: c.channel,
      pair: c.pair,
      session,
      ended,
      tls: { certPemFile: certificate.certPemFile, keyPemFile: certificate.keyPemFile, peerSdp },
    };
    if (config.role === 'offerer') {
      const lane = await openCarrierChannel(call, 'file');
      const files = await sendFiles(lane.channel, [config.file]);
      await settleChannel(lane.channel);
      emit({ type: 'sent', via: lane.via, reason: lane.reason, files });
    } else {
      answerLanes(call);
      const ch = await carrierChannelNamed(call, 'file');
      const files = await receiveFiles(ch, { dir: path.join(config.dir, 'in') });
      emit({ type: 'received', via: viaOf(ch), files });
    }
  } catch (err) {
    emit({ type: 'failed', code: err?.code ?? 'ERROR', message: String(err?.message ?? err) });
  }
}

try {
  if (config.role === 'offerer') {
    const made = await Session.createOffer({ ice: config.ice, certificate });
    session = made.session;
    emit({ type: 'offer', sdp: made.sdp });
    for (;;) {
      const c = await next();
      if (c.cmd === 'answer') {
        session.acceptAnswer(c.sdp);
        void carry(c.sdp);
      } else if (c.cmd === 'close') break;
    }
  } else {
    for (;;) {
      const c = await next();
      if (c.cmd === 'offer') {
        const made = await Session.acceptOffer(c.sdp, { ice: config.ice, certificate });
        session = made.session;
        emit({ type: 'answer', sdp: made.sdp });
        void carry(c.sdp);
      } else if (c.cmd === 'close') break;
    }
  }
} catch (err) {
  emit({ type: 'failed', code: err?.code ?? 'ERROR', message: String(err?.message ?? err) });
}
try {
  shutdownSessions();
} catch {
  /* ignore */
}
certificate.remove();
setTimeout(() => process.exit(0), 20).unref?.();
