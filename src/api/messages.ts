/**
 * Messages and voicemail through mail: when a call is not answered, or no
 * direct path exists, a text or a recorded voice message travels as a
 * signed (and, once keys are known, encrypted) `message` mail.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PeerdialError } from '../errors.js';
import { requireMailAddress } from '../wire/address.js';
import type { Account } from '../agent/account.js';
import { connectControl } from '../agent/control.js';
import { flushOutbox } from './mail.js';
import { LIMITS } from '../wire/headers.js';

const AUDIO_TYPES: Record<string, string> = {
  '.opus': 'audio/ogg',
  '.ogg': 'audio/ogg',
  '.oga': 'audio/ogg',
  '.m4a': 'audio/mp4',
  '.mp3': 'audio/mpeg',
  '.wav': 'audio/wav',
  '.webm': 'audio/webm',
};

export interface LeaveMessageOptions {
  text?: string;
  /** A recorded voice message (Opus/Ogg keeps it small). */
  audioFile?: string;
  /** The call this message follows (unanswered call). */
  callId?: string;
  /** How long the message is kept for delivery, seconds (default 30 days). */
  ttlSeconds?: number;
}

export async function leaveMessage(account: Account, who: string, opts: LeaveMessageOptions): Promise<{ to: string; messageId: string; sent: boolean }> {
  if (!opts.text && !opts.audioFile) throw new PeerdialError('USAGE', 'A message needs a text or an audio file.', { hint: 'peerdial message hitoshi "call me back"  or  --audio note.opus' });
  const contact = await account.contacts.resolve(who);
  const to = contact?.email ?? (who.includes('@') ? requireMailAddress(who) : (await account.contacts.require(who)).email);
  let attachment;
  if (opts.audioFile) {
    const data = await fs.readFile(opts.audioFile);
    const ext = path.extname(opts.audioFile).toLowerCase();
    const contentType = AUDIO_TYPES[ext];
    if (!contentType) throw new PeerdialError('USAGE', `${opts.audioFile}: not an audio file peerdial sends (${Object.keys(AUDIO_TYPES).join(' ')}).`);
    if (data.length > LIMITS.voicemailBytes) {
      throw new PeerdialError('LIMIT_EXCEEDED', `${opts.audioFile} is ${data.length} bytes; a voice message may be at most ${LIMITS.voicemailBytes} bytes (LIMITS.voicemailBytes). Nothing was sent.`, {
        hint: 'Record it shorter or as Opus: ffmpeg -i in.wav -c:a libopus -b:a 24k note.opus',
      });
    }
    attachment = { filename: `voicemail${ext}`, contentType, data: data.toString('base64') };
  }
  const q = await account.queue({
    kind: 'message',
    to,
    ...(opts.callId ? { callId: opts.callId } : {}),
    ...(opts.text ? { text: opts.text } : {}),
    ...(attachment ? { attachment } : {}),
    ttlSeconds: opts.ttlSeconds ?? 30 * 86_400,
  });
  // a running agent owns the outbox; otherwise send it now
  const agent = await connectControl(account.stateDir);
  if (agent) {
    agent.poke();
    agent.close();
    return { to, messageId: q.messageId, sent: false };
  }
  const r = await flushOutbox(account);
  return { to, messageId: q.messageId, sent: r.sent > 0 };
}
