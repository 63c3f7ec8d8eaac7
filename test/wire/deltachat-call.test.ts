/**
 * Delta Chat's call dialect mapped onto peerdial's call messages
 * (wire/deltachat-call.ts): alice (peerdial) and bob (Delta Chat) place,
 * accept and end calls; every mail is composed and parsed for real
 * (signed, encrypted) and read back as the message the call machines take.
 * (That Delta Chat itself reads and writes these, test/deltachat-call.test.ts
 * shows with a real core.)
 */
import { mediaSummary } from '../../src/session/sdp-browser.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity, type Identity } from '../../src/wire/identity.js';
import { composeDeltaChatMail, type ChatHeader } from '../../src/wire/deltachat.js';
import { parseDeltaChatMail, type DeltaChatMail } from '../../src/wire/deltachat-parse.js';
import { callIdOfMessageId, callMessage, callSignalHeaders, offerMessageId, readCallSignal, sdpOfPayload, DELTACHAT_RING_SECONDS } from '../../src/wire/deltachat-call.js';

let alice: Identity;
let bob: Identity;
const now = new Date();
const SDP = ['v=0', 'o=rtc 1 0 IN IP4 127.0.0.1', 's=-', 't=0 0', 'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=mid:0', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'a=mid:1', ''].join('\r\n');
const DATA_ONLY = ['v=0', 'o=rtc 1 0 IN IP4 127.0.0.1', 's=-', 't=0 0', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'a=mid:0', ''].join('\r\n');

beforeAll(async () => {
  const keyDate = { date: new Date(now.getTime() - 3600_000) };
  [alice, bob] = await Promise.all([generateIdentity('alice@example.org', 'Alice', keyDate), generateIdentity('bob@example.org', 'Bob', keyDate)]);
});

/** A mail from `from` to `to` with these chat headers, as `to` reads it. */
async function mail(from: Identity, to: Identity, headers: ChatHeader[], opts: { inReplyTo?: string; messageId?: string; date?: Date } = {}): Promise<DeltaChatMail> {
  const built = await composeDeltaChatMail({ sender: from, to: to.email, recipientKey: to.publicKey, date: opts.date ?? now, headers, text: 'call', ...opts });
  const r = await parseDeltaChatMail(built.raw, { self: to, now, knownKey: (a) => (a === from.email ? from.publicKey : undefined) });
  if (!r.ok) throw new Error(`${r.reason}: ${r.detail}`);
  return r.mail;
}

describe("Delta Chat's call dialect", () => {
  it("bob's Delta Chat call reaches alice as an offer with his SDP, a video call, ringing 120 s from its date; her answer and end name his offer", async () => {
    const sent = new Date(Math.floor(now.getTime() / 1000) * 1000 - 10_000); // a mail's Date has whole seconds
    const offer = await mail(bob, alice, [
      { name: 'Chat-Content', value: 'call' },
      { name: 'Chat-Webrtc-Room', value: SDP, encoded: true },
      { name: 'Chat-Webrtc-Has-Video-Initially', value: '1', encoded: true },
    ], { messageId: '<f990524c-8808-4189-b709-716cf94f0ef5@localhost>', date: sent });
    const read = readCallSignal(offer);
    expect(read).toEqual({ ok: true, call: { signal: 'call', messageId: '<f990524c-8808-4189-b709-716cf94f0ef5@localhost>', sdp: SDP, hasVideo: true } });
    const m = callMessage(read.ok ? read.call : (undefined as never), offer, alice.email, now, mediaSummary);
    expect(m).toMatchObject({ kind: 'offer', from: bob.email, to: alice.email, callId: 'f990524c-8808-4189-b709-716cf94f0ef5', sdp: SDP, purpose: 'media' });
    expect(Date.parse(m.expires) - sent.getTime()).toBe(DELTACHAT_RING_SECONDS * 1000);

    // alice's answer and her end of the call, in Delta Chat's words, tied to bob's offer
    const answer = callSignalHeaders({ kind: 'answer', sdp: DATA_ONLY }, mediaSummary);
    expect(answer.headers.map((h) => h.name)).toEqual(['Chat-Content', 'Chat-Webrtc-Accepted']);
    const accepted = await mail(alice, bob, answer.headers, { inReplyTo: offer.messageId });
    expect(readCallSignal(accepted)).toEqual({ ok: true, call: { signal: 'call-accepted', offerMessageId: offer.messageId, sdp: DATA_ONLY } });
    for (const kind of ['decline', 'cancel', 'hangup'] as const) {
      const ended = await mail(alice, bob, callSignalHeaders({ kind }, mediaSummary).headers, { inReplyTo: offer.messageId });
      expect(readCallSignal(ended)).toEqual({ ok: true, call: { signal: 'call-ended', offerMessageId: offer.messageId } });
    }
  });

  it("alice's offer to bob carries its call id in its Message-ID; bob's call-accepted and call-ended come back as answer and hang-up of that call", async () => {
    const callId = 'Zq9AbCdEfGhIjKlM';
    const id = offerMessageId(callId, alice.email);
    expect(id).toBe(`<${callId}@example.org>`);
    expect(callIdOfMessageId(id)).toBe(callId);
    const offer = callSignalHeaders({ kind: 'offer', sdp: DATA_ONLY }, mediaSummary);
    expect(offer.headers).toContainEqual({ name: 'Chat-Webrtc-Has-Video-Initially', value: '0', encoded: true });
    const accepted = await mail(bob, alice, [{ name: 'Chat-Content', value: 'call-accepted' }, { name: 'Chat-Webrtc-Accepted', value: SDP, encoded: true }], { inReplyTo: id });
    const a = readCallSignal(accepted);
    expect(a.ok && callMessage(a.call, accepted, alice.email, now, mediaSummary)).toMatchObject({ kind: 'answer', callId, sdp: SDP });
    const ended = await mail(bob, alice, [{ name: 'Chat-Content', value: 'call-ended' }], { inReplyTo: id });
    const e = readCallSignal(ended);
    expect(e.ok && callMessage(e.call, ended, alice.email, now, mediaSummary)).toMatchObject({ kind: 'hangup', callId });
  });

  it('a chat message is no call; a call without SDP, or an answer that names no offer, is malformed', async () => {
    expect(readCallSignal(await mail(bob, alice, []))).toMatchObject({ ok: false, reason: 'not-a-call' });
    expect(readCallSignal(await mail(bob, alice, [{ name: 'Chat-Content', value: 'call' }, { name: 'Chat-Webrtc-Room', value: 'not-an-sdp: arbitrary text', encoded: true }]))).toMatchObject({ ok: false, reason: 'malformed' });
    expect(readCallSignal(await mail(bob, alice, [{ name: 'Chat-Content', value: 'call-ended' }]))).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('an SDP comes as it is, or base64 or URL encoded (older call apps); anything else is none', () => {
    expect(sdpOfPayload(SDP)).toBe(SDP);
    expect(sdpOfPayload(Buffer.from(SDP).toString('base64'))).toBe(SDP);
    expect(sdpOfPayload(encodeURIComponent(SDP))).toBe(SDP);
    expect(sdpOfPayload('hello')).toBeUndefined();
    expect(sdpOfPayload('')).toBeUndefined();
  });

  it("a Message-ID whose local part is no plain word still gives a call id, the same every time and a shell's plain word", () => {
    const a = callIdOfMessageId('<a.b+c@example.org>');
    expect(a).toBe(callIdOfMessageId('<a.b+c@example.org>'));
    expect(a).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{15}$/);
    expect(a).not.toBe(callIdOfMessageId('<a.b+d@example.org>'));
  });
});
