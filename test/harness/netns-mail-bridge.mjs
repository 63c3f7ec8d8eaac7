// Inside a test's network namespace: listen on 127.0.0.1:PORT and pass each
// connection through the Unix socket SOCK to the test process, which
// connects it to the mail stack (test/harness/browser.ts). Args: SOCK=PORT...
import net from 'node:net';

let pending = process.argv.length - 2;
for (const arg of process.argv.slice(2)) {
  const eq = arg.lastIndexOf('=');
  const sock = arg.slice(0, eq);
  const port = Number(arg.slice(eq + 1));
  net
    .createServer((c) => {
      const up = net.connect(sock);
      c.pipe(up).pipe(c);
      c.on('error', () => up.destroy());
      up.on('error', () => c.destroy());
    })
    .listen(port, '127.0.0.1', () => {
      if (--pending === 0) console.log('ready');
    });
}
