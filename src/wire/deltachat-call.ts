/**
 * Delta Chat's call dialect (core 2.57, `calls` module) mapped onto
 * peerdial's call messages, both ways. Pure: no I/O, no clock (dates come
 * in).
 *
 *   Delta Chat                                      peerdial
 *   Chat-Content: call, Chat-Webrtc-Room: SDP  <->  offer (purpose media when
 *     Chat-Webrtc-Has-Video-Initially: 0|1          the SDP has audio/video,
 *                                                   else chat)
 *   Chat-Content: call-accepted,               <->  answer
 *     Chat-Webrtc-Accepted: SDP
 *   Chat-Content: call-ended                   <->  decline, cancel, busy, hangup
 *                                                   (read as hangup: the phone
 *                                                   ends the call as its state
 *                                                   says, src/agent/phone.ts)
 *
 * Every answer and end names the offer by `In-Reply-To`. A call is
 * identified by its offer's Message-ID; peerdial's call id is the
 * Message-ID's local part when that is a plain word (peerdial's own
 * offers are `<CALLID@DOMAIN>`, Delta Chat's are `<UUID@HOST>`), else a
 * hash of it. Delta Chat lets a call ring RINGING_SECONDS (120 s) from the
 * offer's Date: the offer expires then.
 *
 * The SDP goes as it is: Delta Chat's core carries the call app's text
 * unchanged (base64 in an encoded word, deltachat-headers.ts does that).
 * Read tolerantly: a payload that is not SDP but base64 or URL-encoded SDP
 * (older call apps) is decoded.
 */
import { createHash } from 'node:crypto';
import type { ChatHeader } from './deltachat.js';
import { CHAT_CONTENT_HEADER } from './deltachat-headers.js';
import { headerOf, type DeltaChatMail } from './deltachat-parse.js';
import { LIMITS } from './limits.js';
import type { MessageKind, PeerdialMessage } from './message.js';

export const WEBRTC_ROOM_HEADER = 'Chat-Webrtc-Room';
export const WEBRTC_ACCEPTED_HEADER = 'Chat-Webrtc-Accepted';
export const WEBRTC_HAS_VIDEO_HEADER = 'Chat-Webrtc-Has-Video-Initially';

/** How long Delta Chat lets a call ring (core's RINGING_SECONDS). */
export const DELTACHAT_RING_SECONDS = 120;

export type CallSignal =
  | { signal: 'call'; messageId: string; sdp: string; hasVideo: boolean }
  | { signal: 'call-accepted'; offerMessageId: string; sdp: string }
  | { signal: 'call-ended'; offerMessageId: string };

export type CallSignalRead = { ok: true; call: CallSignal } | { ok: false; reason: 'not-a-call' | 'malformed'; detail: string };

/** The call kinds peerdial sends in Delta Chat's dialect (announce, message and the rest are not Delta Chat's business). */
export function isDeltaChatCallKind(kind: MessageKind): kind is 'offer' | 'answer' | 'decline' | 'cancel' | 'hangup' {
  return kind === 'offer' || kind === 'answer' || kind === 'decline' || kind === 'cancel' || kind === 'hangup';
}

/** A payload as SDP: as it is, or decoded from base64 or from URL encoding. Undefined when it is none of them. */
export function sdpOfPayload(payload: string): string | undefined {
  const t = payload.trim();
  if (t.length === 0 || t.length > LIMITS.sdpChars * 2) return undefined;
  const isSdp = (s: string) => s.startsWith('v=0') && s.length <= LIMITS.sdpChars;
  if (isSdp(t)) return t.endsWith('\n') ? t : `${t}\r\n`;
  if (/^v%3D0/i.test(t)) {
    try {
      const d = decodeURIComponent(t);
      if (isSdp(d)) return d;
    } catch {
      return undefined;
    }
  }
  if (/^[A-Za-z0-9+/=\s]+$/.test(t)) {
    const d = Buffer.from(t.replace(/\s+/g, ''), 'base64').toString('utf8');
    if (isSdp(d)) return d;
  }
  return undefined;
}

/** The Message-ID a threading header names (the first of In-Reply-To), with angle brackets. */
function firstId(value: string | undefined): string | undefined {
  return /<[^<>\s]+>/.exec(value ?? '')?.[0];
}

