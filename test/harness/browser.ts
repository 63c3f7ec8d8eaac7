/**
 * A real headless Chromium as one end of a call (issue 13), and a network
 * namespace for its media (root only).
 *
 * Chromium's WebRTC never gathers loopback addresses, and this machine's own
 * address must not be used by tests; so the browser runs in a network
 * namespace made here, with one veth pair inside it (198.18.77.1, the
 * benchmarking range, on v0; a default route so Chromium gathers it) and no
 * interface in the root namespace. The peerdial end of the media (a camera
 * node, `peerdial call`) runs in the same namespace, bound to 198.18.77.1,
 * and reaches the mail stack on the root namespace's loopback through a
 * bridge: in the namespace a small process listens on 127.0.0.1 at the
 * stack's IMAP and SMTP ports and passes each connection through a Unix
 * socket to this process, which connects it to the real port. Playwright
 * talks to Chromium over a pipe, so the page needs no network at all: it is
 * served by page.route() as http://localhost/ (a secure context, so
 * getUserMedia works).
 */
import { execFileSync, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT, type Peer } from './peers.js';
import { requireCommand } from './system.js';
import { bridgePorts, type MailBridge } from './netns-mail.js';
import { CHROMIUM_BASE_ARGS, chromiumPath } from './chromium.js';

export const BROWSER_ADDRESS = '198.18.77.1';

export interface BrowserNet {
  ns: string;
  /** Runs a command inside the namespace (argv for spawn). */
  inNs(argv: string[]): string[];
  /** Unix-socket bridges of the mail ports; close() stops them. */
  close(): Promise<void>;
}

/** The namespace, its veth pair, and the mail bridge to `ports` (the stack's IMAP and SMTP). */
export async function browserNet(dir: string, ports: number[]): Promise<BrowserNet> {
  requireCommand('ip', 'iproute2');
  const ns = `pdb${process.pid}`;
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
  ip('netns', 'add', ns);
  const bridges: MailBridge[] = [];
  const close = async () => {
    for (const b of bridges) await b.close();
    try {
      ip('netns', 'del', ns);
    } catch {
      // gone already
    }
  };
  process.once('exit', () => void close());
  try {
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
    ip('-n', ns, 'addr', 'add', `${BROWSER_ADDRESS}/24`, 'dev', 'v0');
    ip('-n', ns, 'link', 'set', 'v0', 'up');
    ip('-n', ns, 'link', 'set', 'v1', 'up');
    ip('-n', ns, 'route', 'add', 'default', 'via', '198.18.77.2', 'dev', 'v0');
    const bridge = await bridgePorts((argv) => spawn('ip', ['netns', 'exec', ns, process.execPath, ...argv], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] }), ns, ports, dir);
    bridges.push(bridge);
  } catch (err) {
    await close();
    throw err;
  }
  return { ns, inNs: (argv) => ['ip', 'netns', 'exec', ns, ...argv], close };
}

/** A test peer whose sessions bind to the namespace's address (it runs inside it). */
export async function bindInNamespace(peer: Peer): Promise<void> {
  const text = await fs.readFile(peer.configFile, 'utf8');
  const moved = text.replace(/bind_address = "127\.0\.0\.1"/, `bind_address = "${BROWSER_ADDRESS}"`);
  if (moved === text) throw new Error(`no bind_address in ${peer.configFile}`);
  await fs.writeFile(peer.configFile, moved);
}

/** Headless Chromium inside the namespace (a fresh profile: playwright makes one per launch), with fake camera and microphone; one page on http://localhost/. */
export async function launchTab(net: BrowserNet, dir: string): Promise<{ browser: Browser; page: Page }> {
  // Debian's chromium package, never a downloaded browser
  const wrapper = path.join(dir, 'chromium-in-ns.sh');
  await fs.writeFile(wrapper, `#!/bin/sh\nexec ip netns exec ${net.ns} ${chromiumPath()} "$@"\n`, { mode: 0o755 });
  const browser = await chromium.launch({
    executablePath: wrapper,
    args: [
      ...CHROMIUM_BASE_ARGS,
      // real addresses in the descriptions, not mDNS names peerdial cannot resolve
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      '--autoplay-policy=no-user-gesture-required',
    ],
    timeout: 120_000,
  });
  const page = await browser.newPage();
  await page.route('http://localhost/**', (r) => r.fulfill({ contentType: 'text/html', body: '<!doctype html><title>peerdial tab</title><body></body>' }));
  await page.goto('http://localhost/');
  return { browser, page };
}
