// Experimental callee for answers that come back late (test/nat.test.ts):
// node-datachannel directly, because src/session cannot do this yet.
//
// libjuice's answering agent gives up ~39.5 s after the offer is applied
// when nothing reaches it (behind the caller's filtering NAT nothing does
// until the caller has the answer). This callee keeps its ANSWER valid
// instead: the first PeerConnection's ICE credentials, DTLS certificate and
// UDP port are kept, and before the agent would give up the connection is
// replaced by a fresh one with the same identity (same ufrag/pwd, same
// fingerprint, same port and therefore the same host and srflx candidates).
// Whenever the caller finally applies the one mailed answer, a live agent
// that matches it is listening.
//
// argv[2]: { ice: { iceServers, bindAddress }, refreshMs, connectTimeoutMs, dir }
// stdin/stdout: JSON lines as netns-peer.mjs (answerer role), plus
//   -> {type:'refresh', n, t, same}  each time the connection is replaced.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import nodeDataChannel from 'node-datachannel';

const { PeerConnection, cleanup } = nodeDataChannel;
const config = JSON.parse(process.argv[2] ?? '{}');
const t0 = performance.now();
const since = () => Math.round(performance.now() - t0);
const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const guard = (fn) => (...a) => {
  try {
    fn(...a);
  } catch (err) {
    emit({ type: 'progress', t: since(), event: { type: 'callback-error', message: String(err) } });
  }
};

// One certificate for every connection of this call: the answer's fingerprint.
mkdirSync(config.dir, { recursive: true });
const cert = join(config.dir, 'cert.pem');
const key = join(config.dir, 'key.pem');
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=peerdial'], { stdio: 'ignore' });
const port = 20000 + Math.floor(Math.random() * 20000);

let pc;
let connected = false;
let channels = [];

function candidates(sdp) {
  return sdp
    .split(/\r?\n/)
    .filter((l) => l.startsWith('a=candidate:'))
    .map((l) => l.split(' ').slice(4, 8).join(' '))
    .sort()
    .join(',');
}

async function makeConnection(offer, creds) {
  const conn = new PeerConnection(`late-callee-${since()}`, {
    iceServers: config.ice.iceServers,
    bindAddress: config.ice.bindAddress,
    portRangeBegin: port,
    portRangeEnd: port,
    certificatePemFile: cert,
    keyPemFile: key,
    disableAutoNegotiation: true,
  });
  conn.onStateChange(
    guard((state) => {
      emit({ type: 'progress', t: since(), event: { type: 'state', state } });
      if (state === 'connected' && conn === pc && !connected) {
        connected = true;
      }
    }),
  );
  conn.onIceStateChange(guard((state) => emit({ type: 'progress', t: since(), event: { type: 'ice', state } })));
  conn.onDataChannel(
    guard((dc) => {
      channels.push(dc);
      emit({ type: 'connected', t: since(), ms: 0, pair: selected(conn) });
      dc.onMessage(guard((m) => m === 'ping' && dc.sendMessage('pong')));
    }),
  );
  const gathered = new Promise((resolve) => conn.onGatheringStateChange(guard((s) => s === 'complete' && resolve())));
  conn.setRemoteDescription(offer, 'offer');
  conn.setLocalDescription('answer', creds);
  await Promise.race([gathered, sleep(10_000)]);
  return conn;
}

function selected(conn) {
  try {
    const p = conn.getSelectedCandidatePair();
    return p ? { local: `${p.local.type} ${p.local.address}:${p.local.port}`, remote: `${p.remote.type} ${p.remote.address}:${p.remote.port}` } : undefined;
  } catch {
    return undefined;
  }
}

const lines = createInterface({ input: process.stdin });
let done;
const finished = new Promise((r) => (done = r));
lines.on('close', () => done());
lines.on('line', async (line) => {
  const c = JSON.parse(line);
  if (c.cmd === 'close') return done();
  if (c.cmd !== 'offer') return;
  pc = await makeConnection(c.sdp, undefined);
  const answer = pc.localDescription().sdp;
  const ufrag = /^a=ice-ufrag:(\S+)/m.exec(answer)[1];
  const pwd = /^a=ice-pwd:(\S+)/m.exec(answer)[1];
  const first = candidates(answer);
  emit({ type: 'answer', sdp: answer });
  const deadline = performance.now() + config.connectTimeoutMs;
  let n = 0;
  while (!connected && performance.now() < deadline) {
    const until = performance.now() + config.refreshMs;
    while (!connected && performance.now() < until) await sleep(100);
    if (connected) break;
    // Replace the agent before libjuice gives up on it, keeping its identity.
    const old = pc;
    old.close();
    let made;
    for (let attempt = 0; attempt < 20 && !made; attempt++) {
      try {
        made = await makeConnection(c.sdp, { iceUfrag: ufrag, icePwd: pwd });
      } catch (err) {
        emit({ type: 'progress', t: since(), event: { type: 'rebind-retry', message: String(err) } });
        await sleep(50);
      }
    }
    if (!made) break;
    pc = made;
    const sdp = pc.localDescription().sdp;
    n++;
    emit({
      type: 'refresh',
      n,
      t: since(),
      same: candidates(sdp) === first && sdp.includes(`a=ice-ufrag:${ufrag}`) && sdp.match(/^a=fingerprint:.*$/m)[0] === answer.match(/^a=fingerprint:.*$/m)[0],
    });
  }
  if (!connected) emit({ type: 'failed', t: since(), code: 'SESSION_FAILED', message: 'no connection' });
});
await finished;
try {
  pc?.close();
} catch {
  /* closed */
}
cleanup();
process.exit(0);
