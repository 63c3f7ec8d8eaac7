// Both peers of a loopback call in a namespace of their own, where the only
// DNS server is a stub in this process: run by test/session/no-dns.test.ts as
// `unshare --net --mount` with /etc/resolv.conf bound to "nameserver
// 127.0.0.1". Uses the compiled library (npm run build).
//
// 1. The stub answers every A query with 127.0.0.1 and records the name.
// 2. A probe lookup (getaddrinfo, as libjuice resolves names) must reach it:
//    proof that a lookup would be seen.
// 3. hitoshi gets alice's offer with hostname candidates pointing at a decoy
//    UDP socket: once with only those (must fail), once with alice's own
//    candidate too (must connect).
// Prints one JSON line: { probe, queries, decoy, refused, connected }.
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';

const { Session, shutdownSessions } = await import('../../dist/session/index.js');

const queries = [];
const stub = createSocket('udp4');
stub.on('message', (msg, rinfo) => {
  // header (12 bytes), then the question: labels, type, class
  const labels = [];
  let i = 12;
  while (i < msg.length && msg[i] !== 0) {
    labels.push(msg.subarray(i + 1, i + 1 + msg[i]).toString('latin1'));
    i += msg[i] + 1;
  }
  const name = labels.join('.');
  const qtype = msg.readUInt16BE(i + 1);
  queries.push(name);
  const question = msg.subarray(12, i + 5);
  const header = Buffer.from(msg.subarray(0, 12));
  header.writeUInt16BE(0x8180, 2); // response, recursion available, no error
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(qtype === 1 ? 1 : 0, 6);
  header.writeUInt16BE(0, 8);
  header.writeUInt16BE(0, 10);
  const answer = qtype === 1 ? Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]) : Buffer.alloc(0);
  stub.send(Buffer.concat([header, question, answer]), rinfo.port, rinfo.address);
});
await new Promise((r) => stub.bind(53, '127.0.0.1', r));

const probe = (await lookup('probe.peerdial.test', { family: 4 })).address;

const decoy = createSocket('udp4');
let decoyPackets = 0;
decoy.on('message', () => decoyPackets++);
await new Promise((r) => decoy.bind(0, '127.0.0.1', r));
const port = decoy.address().port;

const ice = { iceServers: [], bindAddress: '127.0.0.1' };
const hostile = [
  `a=candidate:1 1 UDP 2130706431 decoy.peerdial.test ${port} typ host`,
  `a=candidate:2 1 UDP 2130706430 alice-decoy.local ${port} typ host`,
];
function withCandidates(sdp, keepOwn) {
  const lines = sdp.split('\r\n');
  const own = lines.filter((l) => l.startsWith('a=candidate:'));
  const rest = lines.filter((l) => !l.startsWith('a=candidate:'));
  rest.splice(rest.findIndex((l) => l.startsWith('a=mid:')) + 1, 0, ...hostile, ...(keepOwn ? own : []));
  return rest.join('\r\n');
}

let refused = '';
{
  const { session: alice, sdp } = await Session.createOffer({ ice });
  try {
    await Session.acceptOffer(withCandidates(sdp, false), { ice });
  } catch (err) {
    refused = err.message;
  }
  alice.close('done');
}

let connected = false;
{
  const { session: alice, sdp } = await Session.createOffer({ ice });
  const { session: hitoshi, sdp: answer } = await Session.acceptOffer(withCandidates(sdp, true), { ice });
  alice.acceptAnswer(answer);
  await Promise.all([alice.connected({ timeoutMs: 20_000 }), hitoshi.connected({ timeoutMs: 20_000 })]);
  connected = true;
  alice.close('done');
  hitoshi.close('done');
}

shutdownSessions();
stub.close();
decoy.close();
process.stdout.write(`${JSON.stringify({ probe, queries, decoy: decoyPackets, refused, connected })}\n`);
