/**
 * A NAT-PMP (RFC 6886) "router" on 127.0.0.1:5351 (the protocol's fixed
 * port), for tests that must not talk to a real router: it stays silent,
 * refuses (result 2), or grants every mapping at the suggested port + `grantOffset` (1000)
 * with the external address 203.0.113.7. It records every request.
 */
import { createSocket, type Socket } from 'node:dgram';

export interface NatPmpRequest {
  op: number;
  internal?: number;
  suggested?: number;
  lifetime?: number;
}

export interface NatPmpResponder {
  mode: 'silent' | 'grant' | 'refuse';
  /** A granted mapping's external port is the suggested one plus this (default 1000). */
  grantOffset: number;
  requests: NatPmpRequest[];
  close(): Promise<void>;
}

export const FAKE_EXTERNAL_IP = '203.0.113.7';

export async function natPmpResponder(mode: NatPmpResponder['mode'] = 'grant'): Promise<NatPmpResponder> {
  const socket: Socket = createSocket('udp4');
  const state: NatPmpResponder = {
    mode,
    grantOffset: 1000,
    requests: [],
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
  socket.on('message', (msg, from) => {
    if (msg.length < 2 || msg[0] !== 0) return;
    const op = msg[1]!;
    state.requests.push(
      op === 0 || msg.length < 12 ? { op } : { op, internal: msg.readUInt16BE(4), suggested: msg.readUInt16BE(6), lifetime: msg.readUInt32BE(8) },
    );
    if (state.mode === 'silent') return;
    const result = state.mode === 'refuse' ? 2 : 0;
    if (op === 0) {
      const out = Buffer.alloc(12);
      out[1] = 128;
      out.writeUInt16BE(result, 2);
      out.writeUInt32BE(1234, 4);
      Buffer.from(FAKE_EXTERNAL_IP.split('.').map(Number)).copy(out, 8);
      socket.send(out, from.port, from.address);
    } else if ((op === 1 || op === 2) && msg.length >= 12) {
      const lifetime = msg.readUInt32BE(8);
      const out = Buffer.alloc(16);
      out[1] = 128 + op;
      out.writeUInt16BE(result, 2);
      out.writeUInt32BE(1234, 4);
      out.writeUInt16BE(msg.readUInt16BE(4), 8);
      out.writeUInt16BE(lifetime === 0 ? 0 : msg.readUInt16BE(6) + state.grantOffset, 10); // another port than asked
      out.writeUInt32BE(lifetime, 12);
      socket.send(out, from.port, from.address);
    }
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(5351, '127.0.0.1', () => resolve());
  });
  return state;
}
