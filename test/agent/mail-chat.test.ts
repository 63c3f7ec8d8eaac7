/**
 * The chat by mail (agent/mail-chat.ts, mail-chat-flow.ts) against an
 * account whose outbox is a list and a clock the test turns: how lines are
 * gathered into mails, what a flooding peer gets shown, where a file lands,
 * and how the chat ends.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Account } from '../../src/agent/account.js';
import { MailChat, type MailChatEvent } from '../../src/agent/mail-chat.js';
import { IN_BURST, IN_REFILL_MS, OUT_BURST, OUT_REFILL_MS, IncomingGate, OutgoingLines, TokenBucket } from '../../src/agent/mail-chat-flow.js';
import type { PeerdialMessage } from '../../src/wire/message.js';
import { MAIL_CHAT } from '../../src/wire/mail-chat.js';
import { tempDir, waitFor } from '../harness/peers.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('rates', () => {
  it('a token bucket gives its burst at once, then one token per refill time', () => {
    const b = new TokenBucket(3, 1000, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.waitMs(0)).toBe(1000);
    expect(b.take(999)).toBe(false);
    expect(b.take(1000)).toBe(true);
  });

  it('lines typed faster than mails may go are gathered into the next mail', () => {
    const out = new OutgoingLines(0);
    const mails: string[] = [];
    for (let i = 0; i < OUT_BURST; i++) {
      out.push(`quick ${i}`);
      mails.push(out.next(0).text!);
    }
    // the burst is spent: the next lines wait, together
    out.push('a');
    out.push('b');
    out.push('c');
    const wait = out.next(0);
    expect(wait).toEqual({ waitMs: OUT_REFILL_MS });
    expect(out.next(OUT_REFILL_MS)).toEqual({ text: 'a\nb\nc' });
    expect(mails).toEqual(Array.from({ length: OUT_BURST }, (_, i) => `quick ${i}`));
    expect(out.next(OUT_REFILL_MS)).toEqual({});
  });

  it('a paste bigger than one mail becomes several mails, none over the text limit', () => {
    const out = new OutgoingLines(0, 100);
    for (let i = 0; i < 50; i++) out.push(`line number ${String(i).padStart(3, '0')}`);
    const texts = out.drain();
    expect(texts.every((t) => t.length <= 100)).toBe(true);
    expect(texts.join('\n').split('\n')).toHaveLength(50);
    expect(texts.length).toBeLessThan(50);
  });

  it('a flooding peer: the burst is shown, the rest counted, the count said once room is back', () => {
    const gate = new IncomingGate(0);
    const shown = Array.from({ length: IN_BURST + 30 }, () => gate.admit(0).show).filter(Boolean).length;
    expect(shown).toBe(IN_BURST);
    expect(gate.admit(IN_REFILL_MS)).toEqual({ show: true, dropped: 30 });
    expect(gate.admit(IN_REFILL_MS)).toEqual({ show: false, dropped: 0 });
  });
});

describe('MailChat', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('mail-chat-unit');
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const CALL_ID = 'c'.repeat(22);
  let nonce = 0;
  function fromPeer(extra: Partial<PeerdialMessage>): PeerdialMessage {
    return {
      v: 1,
      kind: 'message',
      from: 'hitoshi@example.jp',
      to: 'alice@example.org',
      callId: CALL_ID,
      created: new Date().toISOString(),
      expires: new Date(Date.now() + 86_400_000).toISOString(),
      nonce: `n${nonce++}`.padEnd(22, 'x'),
      addresses: [],
      purpose: MAIL_CHAT.line,
      ...extra,
    };
  }

  function chatWith(opts: { maxFileBytes?: number; now?: () => number } = {}) {
    const queued: Array<Record<string, unknown>> = [];
    const events: MailChatEvent[] = [];
    let pokes = 0;
    const account = { queue: async (m: Record<string, unknown>) => void queued.push(m) } as unknown as Account;
    const chat = new MailChat({
      account,
      callId: CALL_ID,
      peer: 'hitoshi@example.jp',
      poke: () => pokes++,
      maxFileBytes: opts.maxFileBytes ?? 64 * 1024,
      downloadDir: path.join(dir, `dl-${nonce++}`),
      on: (e) => events.push(e),
      ...(opts.now ? { now: opts.now } : {}),
    });
    return { chat, queued, events, pokes: () => pokes };
  }

  it('opens, says lines, and leaves with every mail tied to the call', async () => {
    const t = chatWith({ now: () => 0 });
    await t.chat.open();
    expect(t.chat.say('hello').ok).toBe(true);
    expect(t.chat.say('x'.repeat(5000))).toMatchObject({ ok: false, message: expect.stringContaining('at most 4096') });
    await t.chat.quit();
    expect(t.queued.map((m) => [m.kind, m.purpose, m.text, m.callId, m.to])).toEqual([
      ['message', MAIL_CHAT.open, 'No direct path for our call: the chat goes on by mail.', CALL_ID, 'hitoshi@example.jp'],
      ['message', MAIL_CHAT.line, 'hello', CALL_ID, 'hitoshi@example.jp'],
      ['message', MAIL_CHAT.end, 'left the chat', CALL_ID, 'hitoshi@example.jp'],
    ]);
    expect(t.pokes()).toBe(3);
    expect(await t.chat.ended).toBe('quit');
    // nothing goes after the end
    expect(t.chat.say('too late').ok).toBe(false);
  });

  it('a line typed with terminal controls goes with them made visible (the peer would refuse raw controls)', async () => {
    const t = chatWith({ now: () => 0 });
    t.chat.say('look \x1b[31mred\x07');
    await t.chat.quit();
    expect(t.queued[0]!.text).toBe('look \\x1b[31mred\\x07');
  });

  it("the peer's lines and file are shown; mails of other calls or senders are not taken", async () => {
    const t = chatWith();
    expect(t.chat.handle(fromPeer({ purpose: MAIL_CHAT.open, text: 'hi' }))).toBe(true);
    expect(t.chat.handle(fromPeer({ text: 'one\ntwo' }))).toBe(true);
    expect(t.chat.handle(fromPeer({ text: 'other call', callId: 'd'.repeat(22) }))).toBe(false);
    expect(t.chat.handle(fromPeer({ text: 'stranger', from: 'mallory@example.net' }))).toBe(false);
    const data = randomBytes(20_000);
    t.chat.handle(fromPeer({ text: '(file)', attachment: { filename: 'photo.jpg', contentType: 'image/jpeg', data: data.toString('base64') } }));
    // and a second file of that name does not replace the first
    t.chat.handle(fromPeer({ text: '(file)', attachment: { filename: 'photo.jpg', contentType: 'image/jpeg', data: data.toString('base64') } }));
    await waitFor('both files saved', () => t.events.filter((e) => e.type === 'file').length === 2, 60_000);
    const files = t.events.filter((e): e is Extract<MailChatEvent, { type: 'file' }> => e.type === 'file');
    expect(files.map((f) => [path.basename(f.path), f.bytes, f.sha256])).toEqual([
      ['photo.jpg', 20_000, sha256(data)],
      ['photo (1).jpg', 20_000, sha256(data)],
    ]);
    for (const f of files) {
      expect(sha256(await fs.readFile(f.path))).toBe(sha256(data));
      expect((await fs.stat(f.path)).mode & 0o777).toBe(0o600);
    }
    expect(t.events.filter((e) => e.type === 'line').map((e) => (e as { text: string }).text)).toEqual(['one', 'two']);
    expect(t.events[0]).toEqual({ type: 'peer-open' });
    t.chat.handle(fromPeer({ purpose: MAIL_CHAT.end, text: 'left the chat' }));
    expect(await t.chat.ended).toBe('peer-left');
    expect(t.events.at(-1)).toEqual({ type: 'peer-left' });
  });

  it('a file over this side\'s limit is not saved here', async () => {
    const t = chatWith({ maxFileBytes: 1024 });
    t.chat.handle(fromPeer({ text: '(file)', attachment: { filename: 'big.bin', contentType: 'application/octet-stream', data: randomBytes(4096).toString('base64') } }));
    await waitFor('the refusal', () => t.events.some((e) => e.type === 'file-failed'), 60_000);
    expect(t.events.find((e) => e.type === 'file-failed')).toMatchObject({ name: 'big.bin', reason: expect.stringContaining("over this side's limit") });
  });

  it('a file at or over the limit is refused before anything is queued; under it, it goes whole', async () => {
    const t = chatWith({ maxFileBytes: 64 * 1024 });
    const big = path.join(dir, 'big.bin');
    const small = path.join(dir, 'small file.bin');
    const smallData = randomBytes(10_000);
    await fs.writeFile(big, randomBytes(100 * 1024));
    await fs.writeFile(small, smallData);
    const refused = await t.chat.sendFile(big);
    expect(refused).toMatchObject({ ok: false, message: expect.stringContaining('big.bin is 100 KiB: too big to go by mail (only files under 64 KiB') });
    expect(t.queued).toEqual([]);
    const sent = await t.chat.sendFile(small);
    expect(sent).toEqual({ ok: true, name: 'small file.bin', bytes: 10_000, sha256: sha256(smallData) });
    const att = t.queued[0]!.attachment as { filename: string; data: string };
    expect(att.filename).toBe('small file.bin');
    expect(sha256(Buffer.from(att.data, 'base64'))).toBe(sha256(smallData));
    expect(await t.chat.sendFile(path.join(dir, 'missing'))).toMatchObject({ ok: false, message: 'missing: no such file. Nothing was sent.' });
  });
});
