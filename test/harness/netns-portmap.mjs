// A router port mapping made from inside a site's host namespace, run by
// test/portmap.test.ts: `ip netns exec NS node test/harness/netns-portmap.mjs '<json>'`.
// Uses the compiled library (npm run build). JSON lines out, commands in.
//
// argv[2]: { method, port, timeoutMs?, ttlSeconds?, gateway? }
//   -> {type:'listening', port}            a UDP socket on 0.0.0.0:port
//   -> {type:'mapped', mapping, active}    mapUdpPort's result, activeMappings().length
//   -> {type:'packet', data, from}         every datagram that reaches the port
//   <- {cmd:'unmap'}    -> {type:'unmapped', active, ms}
//   <- {cmd:'unmapAll'} -> {type:'unmappedAll', removed, failed, active, ms}
//   <- {cmd:'close'} (or end of stdin): exit 0
//   -> {type:'failed', code, message, hint} on any error
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { activeMappings, mapUdpPort, mappingInfo, unmapAll } from '../../dist/address/portmap.js';

const config = JSON.parse(process.argv[2] ?? '{}');
const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const fail = (err) => emit({ type: 'failed', code: err?.code ?? 'ERROR', message: String(err?.message ?? err), hint: err?.hint });

const socket = createSocket('udp4');
socket.on('message', (msg, rinfo) => emit({ type: 'packet', data: msg.toString('utf8'), from: `${rinfo.address}:${rinfo.port}` }));
await new Promise((resolve) => socket.bind(config.port, '0.0.0.0', resolve));
emit({ type: 'listening', port: socket.address().port });

let mapping;
try {
  const opts = { internalPort: config.port, method: config.method, timeoutMs: config.timeoutMs ?? 5000 };
  if (config.ttlSeconds) opts.ttlSeconds = config.ttlSeconds;
  if (config.gateway) opts.gateway = config.gateway;
  mapping = await mapUdpPort(opts);
  emit({ type: 'mapped', mapping: mappingInfo(mapping), active: activeMappings().length });
} catch (err) {
  fail(err);
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const c = JSON.parse(line);
  try {
    if (c.cmd === 'unmap') {
      const t0 = Date.now();
      await mapping.unmap();
      emit({ type: 'unmapped', active: activeMappings().length, ms: Date.now() - t0 });
    } else if (c.cmd === 'unmapAll') {
      const t0 = Date.now();
      const r = await unmapAll({ timeoutMs: 3000 });
      emit({ type: 'unmappedAll', removed: r.removed.length, failed: r.failed.map((f) => f.error), active: activeMappings().length, ms: Date.now() - t0 });
    } else if (c.cmd === 'close') break;
  } catch (err) {
    fail(err);
  }
}
socket.close();
process.exit(0);
