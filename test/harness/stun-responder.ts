/** A minimal STUN server on 127.0.0.1: answers binding requests with XOR-MAPPED-ADDRESS. */
import { createSocket, type Socket } from 'node:dgram';

export async function stunServer(): Promise<{ socket: Socket; port: number }> {
  const socket = createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    if (msg.length < 20 || msg.readUInt16BE(0) !== 0x0001) return;
    const res = Buffer.alloc(32);
    res.writeUInt16BE(0x0101, 0);
    res.writeUInt16BE(12, 2);
    msg.copy(res, 4, 4, 20); // cookie + transaction id
    res.writeUInt16BE(0x0020, 20);
    res.writeUInt16BE(8, 22);
    res.writeUInt8(0x01, 25);
    res.writeUInt16BE(rinfo.port ^ 0x2112, 26);
    const ip = rinfo.address.split('.').reduce((n, p) => (n << 8) + Number(p), 0) >>> 0;
    res.writeUInt32BE((ip ^ 0x2112a442) >>> 0, 28);
    socket.send(res, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  return { socket, port: socket.address().port };
}
