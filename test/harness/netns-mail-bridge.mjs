// The mail stack (Dovecot + Postfix on the root namespace's loopback) seen
// from inside a site's host namespace, where peerdial runs: listens on
// 127.0.0.1:PORT in this namespace and joins every connection to a Unix
// socket made by the test process (test/harness/netns-mail.ts; browser.ts uses it too), which
// joins it to 127.0.0.1:PORT in the root namespace. A Unix socket path is
// the same file in every network namespace; no interface, address or
// route is added anywhere, and the sites' own traffic is untouched.
//
// argv[2]: { forward: [{ port, socket }] }  -> {"type":"ready"} once listening
import net from 'node:net';

const { forward } = JSON.parse(process.argv[2] ?? '{}');
let ready = 0;
for (const { port, socket } of forward) {
  const server = net.createServer((c) => {
    const u = net.connect(socket);
    c.pipe(u);
    u.pipe(c);
    const done = () => {
      c.destroy();
      u.destroy();
    };
    c.on('error', done);
    u.on('error', done);
    c.on('close', done);
    u.on('close', done);
  });
  server.listen(port, '127.0.0.1', () => {
    if (++ready === forward.length) process.stdout.write(`${JSON.stringify({ type: 'ready' })}\n`);
  });
}
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
