/**
 * The chat that goes on by mail when a call finds no path at all (issue 14,
 * item 2): no direct path, no relay (or not even through it). Pure: no I/O.
 *
 * How the two sides agree they are in it: every mail of the chat is a
 * signed (and, with the peer's key, encrypted) `message` whose `callId` is
 * the id of the call that failed and whose `purpose` says what it is:
 *
 *   mail-chat-open  "no direct path: the chat goes on by mail"; each side
 *                   sends one when it falls back (its own call failed, or
 *                   the peer's open arrived for the call it was answering)
 *   mail-chat       chat lines in `text` (one mail may carry several,
 *                   newline-separated), or one small file in `attachment`
 *   mail-chat-end   the sender left the chat (/quit, Ctrl-D, Ctrl-C)
 *
 * Not the `hangup` kind: the caller whose connection failed already mails a
 * `hangup` for the call (agent/caller.ts), at the very moment the chat by
 * mail begins; the chat's own end is a kind of mail of its own.
 *
 * The call id is random and travelled only inside the offer (encrypted);
 * `from` is checked against the signing key before anything here sees the
 * mail. A side shows such a mail in its chat only while it is in the
 * fallback chat of that very call with that very peer; otherwise it stays
 * a message (`peerdial messages`), like any other.
 */
import { LIMITS } from './limits.js';
import type { PeerdialMessage } from './message.js';
import { sanitizeText } from './sanitize.js';

export const MAIL_CHAT = { open: 'mail-chat-open', line: 'mail-chat', end: 'mail-chat-end' } as const;

/** `[call] mail_fallback_max_kib` when it is not set: files below this go by mail. */
export const DEFAULT_MAIL_FALLBACK_KIB = 256;
/** The largest value it may have: what a `message` attachment may carry at all. */
export const MAX_MAIL_FALLBACK_KIB = Math.floor(LIMITS.voicemailBytes / 1024);
/** How long a chat mail is kept for delivery: after that it is stale, even as a message. */
export const MAIL_CHAT_TTL_SECONDS = 86_400;
/** The longest chat line that is sent (a paste longer than this is refused, not cut). */
export const MAIL_CHAT_LINE_CHARS = 4096;
/** Lines of one mail shown in the chat; the rest are counted, and kept in `peerdial messages`. */
export const MAIL_CHAT_LINES_SHOWN = 40;

export type MailChatItem =
  | { type: 'open' }
  | { type: 'lines'; lines: string[]; hidden: number }
  | { type: 'file'; name: string; contentType: string; data: Buffer; lines: string[] }
  | { type: 'end' };

/** The fallback chat a side is in: the failed call and the peer's address. */
export interface MailChatCall {
  callId: string;
  peer: string;
}

/**
 * What a verified mail means to the fallback chat `chat`; undefined when it
 * is not part of it (another call, another sender, another kind). Text is
 * made safe for a terminal here (controls and bidi tricks become visible
 * escapes), one entry per line.
 */
export function readMailChat(msg: PeerdialMessage, chat: MailChatCall): MailChatItem | undefined {
  if (msg.kind !== 'message' || msg.callId !== chat.callId || msg.from !== chat.peer.toLowerCase()) return undefined;
  switch (msg.purpose) {
    case MAIL_CHAT.open:
      return { type: 'open' };
    case MAIL_CHAT.end:
      return { type: 'end' };
    case MAIL_CHAT.line: {
      const { lines, hidden } = chatLines(msg.text ?? '');
      if (msg.attachment) {
        const a = msg.attachment;
        return { type: 'file', name: sanitizeText(a.filename, { max: 128 }), contentType: a.contentType, data: Buffer.from(a.data, 'base64'), lines };
      }
      return { type: 'lines', lines, hidden };
    }
    default:
      return undefined;
  }
}

