import { describe, expect, it } from 'vitest';
import { chatFrames, runChat, type ChatEnd } from '../../src/carriers/chat.js';
import { channelPair } from '../harness/memory-channel.js';

/** Lines typed by a person: push() a line, end() for Ctrl-D. */
function keyboard(): AsyncIterable<string> & { push: (line: string) => void; end: () => void } {
  const queue: Array<string | null> = [];
  let wake: (() => void) | undefined;
  return {
    push: (line) => { queue.push(line); wake?.(); },
    end: () => { queue.push(null); wake?.(); },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const item = queue.shift();
        if (item === null) return;
        if (item !== undefined) { yield item; continue; }
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    },
  };
}

/** Records the conversation as one event list, in order. */
function transcript() {
  const events: string[] = [];
  let ended: ChatEnd | undefined;
  return {
    events,
    ended: () => ended,
    opts: {
      onLine: (from: 'local' | 'remote', text: string) => events.push(`${from}: ${text}`),
      onClose: (how: ChatEnd) => { ended = how; events.push(`closed: ${how}`); },
    },
  };
}

describe('chat', () => {
  it('alice and bob exchange lines both ways, then alice hangs up and bob is told so over the channel', async () => {
    const [a, b] = channelPair();
    const aliceKeys = keyboard();
    const bobKeys = keyboard();
    const alice = transcript();
    const bob = transcript();
    // Bob answers every line he gets.
    const bobOpts = { ...bob.opts, onLine: (from: 'local' | 'remote', text: string) => { bob.opts.onLine(from, text); if (from === 'remote') bobKeys.push(`re: ${text}`); } };

    const aliceChat = runChat(a, aliceKeys, alice.opts);
    const bobChat = runChat(b, bobKeys, bobOpts);
    aliceKeys.push('hi bob');
    aliceKeys.push('ünïcödé 🎉 and a tab\there');
    await new Promise((r) => setTimeout(r, 20));
    aliceKeys.end();

    const [aliceResult, bobResult] = await Promise.all([aliceChat, bobChat]);
    expect(aliceResult).toEqual({ ended: 'local-bye', linesSent: 2, linesReceived: 2 });
    expect(bobResult).toEqual({ ended: 'remote-bye', linesSent: 2, linesReceived: 2 });
    expect(bob.events).toEqual([
      'remote: hi bob',
      'local: re: hi bob',
      'remote: ünïcödé 🎉 and a tab\there',
      'local: re: ünïcödé 🎉 and a tab\there',
      'closed: remote-bye',
    ]);
    expect(alice.events).toEqual([
      'local: hi bob',
      'local: ünïcödé 🎉 and a tab\there',
      'remote: re: hi bob',
      'remote: re: ünïcödé 🎉 and a tab\there',
      'closed: local-bye',
    ]);
  });

  it("a peer's terminal escape sequences are defused before they reach onLine", async () => {
    const [a, b] = channelPair();
    const bob = transcript();
    const bobChat = runChat(b, keyboard(), bob.opts);
    await a.send(JSON.stringify({ t: 'chat', text: 'clear\u001b[2J\u0007screen' }));
    await a.send('not json at all');
    await a.send(JSON.stringify({ t: 'bye' }));
    await bobChat;
    expect(bob.events).toEqual(['remote: clear\\x1b[2J\\x07screen', 'closed: remote-bye']);
  });

  it('the connection drops without a bye: the chat ends as closed', async () => {
    const [a, b] = channelPair();
    const bob = transcript();
    const bobChat = runChat(b, keyboard(), bob.opts);
    a.close();
    expect(await bobChat).toEqual({ ended: 'closed', linesSent: 0, linesReceived: 0 });
    expect(bob.ended()).toBe('closed');
  });

  it('a line longer than one message is split, and arrives whole in pieces', () => {
    const line = 'x'.repeat(1000) + '🎉'.repeat(300);
    const frames = chatFrames(line, 256);
    expect(frames.length).toBeGreaterThan(1);
    expect(frames.every((f) => Buffer.byteLength(f) <= 256)).toBe(true);
    expect(frames.map((f) => (JSON.parse(f) as { text: string }).text).join('')).toBe(line);
  });
});
