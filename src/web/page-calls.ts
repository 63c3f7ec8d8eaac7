/**
 * The calls the web page carries: a chat answered from an open page (or
 * placed from it), with every line kept for the page to show, and a file
 * sent from the page as its own call (like `peerdial send`). The agent hands
 * connected incoming chats here while a page is open
 * (AgentOptions.carryElsewhere); the rest keeps its usual handling.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ActiveCall } from '../agent/phone-types.js';
import type { Channel } from '../session/types.js';
import { channelNamed } from '../agent/call-waits.js';
import { checkFileName, openCarrierChannel, runChat, sendFiles, settleChannel } from '../carriers/index.js';
import { PeerdialError } from '../errors.js';

export interface ChatLine {
  from: 'local' | 'remote' | 'note';
  text: string;
  at: string;
}

export interface PageCall {
  callId: string;
  peer: string;
  direction: 'in' | 'out';
  purpose: string;
  lines: ChatLine[];
  /** How it ended; absent while it goes on. */
  ended?: string;
}

/** Lines typed in the page, read by runChat; end() says bye. */
class LineQueue implements AsyncIterable<string> {
  private queued: string[] = [];
  private waiting?: (r: IteratorResult<string>) => void;
  private done = false;

  push(line: string): void {
    if (this.done) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w({ value: line, done: false });
    } else this.queued.push(line);
  }

  end(): void {
    this.done = true;
    this.waiting?.({ value: undefined, done: true });
    this.waiting = undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<string> {
    return {
      next: () => {
        const line = this.queued.shift();
        if (line !== undefined) return Promise.resolve({ value: line, done: false });
        if (this.done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => (this.waiting = r));
      },
    };
  }
}

/** How many finished calls the page still shows. */
const KEEP_ENDED = 20;

export class PageCalls {
  private readonly calls = new Map<string, PageCall & { input?: LineQueue; hangup?: () => void; endSaid?: boolean; endDetail?: string }>();

  /** `changed` runs after every change the page should see. */
  constructor(private readonly changed: () => void) {}

  list(): PageCall[] {
    return [...this.calls.values()].map(({ input: _i, hangup: _h, endSaid: _s, endDetail: _d, ...c }) => ({ ...c, lines: [...c.lines] }));
  }

  /** Carries a connected chat until it ends: lines both ways, kept for the page. */
  async carryChat(call: ActiveCall, opened?: Channel): Promise<void> {
    const input = new LineQueue();
    const entry = { callId: call.callId, peer: call.peer, direction: call.direction, purpose: call.purpose, lines: [] as ChatLine[], input, hangup: () => call.hangup() };
    this.calls.set(call.callId, entry);
    this.changed();
    const note = (text: string) => {
      entry.lines.push({ from: 'note', text, at: new Date().toISOString() });
      this.changed();
    };
    try {
      const ch = opened ?? (await channelNamed(call, 'chat'));
      note(`connected to ${call.peer}`);
      const r = await runChat(ch, input, {
        onLine: (from, text) => {
          entry.lines.push({ from, text, at: new Date().toISOString() });
          this.changed();
        },
      });
      // without a bye in the chat, the call's end says who hung up (ended() below)
      if (r.ended !== 'closed') {
        note(r.ended === 'remote-bye' ? `${call.peer} hung up` : 'you hung up');
        (entry as { endSaid?: boolean }).endSaid = true;
      }
    } catch (err) {
      note(`chat failed: ${(err as Error).message}`);
    } finally {
      input.end();
      call.hangup();
      await call.ended;
      (entry as PageCall).ended = 'ended';
      delete (entry as { input?: LineQueue }).input;
      this.sayEnd(entry);
      this.forgetOld();
      this.changed();
    }
  }

  /** The agent's word on how a call ended ('by the caller', 'connection lost (...)'). */
  ended(callId: string, detail: string | undefined): void {
    const c = this.calls.get(callId);
    if (!c) return;
    c.endDetail = detail ?? '';
    if (c.ended) this.sayEnd(c);
  }

  private sayEnd(c: PageCall & { endSaid?: boolean; endDetail?: string }): void {
    if (c.endSaid || c.endDetail === undefined) return;
    c.endSaid = true;
    const peerSide = c.direction === 'in' ? 'by the caller' : 'by the callee';
    const text = c.endDetail === peerSide ? `${c.peer} hung up` : c.endDetail.startsWith('by the') ? 'you hung up' : `the call ended${c.endDetail ? ` (${c.endDetail})` : ''}`;
    c.lines.push({ from: 'note', text, at: new Date().toISOString() });
    this.changed();
  }

  /** A line typed in the page for a call it carries. */
  say(callId: string, text: string): void {
    const c = this.calls.get(callId);
    if (!c?.input) throw new PeerdialError('USAGE', `No chat ${callId} is open here.`);
    for (const line of text.split(/\r?\n/)) if (line) c.input.push(line);
  }

  /** Hangs up a call the page carries (says bye first). */
  hangup(callId: string): void {
    const c = this.calls.get(callId);
    if (!c?.input) throw new PeerdialError('USAGE', `No chat ${callId} is open here.`);
    c.input.end();
  }

  /** Sends one file over a connected `file` call, then hangs up; the temporary copy is removed. */
  async sendFile(call: ActiveCall, file: string): Promise<{ status: string; name: string; detail?: string }> {
    const entry: PageCall = { callId: call.callId, peer: call.peer, direction: 'out', purpose: 'file', lines: [] };
    this.calls.set(call.callId, entry);
    const note = (text: string) => {
      entry.lines.push({ from: 'note', text, at: new Date().toISOString() });
      this.changed();
    };
    try {
      note(`sending ${path.basename(file)} to ${call.peer}...`);
      const { channel } = await openCarrierChannel(call, 'file');
      const [sent] = await sendFiles(channel, [file]);
      await settleChannel(channel);
      const r = sent!.status === 'sent'
        ? { status: 'sent', name: sent!.name, detail: `${sent!.size} bytes${sent!.savedAs && sent!.savedAs !== sent!.name ? `, saved as "${sent!.savedAs}"` : ''}` }
        : { status: 'refused', name: sent!.name, detail: sent!.reason };
      note(`${r.status} ${r.name}: ${r.detail}`);
      return r;
    } finally {
      call.hangup();
      await call.ended;
      entry.ended = 'ended';
      this.forgetOld();
      this.changed();
    }
  }

  private forgetOld(): void {
    const ended = [...this.calls.values()].filter((c) => c.ended);
    for (const c of ended.slice(0, Math.max(0, ended.length - KEEP_ENDED))) this.calls.delete(c.callId);
  }
}

/**
 * A file from the page, kept under its own name in a fresh private
 * directory until it is sent. The name is checked as a receiver would.
 */
export async function keepUpload(name: string, body: AsyncIterable<Buffer>, maxBytes: number): Promise<{ file: string; remove: () => Promise<void> }> {
  const bad = checkFileName(name);
  if (bad !== undefined) throw new PeerdialError('USAGE', `Cannot send "${name}": ${bad}`, { hint: 'Rename the file first.' });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'peerdial-upload-'));
  const remove = () => fs.rm(dir, { recursive: true, force: true });
  const file = path.join(dir, name);
  try {
    const fh = await fs.open(file, 'wx', 0o600);
    let bytes = 0;
    try {
      for await (const chunk of body) {
        bytes += chunk.length;
        if (bytes > maxBytes) throw new PeerdialError('USAGE', `The file is larger than ${maxBytes} bytes; send it with peerdial send instead.`);
        await fh.write(chunk);
      }
    } finally {
      await fh.close();
    }
    return { file, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}
