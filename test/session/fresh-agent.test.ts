/**
 * The offerer takes the answer on a fresh connection with the offer's
 * identity (Session.acceptAnswer): same ICE credentials, certificate and UDP
 * port, so the callee's checks and its NAT's filter see nothing new. Both
 * peers in this process, traffic on 127.0.0.1 only.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type IceConfig, type SessionProgress, Session, shutdownSessions } from '../../src/session/index.js';

/** The built module (`npm test` builds first), run in a child process. */
const INHERITED = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/session/inherited.js');

const ice: IceConfig = { iceServers: [], bindAddress: '127.0.0.1' };
afterAll(() => shutdownSessions());

function hostPort(sdp: string): number {
  return Number(/^a=candidate:\S+ \d+ UDP \d+ 127\.0\.0\.1 (\d+) typ host/m.exec(sdp)?.[1]);
}

async function callWith(prepare: () => void | Promise<void> = () => undefined) {
  const fresh: Array<Extract<SessionProgress, { type: 'fresh-agent' }>> = [];
  const { session: alice, sdp: offer } = await Session.createOffer({ ice, onProgress: (e) => e.type === 'fresh-agent' && fresh.push(e) });
  const { session: bob, sdp: answer } = await Session.acceptOffer(offer, { ice });
  await prepare();
  alice.acceptAnswer(answer);
  const [a, b] = await Promise.all([alice.connected({ timeoutMs: 20_000 }), bob.connected({ timeoutMs: 20_000 })]);
  const got = new Promise((r) => b.channel.onMessage(r));
  await a.channel.send('via the fresh connection');
  expect(await got).toBe('via the fresh connection');
  return { alice, bob, offer, fresh, pair: a.pair };
}

describe("the offerer's fresh connection for the answer", () => {
  it('keeps the port of the offer: the connection that takes the answer uses the port the offer named', async () => {
    const { alice, bob, offer, fresh, pair } = await callWith();
    expect(fresh).toHaveLength(1);
    expect(fresh[0]!.samePort).toBe(true);
    expect(pair.local).toContain(`127.0.0.1:${hostPort(offer)}`);
    alice.close();
    bob.close();
  });

  it('a child process started during the call holds a copy of the offer\'s socket: the answer is taken on another port and the call connects', async () => {
    let child: ReturnType<typeof spawn> | undefined;
    try {
      const { alice, bob, offer, fresh, pair } = await callWith(() => {
        // libjuice's sockets are not close-on-exec: a child inherits them (as ffmpeg or a hook would).
        child = spawn('sleep', ['60'], { stdio: 'ignore' });
      });
      expect(fresh[0]!.samePort).toBe(false);
      expect(pair.local).not.toContain(`127.0.0.1:${hostPort(offer)}`);
      alice.close();
      bob.close();
    } finally {
      child?.kill('SIGKILL');
    }
  });

  it('a session process closes the UDP sockets it inherited before anything else', async () => {
    const { session: alice, sdp: offer } = await Session.createOffer({ ice });
    const port = hostPort(offer);
    // A child that closes what it inherited, then reports whether the port is free to it.
    const script = `
      import { closeInheritedUdpSockets } from ${JSON.stringify(INHERITED)};
      const n = closeInheritedUdpSockets();
      process.stdout.write(String(n));
      setTimeout(() => process.exit(0), 60_000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      for (let i = 0; i < 200 && out === ''; i++) await new Promise((r) => setTimeout(r, 50));
      expect(Number(out)).toBeGreaterThanOrEqual(1);
      alice.close();
      // With the child's copy closed, alice's close releases the port although the child lives on.
      let free = false;
      for (let i = 0; i < 100 && !free; i++) {
        free = await new Promise<boolean>((resolve) => {
          const s = createSocket('udp4');
          s.once('error', () => resolve(false));
          s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
        });
        if (!free) await new Promise((r) => setTimeout(r, 50));
      }
      expect(free).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