/** The lines of a chat mail's text, safe for a terminal; at most MAIL_CHAT_LINES_SHOWN, the rest counted. */
export function chatLines(text: string): { lines: string[]; hidden: number } {
  const all = text.split(/\r\n|\r|\n/);
  while (all.length > 0 && all.at(-1) === '') all.pop();
  const lines = all.slice(0, MAIL_CHAT_LINES_SHOWN).map((l) => sanitizeText(l, { max: MAIL_CHAT_LINE_CHARS + 16, tabs: true }));
  return { lines, hidden: Math.max(0, all.length - MAIL_CHAT_LINES_SHOWN) };
}

/** The file name a chat file travels under: what a `message` attachment may be called (wire/validate.ts). */
export function mailChatFileName(base: string): string {
  // the last part of a path only
  let name = (base.split(/[\\/]/).pop() ?? '').replace(/[^A-Za-z0-9._ -]/g, '_').replace(/^[.\s]+/, '').trim().slice(0, 128).trim();
  // never a name the receiver's download folder refuses: no "..", no trailing dot
  name = name.replace(/\.{2,}/g, '.').replace(/\.+$/, '');
  return name.length > 0 ? name : 'file';
}

/** The effective file size limit, in bytes, of `[call] mail_fallback_max_kib`. */
export function mailFallbackMaxBytes(kib: number | undefined): number {
  const k = kib === undefined ? DEFAULT_MAIL_FALLBACK_KIB : Math.max(0, Math.min(MAX_MAIL_FALLBACK_KIB, Math.floor(kib)));
  return k * 1024;
}

/** Can a file of `bytes` go by mail under `maxBytes`? The refusal says what to do instead. */
export function checkMailChatFile(name: string, bytes: number, maxBytes: number): { ok: true } | { ok: false; message: string } {
  if (bytes < maxBytes) return { ok: true };
  const kib = (n: number) => `${Math.ceil(n / 1024)} KiB`;
  return {
    ok: false,
    message:
      maxBytes === 0
        ? `${name} was not sent: files do not go by mail here ([call] mail_fallback_max_kib = 0).`
        : `${name} is ${kib(bytes)}: too big to go by mail (only files under ${kib(maxBytes)}, [call] mail_fallback_max_kib). Nothing was sent; send it when a direct call works (peerdial send), or set a relay ([ice] turn).`,
  };
}

/** What a line typed into the fallback chat asks for. */
export type ChatInput = { type: 'text'; text: string } | { type: 'send'; path: string } | { type: 'quit' } | { type: 'help' } | { type: 'empty' } | { type: 'unknown'; command: string };

/** `/send FILE`, `/quit`, `/help`; `//...` is a line that starts with one `/`. */
export function parseChatInput(line: string): ChatInput {
  const text = line.replace(/\r$/, '');
  if (text.trim() === '') return { type: 'empty' };
  if (text.startsWith('//')) return { type: 'text', text: text.slice(1) };
  if (!text.startsWith('/')) return { type: 'text', text };
  const [command = '', ...rest] = text.slice(1).split(' ');
  const arg = rest.join(' ').trim();
  if (command === 'quit' || command === 'exit' || command === 'bye') return { type: 'quit' };
  if (command === 'help') return { type: 'help' };
  if (command === 'send' && arg) return { type: 'send', path: arg };
  return { type: 'unknown', command: sanitizeText(command, { max: 40 }) };
}

/** The one line that says why the chat now goes by mail. */
export function fallbackNotice(peer: string, maxBytes: number, relaySet: boolean): string {
  const why = relaySet ? `no path between you and ${peer}, not even through your relay ([ice] turn)` : `no direct path between you and ${peer}, and no relay set (see \`[ice] turn\`)`;
  const files = maxBytes > 0 ? `chat lines and files under ${Math.round(maxBytes / 1024)} KiB (/send FILE)` : 'chat lines (files do not go by mail: [call] mail_fallback_max_kib = 0)';
  return `${why}: ${files} now travel by mail, slower. /quit ends the chat.`;
}
