/**
 * `peerdial call hitoshi carol` in a terminal, through the real Postfix +
 * Dovecot: alice types lines and `/send FILE`, sees hitoshi's and carol's
 * lines with their names; when she leaves (Ctrl-D), hitoshi and carol stay
 * connected and still talk. More than six members is refused before
 * anything starts.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from '../harness/system.js';
import { startMailStack, type MailStack } from '../harness/mail-stack.js';
import { BIN, introduce, makePeer, runCli, tempDir, waitFor, type Peer } from '../harness/peers.js';
import { agentOf } from '../harness/agents.js';
import type { GroupCall, GroupEvent } from '../../src/agent/group.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
let carol: Peer;

const MAIL_WAIT = 180_000;

beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice', 'hitoshi', 'carol'] });
  dir = await tempDir('group-cli');
  alice = await makePeer(stack, 'alice', dir, { ringSeconds: 120 });
  hitoshi = await makePeer(stack, 'hitoshi', dir, { answer: 'auto-answer', ringSeconds: 120 });
  carol = await makePeer(stack, 'carol', dir, { answer: 'auto-answer', ringSeconds: 120 });
  await introduce(alice, hitoshi, carol);
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function memberAgent(peer: Peer) {
  const m: { group?: GroupCall; events: GroupEvent[] } = { events: [] };
  const r = await agentOf(peer, {
    onGroup: (g) => {
      m.group = g;
      g.on((e) => m.events.push(e));
    },
  });
  return { ...r, m };
}

const lines = (events: GroupEvent[]) => events.flatMap((e) => (e.type === 'line' ? [`${e.from}: ${e.text}`] : []));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('peerdial call hitoshi carol', () => {
  it('more than six members is refused before anybody is called', async () => {
    const r = await runCli(['call', 'b@x.test', 'c@x.test', 'd@x.test', 'e@x.test', 'f@x.test', 'g@x.test', '--config', alice.configFile]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('A group call has at most 6 members, you included; this one would have 7. [LIMIT_EXCEEDED]');
  });

  it('alice chats and sends a file to both; when she leaves, hitoshi and carol go on', async () => {
    const h = await memberAgent(hitoshi);
    const c = await memberAgent(carol);
    const child = spawn(process.execPath, [BIN, 'call', 'hitoshi', 'carol', '--config', alice.configFile], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    try {
      await waitFor('alice sees both join', () => stderr.includes('hitoshi joined (direct)') && stderr.includes('carol joined (direct)'), MAIL_WAIT, 200);
      await waitFor('hitoshi and carol connected to each other', () => h.m.group?.connected().includes(carol.email) && c.m.group?.connected().includes(hitoshi.email), MAIL_WAIT, 200);

      child.stdin.write('hello both\n');
      await waitFor('both got alice\'s line', () => lines(h.m.events).includes(`${alice.email}: hello both`) && lines(c.m.events).includes(`${alice.email}: hello both`), MAIL_WAIT, 100);
      await h.m.group!.say('hi alice');
      await c.m.group!.say('hello from carol');
      await waitFor('alice sees both lines with their names', () => stdout.includes('hitoshi: hi alice\n') && stdout.includes('carol: hello from carol\n'), MAIL_WAIT, 100);

      const file = path.join(dir, 'notes.bin');
      const data = randomBytes(512 * 1024 + 3);
      await fs.writeFile(file, data);
      child.stdin.write(`/send ${file}\n`);
      for (const m of [h.m, c.m]) {
        const got = await waitFor('the file arrived', () => m.events.find((e): e is Extract<GroupEvent, { type: 'file' }> => e.type === 'file'), MAIL_WAIT, 100);
        expect(got).toMatchObject({ from: alice.email, name: 'notes.bin', status: 'saved' });
        expect(sha256(await fs.readFile(got.path!))).toBe(sha256(data));
      }
      await waitFor('alice is told it went to both', () => stderr.includes(`${file} sent to hitoshi (SHA-256 ${sha256(data)})`) && stderr.includes(`${file} sent to carol (SHA-256 ${sha256(data)})`), MAIL_WAIT, 100);

      // Ctrl-D: alice leaves; the command ends, the others stay
      child.stdin.end();
      expect(await exited).toBe(0);
      expect(stderr).toContain('left the group');
      await waitFor('hitoshi and carol saw alice leave', () => [h.m, c.m].every((m) => m.events.some((e) => e.type === 'left' && e.peer === alice.email)), MAIL_WAIT, 100);
      expect(h.m.group!.connected()).toEqual([carol.email]);
      expect(await h.m.group!.say('just us now')).toEqual([carol.email]);
      await waitFor('carol got hitoshi\'s line', () => lines(c.m.events).includes(`${hitoshi.email}: just us now`), MAIL_WAIT, 100);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await h.agent.stop();
      await c.agent.stop();
    }
  }, 600_000);
});
