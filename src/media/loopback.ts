/** Ports on 127.0.0.1 that ffmpeg and ffplay talk to: a bound UDP socket, a free TCP port. */
import { type Socket as UdpSocket, createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/** A UDP socket bound to a free port on 127.0.0.1 (later errors ignored). */
export function bindUdp(): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      s.removeListener('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for a child to listen on). */
export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
