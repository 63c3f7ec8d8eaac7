/**
 * The terminal side of the chat by mail (agent/mail-chat.ts): when a chat
 * call finds no path, `peerdial call` and `peerdial listen` say once why
 * and keep the chat open; lines and small files go by mail, the peer's
 * lines are shown marked "(by mail)".
 */
import { createInterface } from 'node:readline';
import type { Agent, AgentEvent } from '../../agent/agent.js';
import { MailChat, type MailChatEvent } from '../../agent/mail-chat.js';
import type { PeerdialMessage } from '../../wire/message.js';
import { storedMessageId } from '../../store/messages.js';
import { MAIL_CHAT, fallbackNotice, mailFallbackMaxBytes, parseChatInput, type MailChatCall } from '../../wire/mail-chat.js';
import { safe, say, status, type GlobalOptions } from '../output.js';

/** Chat mails older than the chat (they came while it was being opened): kept a little, handed to it once it is open. */
const EARLY_MAILS = 64;

/**
 * Sits in the agent's events: hands the peer's chat mails to the chat by
 * mail once there is one, and remembers the calls this process saw, so
 * that a peer's `mail-chat-open` for one of them can open the chat here.
 */
export class MailChatRouter {
  private chat: MailChat | undefined;
  private early: PeerdialMessage[] = [];
  /** Calls of this process: call id -> peer (the only calls a chat by mail may continue). */
  readonly calls = new Map<string, string>();
  /** The last call this process placed (call id and peer). */
  lastOut: MailChatCall | undefined;
  /** Called when the peer's open arrives for one of our calls and no chat is open yet. */
  onPeerOpen: ((c: MailChatCall) => void) | undefined;

  onEvent = (e: AgentEvent): void => {
    if (e.type === 'state' && !this.calls.has(e.callId)) {
      this.calls.set(e.callId, e.peer.toLowerCase());
      if (e.direction === 'out') this.lastOut = { callId: e.callId, peer: e.peer.toLowerCase() };
    }
    if (e.type !== 'message' || e.message.kind !== 'message' || !e.message.purpose?.startsWith('mail-chat')) return;
    const m = e.message;
    if (this.calls.get(m.callId) !== m.from) return;
    if (this.chat?.handle(m)) return;
    if (this.chat) return;
    this.early.push(m);
    if (this.early.length > EARLY_MAILS) this.early.shift();
    if (m.purpose === MAIL_CHAT.open) this.onPeerOpen?.({ callId: m.callId, peer: m.from });
  };

  attach(chat: MailChat): void {
    this.chat = chat;
    const early = this.early;
    this.early = [];
    for (const m of early) chat.handle(m);
  }
}

const HELP = 'by mail: type a line and press Enter; /send FILE sends a small file; /quit (or Ctrl-D) ends the chat; //x sends a line starting with /x';

/** Runs the chat by mail of `call` in this terminal until /quit, Ctrl-D, Ctrl-C or the peer leaves. */
export async function chatByMail(g: GlobalOptions, agent: Agent, router: MailChatRouter, call: MailChatCall, opts: { downloadDir: string }): Promise<'quit' | 'peer-left'> {
  const account = agent.account;
  const maxBytes = mailFallbackMaxBytes(account.config.call?.mailFallbackMaxKib);
  const peer = safe(call.peer);
  status(g, fallbackNotice(peer, maxBytes, Boolean(account.config.ice.turn?.length)));
  const show = (e: MailChatEvent) => {
    switch (e.type) {
      case 'line':
        return say(`${peer} (by mail): ${e.text}`);
      case 'file':
        return say(`${peer} (by mail) sent ${safe(e.name)}: ${e.bytes} bytes, sha256 ${e.sha256}, saved as ${safe(e.path, 4096)}`);
      case 'file-failed':
        return status(g, `${peer} (by mail) sent ${safe(e.name)}, not saved: ${safe(e.reason)}`);
      case 'held-back':
        return status(g, `${e.count} more mails of ${peer} were not shown (too many too fast); see peerdial messages`);
      case 'hidden-lines':
        return status(g, `${e.count} more lines of that mail were not shown; see peerdial messages`);
      case 'peer-open':
        return status(g, `${peer} is in the chat by mail too`);
      case 'peer-left':
        return status(g, `${peer} left the chat (by mail)`);
      case 'queued':
        return status(g, `(${e.lines === 1 ? 'line' : `${e.lines} lines`} going by mail)`);
      case 'error':
        return status(g, `could not queue a mail: ${e.error.message}`);
    }
  };
  const marks: Promise<unknown>[] = [];
  const chat = new MailChat({ account, ...call, poke: () => agent.outbox.poke(), maxFileBytes: maxBytes, downloadDir: opts.downloadDir, on: show,
    // shown here: read (a mail held back stays unread in `peerdial messages`)
    shown: (m) => void marks.push(account.messages.markRead(storedMessageId(m)).catch(() => undefined)),
  });
  router.attach(chat);
  await chat.open();
  status(g, HELP);

  const rl = createInterface({ input: process.stdin, terminal: false });
  let work: Promise<unknown> = Promise.resolve();
  const leave = () => void (work = work.then(() => chat.quit()));
  rl.on('line', (line) => {
    const input = parseChatInput(line);
    work = work.then(async () => {
      switch (input.type) {
        case 'text': {
          const r = chat.say(input.text);
          if (!r.ok) status(g, r.message);
          return;
        }
        case 'send': {
          const r = await chat.sendFile(input.path);
          status(g, r.ok ? `sending ${r.name} by mail (${r.bytes} bytes, sha256 ${r.sha256})` : `REFUSED ${r.message}`);
          return;
        }
        case 'quit':
          return chat.quit();
        case 'help':
          return status(g, HELP);
        case 'unknown':
          return status(g, `unknown command /${input.command}; ${HELP}`);
        default:
          return;
      }
    });
  });
  rl.once('close', leave);
  const onSignal = () => leave();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const how = await chat.ended;
    await work;
    await Promise.all(marks);
    // what this side said last goes before the agent stops
    await agent.outbox.flush().catch(() => undefined);
    return how;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    rl.close();
  }
}
