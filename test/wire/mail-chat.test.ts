/**
 * The chat by mail of a call that found no path (wire/mail-chat.ts): which
 * verified mails belong to it, what a terminal sees of hostile text, what a
 * file may be called and how big it may be, what a typed line asks for.
 */
import { describe, expect, it } from 'vitest';
import type { PeerdialMessage } from '../../src/wire/message.js';
import { validateMessage } from '../../src/wire/validate.js';
import {
  MAIL_CHAT,
  MAIL_CHAT_LINES_SHOWN,
  MAX_MAIL_FALLBACK_KIB,
  checkMailChatFile,
  fallbackNotice,
  mailChatFileName,
  mailFallbackMaxBytes,
  parseChatInput,
  readMailChat,
} from '../../src/wire/mail-chat.js';

const CALL = { callId: 'a'.repeat(22), peer: 'Hitoshi@Example.JP' };

function mail(extra: Partial<PeerdialMessage>): PeerdialMessage {
  return {
    v: 1,
    kind: 'message',
    from: 'hitoshi@example.jp',
    to: 'alice@example.org',
    callId: CALL.callId,
    created: '2026-12-01T22:00:00.000Z',
    expires: '2026-12-02T22:00:00.000Z',
    nonce: 'n'.repeat(22),
    addresses: [],
    purpose: MAIL_CHAT.line,
    text: 'hello',
    ...extra,
  };
}

describe('which mails belong to the chat by mail', () => {
  it('a chat line from the peer of that very call is read as lines', () => {
    expect(readMailChat(mail({ text: 'hello\nsecond line\n' }), CALL)).toEqual({ type: 'lines', lines: ['hello', 'second line'], hidden: 0 });
  });

  it('the open and the end of the peer are read as such', () => {
    expect(readMailChat(mail({ purpose: MAIL_CHAT.open }), CALL)).toEqual({ type: 'open' });
    expect(readMailChat(mail({ purpose: MAIL_CHAT.end }), CALL)).toEqual({ type: 'end' });
  });

  it('another call, another sender, another kind or no chat purpose: not part of it (it stays a message)', () => {
    expect(readMailChat(mail({ callId: 'b'.repeat(22) }), CALL)).toBeUndefined();
    expect(readMailChat(mail({ from: 'mallory@example.net' }), CALL)).toBeUndefined();
    expect(readMailChat(mail({ kind: 'hangup' }), CALL)).toBeUndefined();
    const plain = mail({});
    delete plain.purpose;
    expect(readMailChat(plain, CALL)).toBeUndefined();
    expect(readMailChat(mail({ purpose: 'mail-chat-something' }), CALL)).toBeUndefined();
  });

  it('terminal escapes and bidi overrides in a line reach the terminal as visible text', () => {
    const r = readMailChat(mail({ text: 'hi \x1b]0;owned\x07 \u202eevil\x9b2J' }), CALL);
    expect(r?.type).toBe('lines');
    const [line] = (r as { lines: string[] }).lines;
    expect(line).toBe('hi \\x1b]0;owned\\x07 \\u{202e}evil\\x9b2J');
    expect(line).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202e]/);
  });

  it('a mail of many lines shows the first ones and counts the rest', () => {
    const text = Array.from({ length: MAIL_CHAT_LINES_SHOWN + 7 }, (_, i) => `line ${i}`).join('\n');
    const r = readMailChat(mail({ text }), CALL) as { lines: string[]; hidden: number };
    expect(r.lines).toHaveLength(MAIL_CHAT_LINES_SHOWN);
    expect(r.lines[0]).toBe('line 0');
    expect(r.hidden).toBe(7);
  });

  it('a file comes with its bytes and a name safe to show', () => {
    const data = Buffer.from('some bytes');
    const r = readMailChat(mail({ text: '(file notes.txt)', attachment: { filename: 'notes.txt', contentType: 'application/octet-stream', data: data.toString('base64') } }), CALL);
    expect(r).toMatchObject({ type: 'file', name: 'notes.txt', lines: ['(file notes.txt)'] });
    expect((r as { data: Buffer }).data.equals(data)).toBe(true);
  });
});

describe('files by mail', () => {
  it('names are made what a message attachment may be called, and never a path', () => {
    for (const [input, out] of [
      ['report 2026.pdf', 'report 2026.pdf'],
      ['../../etc/passwd', 'passwd'],
      ['C:\\Users\\x\\notes.txt', 'notes.txt'],
      ['.bashrc', 'bashrc'],
      ['über\u202etxt.exe', '_ber_txt.exe'],
      ['...', 'file'],
      ['a..b', 'a.b'],
    ] as const) {
      const name = mailChatFileName(input);
      expect(name, input).toBe(out);
      // what the receiver's validator accepts
      const v = validateMessage(mail({ attachment: { filename: name, contentType: 'application/octet-stream', data: '' } }));
      expect(v.ok, `${input}: ${JSON.stringify(v)}`).toBe(true);
    }
    expect(mailChatFileName('x'.repeat(300))).toHaveLength(128);
  });

  it('the size limit: default 256 KiB, never above what a message carries, 0 sends none', () => {
    expect(mailFallbackMaxBytes(undefined)).toBe(256 * 1024);
    expect(mailFallbackMaxBytes(64)).toBe(64 * 1024);
    expect(mailFallbackMaxBytes(999_999)).toBe(MAX_MAIL_FALLBACK_KIB * 1024);
    expect(MAX_MAIL_FALLBACK_KIB).toBe(3072);
    expect(mailFallbackMaxBytes(0)).toBe(0);
  });

  it('a file under the limit goes; at or above it is refused with what to do', () => {
    expect(checkMailChatFile('a.bin', 64 * 1024 - 1, 64 * 1024)).toEqual({ ok: true });
    const r = checkMailChatFile('big.bin', 100 * 1024, 64 * 1024);
    expect(r.ok).toBe(false);
    expect((r as { message: string }).message).toBe(
      'big.bin is 100 KiB: too big to go by mail (only files under 64 KiB, [call] mail_fallback_max_kib). Nothing was sent; send it when a direct call works (peerdial send), or set a relay ([ice] turn).',
    );
    expect(checkMailChatFile('a.bin', 1, 0)).toMatchObject({ ok: false, message: expect.stringContaining('mail_fallback_max_kib = 0') });
  });
});

describe('what a typed line asks for', () => {
  it('commands, lines, and a line that starts with a slash', () => {
    expect(parseChatInput('hello')).toEqual({ type: 'text', text: 'hello' });
    expect(parseChatInput('/send my file.txt')).toEqual({ type: 'send', path: 'my file.txt' });
    expect(parseChatInput('/quit')).toEqual({ type: 'quit' });
    expect(parseChatInput('//send is a command')).toEqual({ type: 'text', text: '/send is a command' });
    expect(parseChatInput('   ')).toEqual({ type: 'empty' });
    expect(parseChatInput('/send')).toEqual({ type: 'unknown', command: 'send' });
    expect(parseChatInput('/x\x1b[2J')).toEqual({ type: 'unknown', command: 'x\\x1b[2J' });
  });
});

describe('the one line that says why', () => {
  it('names the peer, the missing relay and the file limit', () => {
    expect(fallbackNotice('hitoshi@example.jp', 256 * 1024, false)).toBe(
      'no direct path between you and hitoshi@example.jp, and no relay set (see `[ice] turn`): chat lines and files under 256 KiB (/send FILE) now travel by mail, slower. /quit ends the chat.',
    );
    expect(fallbackNotice('h@x.jp', 0, true)).toMatch(/^no path between you and h@x\.jp, not even through your relay/);
  });
});
