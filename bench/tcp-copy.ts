/**
 * The baseline of figure 2: a plain TCP copy between two processes on
 * loopback.
 *
 *   node tcp-copy.js recv OUT      OUT: a file to write, or "-" to discard
 *   node tcp-copy.js send PORT SRC SRC: a file to read, or "mem:BYTES" (one buffer sent again and again)
 *
 * The receiver prints "port N" when listening and, at the end, one JSON
 * line {bytes, ms}: ms from the accepted connection to the last byte
 * written.
 *
 * With TCP_COPY_TLS_CERT and TCP_COPY_TLS_KEY (PEM files) set, the same
 * copy runs over TLS (the receiver is the server; the sender verifies the
 * self-signed certificate): what a direct TLS-over-TCP path for bulk data
 * would cost.
 */
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';

const [mode, a, b] = process.argv.slice(2);
const certFile = process.env.TCP_COPY_TLS_CERT;
const keyFile = process.env.TCP_COPY_TLS_KEY;
const useTls = Boolean(certFile && keyFile);

if (mode === 'recv') {
  const onSocket = (sock: net.Socket) => {
    server.close();
    const t0 = performance.now();
    let bytes = 0;
    sock.on('data', (d: Buffer) => (bytes += d.length));
    const finish = () => {
      process.stdout.write(JSON.stringify({ bytes, ms: performance.now() - t0 }) + '\n');
    };
    if (a === '-') {
      sock.resume();
      sock.on('end', finish);
    } else {
      const out = createWriteStream(a!);
      sock.pipe(out);
      out.on('finish', finish);
    }
  };
  const server: net.Server = useTls
    ? tls.createServer({ cert: readFileSync(certFile!), key: readFileSync(keyFile!) }, onSocket)
    : net.createServer(onSocket);
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`port ${(server.address() as net.AddressInfo).port}\n`);
  });
} else if (mode === 'send') {
  const opts = { host: '127.0.0.1', port: Number(a) };
  const sock: net.Socket = useTls
    ? tls.connect({ ...opts, ca: readFileSync(certFile!), servername: 'localhost' }, () => start())
    : net.connect(opts, () => start());
  const start = () => {
    if (b!.startsWith('mem:')) {
      let left = Number(b!.slice(4));
      const buf = randomBytes(1024 * 1024);
      const pump = () => {
        while (left > 0) {
          const part = left >= buf.length ? buf : buf.subarray(0, left);
          left -= part.length;
          if (!sock.write(part)) return void sock.once('drain', pump);
        }
        sock.end();
      };
      pump();
    } else {
      createReadStream(b!, { highWaterMark: 1024 * 1024 }).pipe(sock);
    }
  };
} else {
  process.stderr.write('usage: tcp-copy recv OUT | send PORT SRC\n');
  process.exitCode = 64;
}
