/**
 * The `update` of a call (src/wire/update.ts): alice's address changed in
 * the middle of a call with hitoshi; her new transport's description goes
 * over the control channel or by mail, and hitoshi takes it only when it
 * is from alice, for this call, newer than what he has, and not seen before.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildMail } from '../../src/wire/build.js';
import { parseMail } from '../../src/wire/parse.js';
import { validateMessage } from '../../src/wire/validate.js';
import {
  MAX_RESTART_GENERATION,
  UPDATE_FRAME_CHARS,
  acceptUpdate,
  buildUpdateFrame,
  isUpdateFrame,
  parseUpdateFrame,
  restartOfMessage,
  updateFields,
  type CallUpdate,
  type UpdateContext,
} from '../../src/wire/update.js';
import { ALICE, CALL_ID, HITOSHI, MALLORY, OFFER_SDP, T0, contextFor, loadCast, message, pinnedAll, type Cast } from './scenario.js';

const NEW_SDP = OFFER_SDP.replace('Kx3b', 'Rs7u');
const update = (extra: Partial<CallUpdate> = {}): CallUpdate => ({ callId: CALL_ID, nonce: 'restart-nonce-0001-abcdef', generation: 1, role: 'offer', sdp: NEW_SDP, ...extra });
/** Hitoshi in a call with alice that has not restarted yet. */
const hitoshiInCall = (extra: Partial<UpdateContext> = {}): UpdateContext => ({ callId: CALL_ID, peer: ALICE, generation: 0, seen: new Set(), ...extra });

let cast: Cast;
beforeAll(async () => {
  cast = await loadCast();
});

describe('over the control channel', () => {
  it('alice frames her new description; hitoshi reads back exactly what she framed', () => {
    const frame = buildUpdateFrame(update());
    expect(isUpdateFrame(frame)).toBe(true);
    expect(parseUpdateFrame(frame)).toEqual({ ok: true, update: update() });
  });

  it('a chat line or a bye is not an update frame', () => {
    expect(isUpdateFrame('bye')).toBe(false);
    expect(isUpdateFrame(Buffer.from('peerdial-update {}'))).toBe(false);
  });

  it('a frame over its bound, not JSON, with an unknown field or a bad description is refused as malformed', () => {
    const long = `peerdial-update ${JSON.stringify({ ...update(), sdp: `v=0\r\n${'a=x\r\n'.repeat(UPDATE_FRAME_CHARS / 5)}` })}`;
    expect(parseUpdateFrame(long)).toMatchObject({ ok: false, reason: 'malformed', detail: expect.stringContaining('longer than') });
    expect(parseUpdateFrame('peerdial-update {nope')).toMatchObject({ ok: false, detail: 'update frame is not JSON' });
    expect(parseUpdateFrame(`peerdial-update ${JSON.stringify({ ...update(), extra: 1 })}`)).toMatchObject({ ok: false, detail: 'update has unknown field "extra"' });
    expect(parseUpdateFrame(`peerdial-update ${JSON.stringify({ ...update(), sdp: 'hello' })}`)).toMatchObject({ ok: false, detail: 'sdp is not a session description' });
    expect(parseUpdateFrame(`peerdial-update ${JSON.stringify({ ...update(), sdp: 'v=0\r\n\u0007' })}`)).toMatchObject({ ok: false, detail: 'sdp holds control characters' });
    expect(parseUpdateFrame(`peerdial-update ${JSON.stringify({ ...update(), generation: 0 })}`)).toMatchObject({ ok: false, detail: 'restart.generation is not a restart number' });
    expect(parseUpdateFrame(`peerdial-update ${JSON.stringify({ ...update(), generation: 1.5 })}`)).toMatchObject({ ok: false });
    expect(parseUpdateFrame(`peerdial-update ${JSON.stringify({ ...update(), role: 'pranswer' })}`)).toMatchObject({ ok: false, detail: 'restart.role is neither offer nor answer' });
    expect(parseUpdateFrame(`peerdial-update ${JSON.stringify({ ...update(), callId: 'short' })}`)).toMatchObject({ ok: false, detail: 'callId is not a random id' });
  });

  it('alice cannot build a frame hitoshi would refuse', () => {
    expect(() => buildUpdateFrame(update({ generation: MAX_RESTART_GENERATION + 1 }))).toThrow(/invalid update/);
  });
});

