/**
 * The examiner: hitoshi's mail is decrypted and parsed in one warm worker
 * thread with hard caps. A bomb is a typed rejection and the worker lives
 * on; a worker that runs out of heap or time is replaced, and the next
 * mail is read as if nothing had happened.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Examiner, type ExamineContext } from '../../src/mail/examiner.js';
import { buildMail } from '../../src/wire/build.js';
import { LIMITS } from '../../src/wire/limits.js';
import { bombMail } from '../harness/hostile.js';
import { ALICE, HITOSHI, MALLORY, T0, loadCast, message, type Cast } from '../wire/scenario.js';

let cast: Cast;
const open: Examiner[] = [];
beforeAll(async () => {
  cast = await loadCast();
});
afterEach(async () => {
  for (const e of open.splice(0)) await e.close();
});

function examinerOfHitoshi(opts: ConstructorParameters<typeof Examiner>[1] = {}): Examiner {
  const e = new Examiner(cast.hitoshi.armoredPrivateKey, opts);
  open.push(e);
  return e;
}

function ctx(extra: Partial<ExamineContext> = {}): ExamineContext {
  return {
    selfEmail: HITOSHI,
    now: new Date(T0.getTime() + 60_000),
    policy: 'contacts',
    contacts: [{ email: ALICE, publicKey: cast.alice.armoredPublicKey, blocked: false }],
    seen: () => false,
    ...extra,
  };
}

async function alicesOffer(): Promise<Buffer> {
  return (await buildMail(message('offer', ALICE, HITOSHI), { sender: cast.alice, recipientKey: cast.hitoshi.publicKey, date: T0 })).raw;
}

describe('the examiner', () => {
  it('reads alice\'s encrypted offer in the worker; the same nonce again is replayed', async () => {
    const ex = examinerOfHitoshi();
    const raw = await alicesOffer();
    const r = await ex.examine(raw, ctx());
    expect(r.ok).toBe(true);
    expect(r.ok && r.senderFingerprint).toBe(cast.alice.fingerprint);
    expect(r.ok && r.senderKey.getFingerprint().toUpperCase()).toBe(cast.alice.fingerprint);
    const again = await ex.examine(raw, ctx({ seen: () => true }));
    expect(again).toMatchObject({ ok: false, reason: 'replayed', from: ALICE });
    expect(ex.started).toBe(1);
  });

  it('mallory\'s 3.7 MB bomb is too-large and the same worker reads the next mail', async () => {
    const ex = examinerOfHitoshi();
    const { raw } = await bombMail(3_700_000, { from: MALLORY, to: HITOSHI });
    const r = await ex.examine(raw, ctx({ policy: 'everybody' }));
    expect(r).toMatchObject({ ok: false, reason: 'too-large' });
    expect((await ex.examine(await alicesOffer(), ctx())).ok).toBe(true);
    expect(ex.started).toBe(1);
  });

  it('a voicemail at LIMITS.voicemailBytes is read within the default heap: the receiver takes what the sender sends', async () => {
    const ex = examinerOfHitoshi();
    const audio = Buffer.alloc(LIMITS.voicemailBytes, 3);
    const big = message('message', ALICE, HITOSHI, { text: 'x'.repeat(LIMITS.textChars), attachment: { filename: 'voicemail.opus', contentType: 'audio/ogg', data: audio.toString('base64') } });
    const raw = (await buildMail(big, { sender: cast.alice, recipientKey: cast.hitoshi.publicKey, date: T0 })).raw;
    const r = await ex.examine(raw, ctx());
    expect(r.ok ? 'accepted' : `${r.reason}: ${r.detail}`).toBe('accepted');
    expect(r.ok && Buffer.from(r.message.attachment!.data, 'base64').equals(audio)).toBe(true);
    expect(ex.started).toBe(1);
  });

  it('a worker that runs out of heap is replaced; the mail is too-large, the next one is read', async () => {
    const ex = examinerOfHitoshi({ heapMb: 8 });
    const big = message('message', ALICE, HITOSHI, { attachment: { filename: 'voicemail.opus', contentType: 'audio/ogg', data: Buffer.alloc(LIMITS.voicemailBytes, 1).toString('base64') } });
    const raw = (await buildMail(big, { sender: cast.alice, recipientKey: cast.hitoshi.publicKey, date: T0 })).raw;
    const r = await ex.examine(raw, ctx());
    expect(r).toMatchObject({ ok: false, reason: 'too-large', detail: 'parsing it needs more than 8 MB' });
    expect(ex.started).toBe(1);
    const next = await examinerOfHitoshi().examine(await alicesOffer(), ctx());
    expect(next.ok).toBe(true);
  });

  it('a parse that does not end is cut off at the time limit and its worker replaced', async () => {
    process.env.PEERDIAL_TEST_EXAMINE_HANG = '1';
    const ex = examinerOfHitoshi({ timeoutMs: 15_000 });
    ex.warm();
    delete process.env.PEERDIAL_TEST_EXAMINE_HANG;
    const r = await ex.examine(await alicesOffer(), ctx());
    expect(r).toMatchObject({ ok: false, reason: 'too-large', detail: 'parsing it took longer than 15 s' });
    const next = await ex.examine(await alicesOffer(), ctx());
    expect(next.ok).toBe(true);
    expect(ex.started).toBe(2);
  });
});
