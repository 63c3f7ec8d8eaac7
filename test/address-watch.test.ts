/**
 * Addresses change (a new DHCP lease, a dial-up link): the agent notices
 * without busy polling and tells the contacts that asked for it; their
 * presence shows the new address.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers, isRoot } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { runCli, waitFor, ROOT, type Peer, aliceAndHitoshi, type Pair } from './harness/peers.js';
import { agentOf } from './harness/agents.js';
import type { DetectedAddress } from '../src/address/interfaces.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;

const addr = (ip: string): DetectedAddress => ({ ip, family: ip.includes(':') ? 6 : 4, interface: 'eth0', scope: 'documentation', meaning: '', source: 'interface' });

let pair: Pair | undefined;
beforeAll(async () => {
  ensureMailServers();
  pair = await aliceAndHitoshi('addrwatch', () => startMailStack({ users: ['alice', 'hitoshi'] }));
  ({ stack, dir, alice, hitoshi } = pair);
}, 120_000);

afterAll(async () => {
  await pair?.stop();
});

describe("alice's address changes", () => {
  it('her agent announces it to hitoshi, whose presence for her updates; a call afterwards connects', async () => {
    let current = [addr('203.0.113.10')];
    const a = await agentOf(alice, { addressWatch: { read: () => current, monitor: null, fallbackMs: 200, debounceMs: 10 } });
    const h = await agentOf(hitoshi, { onIncoming: async (call) => void (await call.ended) });
    try {
      current = [addr('203.0.113.77'), addr('2001:db8::77')];
      const changed = await waitFor('change noticed', () => a.events.find((e) => e.type === 'address-changed'));
      expect(changed).toMatchObject({ addresses: ['203.0.113.77', '2001:db8::77'], announcedTo: [hitoshi.email] });
      await waitFor('announce arrives', () => h.events.some((e) => e.type === 'message' && e.message.kind === 'announce'), 30_000);
      const list = JSON.parse((await runCli(['--config', hitoshi.configFile, '--json', 'contacts'])).stdout) as { email: string; presence?: { addresses: { ip: string }[]; updated: string } }[];
      const her = list.find((c) => c.email === alice.email)!;
      expect(her.presence?.addresses.map((x) => x.ip)).toEqual(['203.0.113.77', '2001:db8::77']);
      const shown = await runCli(['--config', hitoshi.configFile, 'contacts']);
      expect(shown.stdout).toMatch(/203\.0\.113\.77 \[2001:db8::77\] \(valid, \d+s ago\)/);
      const call = await a.agent.call('hitoshi');
      call.hangup();
      expect(await call.ended).toBe('closed');
    } finally {
      await a.agent.stop();
      await h.agent.stop();
    }
  });
});

describe('the kernel says when addresses change (netlink, no polling)', () => {
  it('an address added in a network namespace is noticed by `ip monitor`', async () => {
    if (!isRoot()) throw new Error('this test needs root (network namespaces); run npm test as root, as CI does');
    const ns = `pdw${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      const script = path.join(dir, 'watch.mjs');
      await fs.writeFile(
        script,
        `import { watchAddresses } from ${JSON.stringify(path.join(ROOT, 'dist/address/watch.js'))};
const ac = new AbortController();
const w = watchAddresses({ signal: ac.signal, debounceMs: 100, fallbackMs: 3600000, onChange: (now) => { console.log('CHANGE ' + now.map((a) => a.ip).join(',')); ac.abort(); } });
console.log('MODE ' + w.mode);
setTimeout(() => ac.abort(), 20000);
`,
      );
      const child = spawn('ip', ['netns', 'exec', ns, process.execPath, script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      await waitFor('watcher started', () => out.includes('MODE'), 10_000);
      expect(out).toContain('MODE netlink');
      await new Promise((r) => setTimeout(r, 300));
      execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
      execFileSync('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', '192.0.2.55/32', 'dev', 'lo']);
      await waitFor('change reported', () => out.includes('CHANGE'), 10_000);
      expect(out).toMatch(/CHANGE .*192\.0\.2\.55/);
      child.kill();
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });
});
