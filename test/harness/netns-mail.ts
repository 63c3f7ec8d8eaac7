/**
 * The real mail stack (mail-stack.ts, on the root namespace's loopback)
 * reachable from a site of a network made by netns.ts, at the same
 * 127.0.0.1 ports (so the server certificate and the peers' configs are
 * the ones every other mail test uses): netns-mail-bridge.mjs listens in
 * the site, this process joins its Unix sockets to the stack's ports.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import net from 'node:net';
import path from 'node:path';
import type { MailStack } from './mail-stack.js';
import type { Network, Site } from './netns.js';

export interface MailBridge {
  close(): Promise<void>;
}

/** Bridges the stack's IMAP and SMTP ports into `site`; `dir` holds the Unix sockets (keep its path short). */
export function bridgeMail(net_: Network, site: Site, stack: MailStack, dir: string): Promise<MailBridge> {
  return bridgePorts((argv) => net_.spawnInNs(site.hostNs, argv), site.name, [stack.imapPort, stack.smtpPort], dir);
}

/**
 * Bridges loopback `ports` of the root namespace into a namespace:
 * `spawnIn` starts node with the given argv inside it (cwd: the project).
 */
export async function bridgePorts(spawnIn: (argv: string[]) => ChildProcess, label: string, ports: number[], dir: string): Promise<MailBridge> {
  const servers: net.Server[] = [];
  const open = new Set<net.Socket>();
  const forward: Array<{ port: number; socket: string }> = [];
  for (const port of ports) {
    const socket = path.join(dir, `${label}-${port}.sock`);
    const server = net.createServer((c) => {
      const t = net.connect(port, '127.0.0.1');
      open.add(c);
      open.add(t);
      c.pipe(t);
      t.pipe(c);
      const done = () => {
        c.destroy();
        t.destroy();
        open.delete(c);
        open.delete(t);
      };
      for (const s of [c, t]) {
        s.on('error', done);
        s.on('close', done);
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, resolve);
    });
    servers.push(server);
    forward.push({ port, socket });
  }
  const child = spawnIn(['test/harness/netns-mail-bridge.mjs', JSON.stringify({ forward })]);
  const stderr: string[] = [];
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString('utf8')));
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => l.includes('"ready"') && resolve());
    child.once('exit', (code) => reject(new Error(`the mail bridge in ${label} exited (${code}): ${stderr.join('')}`)));
  });
  return {
    close: async () => {
      child.stdin!.end();
      for (const s of open) s.destroy();
      for (const s of servers) await new Promise((r) => s.close(r));
    },
  };
}
