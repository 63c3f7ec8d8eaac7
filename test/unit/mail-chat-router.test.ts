/**
 * Which mails may open or feed the chat by mail of `peerdial listen` /
 * `peerdial call` (cli/run/mail-chat.ts): only the peer of a call this
 * process saw, for that call's id. Another sender who knows (or guesses)
 * the id, or a chat mail for a call this process never had, opens nothing.
 */
import { describe, expect, it } from 'vitest';
import { MailChatRouter } from '../../src/cli/run/mail-chat.js';
import type { PeerdialMessage } from '../../src/wire/message.js';
import type { MailChatCall } from '../../src/wire/mail-chat.js';

const CALL = 'k'.repeat(22);

function chatMail(from: string, callId: string, purpose = 'mail-chat-open'): { type: 'message'; message: PeerdialMessage } {
  return {
    type: 'message',
    message: { v: 1, kind: 'message', from, to: 'hitoshi@example.test', callId, created: '2026-12-01T22:00:00Z', expires: '2026-12-02T22:00:00Z', nonce: `${from}${callId}`.slice(0, 22), addresses: [], purpose, text: 'x' },
  };
}

describe('the chat by mail opens only for the peer of a call this process had', () => {
  it('the caller of a call seen here opens it; a stranger with the same id, or an unknown call, does not', () => {
    const router = new MailChatRouter();
    const opened: MailChatCall[] = [];
    router.onPeerOpen = (c) => opened.push(c);
    router.onEvent(chatMail('alice@example.test', CALL));
    expect(opened).toEqual([]);
    router.onEvent({ type: 'state', callId: CALL, direction: 'in', peer: 'Alice@Example.test', state: 'offer-received' });
    router.onEvent(chatMail('mallory@example.test', CALL));
    router.onEvent(chatMail('alice@example.test', 'z'.repeat(22)));
    expect(opened).toEqual([]);
    router.onEvent(chatMail('alice@example.test', CALL));
    expect(opened).toEqual([{ callId: CALL, peer: 'alice@example.test' }]);
  });

  it('the last call placed is the one a failed chat call continues', () => {
    const router = new MailChatRouter();
    router.onEvent({ type: 'state', callId: CALL, direction: 'out', peer: 'hitoshi@example.test', state: 'gathering' });
    router.onEvent({ type: 'state', callId: CALL, direction: 'out', peer: 'hitoshi@example.test', state: 'offer-queued' });
    expect(router.lastOut).toEqual({ callId: CALL, peer: 'hitoshi@example.test' });
  });
});