describe('by mail, as a signed kind `update`', () => {
  it('the mail alice builds carries the update; hitoshi parses it back to the same update', async () => {
    const msg = message('update', ALICE, HITOSHI, updateFields(update()));
    expect(validateMessage(msg)).toMatchObject({ ok: true });
    const built = await buildMail(msg, { sender: cast.alice, recipientKey: cast.hitoshi.publicKey, date: T0 });
    const parsed = await parseMail(built.raw, contextFor(cast.hitoshi, { contacts: pinnedAll(cast) }));
    if (!parsed.ok) throw new Error(`${parsed.reason}: ${parsed.detail}`);
    expect(restartOfMessage(parsed.message)).toEqual({ ok: true, update: update() });
  });

  it('an update without its restart fields, or another kind with them, is not a valid message', () => {
    const { restart: _gone, ...bare } = message('update', ALICE, HITOSHI);
    expect(validateMessage(bare)).toMatchObject({ ok: false, detail: 'field "restart" is not an object' });
    expect(validateMessage({ ...message('update', ALICE, HITOSHI), sdp: undefined })).toMatchObject({ ok: false, detail: 'update carries no sdp' });
    expect(validateMessage(message('hangup', ALICE, HITOSHI, { restart: { generation: 1, role: 'offer' } }))).toMatchObject({ ok: false, detail: 'hangup must not carry a restart' });
    expect(validateMessage(message('update', ALICE, HITOSHI, { restart: { generation: 1, role: 'offer', extra: true } as never }))).toMatchObject({ ok: false, detail: 'restart has unknown field "extra"' });
  });

  it('a hangup is not read as an update', () => {
    expect(restartOfMessage(message('hangup', ALICE, HITOSHI))).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('mallory mails an update for alice\'s call, signed as herself: the mail is genuine, the update is not taken', async () => {
    const built = await buildMail(message('update', MALLORY, HITOSHI, updateFields(update())), { sender: cast.mallory, recipientKey: cast.hitoshi.publicKey, date: T0 });
    const parsed = await parseMail(built.raw, contextFor(cast.hitoshi, { contacts: pinnedAll(cast) }));
    if (!parsed.ok) throw new Error(`${parsed.reason}: ${parsed.detail}`);
    const read = restartOfMessage(parsed.message);
    if (!read.ok) throw new Error(read.detail);
    expect(acceptUpdate(read.update, parsed.message.from, hitoshiInCall())).toMatchObject({ ok: false, reason: 'not-the-peer' });
  });
});

describe('whether hitoshi takes an update', () => {
  it('alice\'s first restart of this call is taken', () => {
    expect(acceptUpdate(update(), ALICE, hitoshiInCall())).toEqual({ ok: true, update: update() });
  });

  it('from somebody else than the call\'s peer: refused, even for the right call', () => {
    expect(acceptUpdate(update(), MALLORY, hitoshiInCall())).toMatchObject({ ok: false, reason: 'not-the-peer' });
  });

  it('for another call: refused', () => {
    expect(acceptUpdate(update({ callId: 'another-call-id-0000000' }), ALICE, hitoshiInCall())).toMatchObject({ ok: false, reason: 'other-call' });
  });

  it('the same update twice (it came over the channel and by mail, or the mail was replayed): the second is refused', () => {
    expect(acceptUpdate(update(), ALICE, hitoshiInCall({ generation: 1, seen: new Set([update().nonce]) }))).toMatchObject({ ok: false, reason: 'replayed' });
  });

  it('an old restart under a fresh nonce: refused as stale', () => {
    expect(acceptUpdate(update({ nonce: 'another-nonce-000000001' }), ALICE, hitoshiInCall({ generation: 1 }))).toMatchObject({ ok: false, reason: 'stale-generation' });
    expect(acceptUpdate(update({ nonce: 'another-nonce-000000001', generation: 2 }), ALICE, hitoshiInCall({ generation: 3 }))).toMatchObject({ ok: false, reason: 'stale-generation' });
  });

  it('both restarted at once (same generation while hitoshi awaits his own answer): taken, the machine settles who wins', () => {
    expect(acceptUpdate(update({ generation: 2 }), ALICE, hitoshiInCall({ generation: 2, awaitingAnswer: 2 }))).toMatchObject({ ok: true });
  });

  it('an answer is taken only for the restart hitoshi offered', () => {
    const answer = update({ role: 'answer', generation: 2 });
    expect(acceptUpdate(answer, ALICE, hitoshiInCall({ generation: 2, awaitingAnswer: 2 }))).toMatchObject({ ok: true });
    expect(acceptUpdate(answer, ALICE, hitoshiInCall({ generation: 3, awaitingAnswer: 3 }))).toMatchObject({ ok: false, reason: 'unexpected-answer' });
    expect(acceptUpdate(answer, ALICE, hitoshiInCall({ generation: 2 }))).toMatchObject({ ok: false, reason: 'unexpected-answer' });
  });

  it('a call restarted as often as a call may: no more', () => {
    const last = update({ generation: MAX_RESTART_GENERATION });
    expect(acceptUpdate(last, ALICE, hitoshiInCall({ generation: MAX_RESTART_GENERATION }))).toMatchObject({ ok: false, reason: 'too-many-restarts' });
  });
});