/** What a verified Delta Chat chat mail says about a call, if anything. */
export function readCallSignal(mail: DeltaChatMail): CallSignalRead {
  const content = headerOf(mail, CHAT_CONTENT_HEADER)?.trim().toLowerCase();
  if (content !== 'call' && content !== 'call-accepted' && content !== 'call-ended') {
    return { ok: false, reason: 'not-a-call', detail: content ? `a Delta Chat "${content}" message, no call` : 'a Delta Chat chat message, no call' };
  }
  if (content === 'call') {
    const sdp = sdpOfPayload(headerOf(mail, WEBRTC_ROOM_HEADER) ?? '');
    if (!sdp) return { ok: false, reason: 'malformed', detail: `a Delta Chat call whose ${WEBRTC_ROOM_HEADER} is no session description` };
    return { ok: true, call: { signal: 'call', messageId: mail.messageId, sdp, hasVideo: (headerOf(mail, WEBRTC_HAS_VIDEO_HEADER) ?? '').trim() === '1' } };
  }
  const offerMessageId = firstId(mail.inReplyTo) ?? firstId(mail.references[mail.references.length - 1]);
  if (!offerMessageId) return { ok: false, reason: 'malformed', detail: `a Delta Chat ${content} that names no call (no In-Reply-To)` };
  if (content === 'call-ended') return { ok: true, call: { signal: 'call-ended', offerMessageId } };
  const sdp = sdpOfPayload(headerOf(mail, WEBRTC_ACCEPTED_HEADER) ?? '');
  if (!sdp) return { ok: false, reason: 'malformed', detail: `a Delta Chat call-accepted whose ${WEBRTC_ACCEPTED_HEADER} is no session description` };
  return { ok: true, call: { signal: 'call-accepted', offerMessageId, sdp } };
}

/** peerdial's call id for the call whose offer has this Message-ID. */
export function callIdOfMessageId(messageId: string): string {
  const local = /^<?([^@<>\s]+)@/.exec(messageId.trim())?.[1];
  if (local && /^[A-Za-z0-9][A-Za-z0-9_-]{7,63}$/.test(local)) return local;
  return createHash('sha256').update(messageId.trim()).digest('base64url').slice(0, 16).replace(/^[-_]/, 'D');
}

/** The Message-ID of peerdial's offer for `callId` from `from`: its local part is the call id (callIdOfMessageId reads it back). */
export function offerMessageId(callId: string, from: string): string {
  return `<${callId}@${from.slice(from.lastIndexOf('@') + 1)}>`;
}

/**
 * Which media a description carries (audio, video; not only a data
 * channel): read by the caller with session/sdp (wire/ reads no SDP lines
 * itself: one SDP grammar, in session/sdp.ts).
 */
export type MediaOf = (sdp: string) => { audio: boolean; video: boolean };

/**
 * A call signal as the peerdial message the call machines take. The nonce
 * (replay protection) is the mail's Message-ID, hashed.
 */
export function callMessage(call: CallSignal, mail: Pick<DeltaChatMail, 'from' | 'to' | 'messageId' | 'date'>, self: string, now: Date, mediaOf: MediaOf): PeerdialMessage {
  const sent = mail.date && mail.date.getTime() <= now.getTime() ? mail.date : now;
  const nonce = createHash('sha256').update(`deltachat ${mail.messageId}`).digest('base64url').slice(0, 22);
  const base = { v: 1 as const, from: mail.from, to: self, created: sent.toISOString(), nonce, addresses: [] };
  if (call.signal === 'call') {
    const media = mediaOf(call.sdp);
    return {
      ...base,
      kind: 'offer',
      callId: callIdOfMessageId(call.messageId),
      expires: new Date(sent.getTime() + DELTACHAT_RING_SECONDS * 1000).toISOString(),
      sdp: call.sdp,
      purpose: media.audio || media.video ? 'media' : 'chat',
    };
  }
  // an answer or an end is good for as long as a call may last: a day
  const expires = new Date(now.getTime() + 86_400_000).toISOString();
  const callId = callIdOfMessageId(call.offerMessageId);
  if (call.signal === 'call-accepted') return { ...base, kind: 'answer', callId, expires, sdp: call.sdp };
  return { ...base, kind: 'hangup', callId, expires, text: 'call ended (Delta Chat)' };
}

/** The chat headers (and readable text) of a peerdial call message sent to a Delta Chat user. */
export function callSignalHeaders(m: Pick<PeerdialMessage, 'kind' | 'sdp'>, mediaOf: MediaOf): { headers: ChatHeader[]; text: string } {
  if (m.kind === 'offer') {
    if (!m.sdp) throw new Error('an offer to a Delta Chat user needs its SDP');
    const video = mediaOf(m.sdp).video;
    return {
      headers: [
        { name: CHAT_CONTENT_HEADER, value: 'call' },
        { name: WEBRTC_ROOM_HEADER, value: m.sdp, encoded: true },
        { name: WEBRTC_HAS_VIDEO_HEADER, value: video ? '1' : '0', encoded: true },
      ],
      text: video ? 'Outgoing video call' : 'Outgoing audio call',
    };
  }
  if (m.kind === 'answer') {
    if (!m.sdp) throw new Error('an answer to a Delta Chat user needs its SDP');
    return { headers: [{ name: CHAT_CONTENT_HEADER, value: 'call-accepted' }, { name: WEBRTC_ACCEPTED_HEADER, value: m.sdp, encoded: true }], text: '[Call accepted]' };
  }
  return { headers: [{ name: CHAT_CONTENT_HEADER, value: 'call-ended' }], text: '[Call ended]' };
}
