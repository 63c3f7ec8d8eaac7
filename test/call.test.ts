/**
 * Calls on the real Postfix + Dovecot: alice calls hitoshi, whose agent
 * answers by policy; the offer and answer travel as mail, the session is
 * direct (loopback). Each scenario asserts the state sequence.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { introduce, makePeer, tempDir, waitFor, type Peer } from './harness/peers.js';
import { Agent, channelNamed, type AgentEvent } from '../src/agent/agent.js';
import type { ActiveCall } from '../src/agent/phone.js';
import { runChat } from '../src/carriers/chat.js';
import { sendFiles } from '../src/carriers/file.js';
import { isPeerdialError } from '../src/errors.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;

async function agentOf(peer: Peer, extra: Partial<ConstructorParameters<typeof Agent>[0]> = {}): Promise<{ agent: Agent; events: AgentEvent[] }> {
  const events: AgentEvent[] = [];
  const agent = new Agent({ account: await peer.open(), onEvent: (e) => events.push(e), ...extra });
  agent.start();
  await waitFor(`${peer.name}'s agent idling`, () => events.some((e) => e.type === 'idle'));
  return { agent, events };
}

function endedStates(events: AgentEvent[], direction: 'in' | 'out'): string[][] {
  return events.filter((e): e is Extract<AgentEvent, { type: 'ended' }> => e.type === 'ended' && e.direction === direction).map((e) => e.states);
}

beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice', 'hitoshi'] });
  dir = await tempDir('call');
  alice = await makePeer(stack, 'alice', dir, { ringSeconds: 20 });
  hitoshi = await makePeer(stack, 'hitoshi', dir, { answer: 'auto-answer', ringSeconds: 20 });
  await introduce(alice, hitoshi);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('alice calls hitoshi, whose agent answers automatically', () => {
  it('the channel opens directly over loopback and a chat line goes each way', async () => {
    const lines: string[] = [];
    const h = await agentOf(hitoshi, {
      onIncoming: async (call: ActiveCall) => {
        const ch = await channelNamed(call, 'chat');
        async function* reply() {
          yield 'hello alice, hitoshi here';
          await call.ended;
        }
        await runChat(ch, reply(), { onLine: (from, text) => from === 'remote' && lines.push(`hitoshi got: ${text}`) });
      },
    });
    const a = await agentOf(alice);
    try {
      const call = await a.agent.call('hitoshi', { purpose: 'chat' });
      expect(call.pair.local).toContain('127.0.0.1');
      expect(call.pair.remote).toContain('127.0.0.1');
      const ch = await call.session.openChannel('chat');
      const got: string[] = [];
      async function* say() {
        yield 'hi hitoshi, alice here';
        await waitFor('reply', () => got.length > 0);
      }
      const r = await runChat(ch, say(), { onLine: (from, text) => from === 'remote' && got.push(text) });
      expect(r.ended).toBe('local-bye');
      expect(got).toEqual(['hello alice, hitoshi here']);
      await waitFor('hitoshi got the line', () => lines.length > 0);
      expect(lines).toEqual(['hitoshi got: hi hitoshi, alice here']);
      call.hangup();
      expect(await call.ended).toBe('closed');
      await waitFor('hitoshi saw the hang-up', () => endedStates(h.events, 'in').length > 0);
      expect(endedStates(a.events, 'out')[0]).toEqual(['gathering', 'offer-queued', 'offer-sent', 'connecting', 'connected', 'closed']);
      expect(endedStates(h.events, 'in')[0]).toEqual(['offer-received', 'answering', 'answer-queued', 'connecting', 'connected', 'closed']);
    } finally {
      await a.agent.stop();
      await h.agent.stop();
    }
  });

  it('a file sent to hitoshi lands in his download folder, intact', async () => {
    const h = await agentOf(hitoshi);
    const a = await agentOf(alice);
    try {
      const file = path.join(dir, 'photo.bin');
      const data = randomBytes(3 * 1024 * 1024 + 17);
      await fs.writeFile(file, data);
      const call = await a.agent.call('hitoshi', { purpose: 'file' });
      const ch = await call.session.openChannel('file');
      const sent = await sendFiles(ch, [file]);
      expect(sent[0]).toMatchObject({ status: 'sent', resumedFrom: 0 });
      call.hangup();
      const saved = path.join(hitoshi.downloadDir, 'photo.bin');
      await waitFor('file saved', async () => (await fs.stat(saved).catch(() => undefined))?.size === data.length);
      expect(createHash('sha256').update(await fs.readFile(saved)).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    } finally {
      await a.agent.stop();
      await h.agent.stop();
    }
  });
});

describe('calls that do not connect', () => {
  it('hitoshi declines: alice hears "declined", both logs say so', async () => {
    const h = await agentOf(hitoshi, {});
    const acc = h.agent.account;
    await acc.contacts.update(alice.email, (c) => (c.answer = 'ring'));
    h.agent.phone; // ring, then decline from the "terminal"
    const a = await agentOf(alice);
    try {
      const ringing = waitFor('ringing', () => h.events.find((e): e is Extract<AgentEvent, { type: 'ringing' }> => e.type === 'ringing'));
      const calling = a.agent.call('hitoshi').catch((e) => e);
      (await ringing).call.decline('not now');
      const err = await calling;
      expect(isPeerdialError(err, 'CALL_DECLINED')).toBe(true);
      expect(endedStates(a.events, 'out')[0]).toEqual(['gathering', 'offer-queued', 'offer-sent', 'declined']);
      await waitFor('callee ended', () => endedStates(h.events, 'in').length > 0);
      expect(endedStates(h.events, 'in')[0]).toEqual(['offer-received', 'ringing', 'declined']);
    } finally {
      await acc.contacts.update(alice.email, (c) => delete c.answer);
      await a.agent.stop();
      await h.agent.stop();
    }
  });
});
