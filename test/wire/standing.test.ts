/**
 * Hitoshi's announce carries a standing answer for alice: the ICE
 * credentials, certificate fingerprint and candidates his agent keeps
 * ready, so that alice can call him with one mail. What alice reads, what
 * an older peerdial still reads, and what is refused.
 */
import * as openpgp from 'openpgp';
import { simpleParser } from 'mailparser';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildMail } from '../../src/wire/build.js';
import { PAYLOAD_MEDIA_TYPE, STANDING_FILENAME, STANDING_MEDIA_TYPE } from '../../src/wire/headers.js';
import { parseMail } from '../../src/wire/parse.js';
import { validateMessage } from '../../src/wire/validate.js';
import { validateStanding, type StandingAnswer } from '../../src/wire/standing.js';
import { isPeerdialError } from '../../src/errors.js';
import { ALICE, HITOSHI, MALLORY, T0, contextFor, loadCast, message, pinnedAll, type Cast } from './scenario.js';

let cast: Cast;
beforeAll(async () => {
  cast = await loadCast();
});

const HOUR = 3600_000;

function standingFor(to: string, extra: Partial<StandingAnswer> = {}): StandingAnswer {
  return {
    v: 1,
    id: 'st4nd1ng-answer-0001-hitoshi',
    from: HITOSHI,
    to,
    created: T0.toISOString(),
    expires: new Date(T0.getTime() + HOUR).toISOString(),
    iceUfrag: 'Hs7q',
    icePwd: 'r8Yv2kQp0sLm4nZx6cWb9tJd',
    fingerprint: '6B:8B:5E:2A:61:0C:47:9F:33:D1:0E:AA:52:C4:18:7E:90:2D:4F:3B:A1:77:C9:05:E6:68:1D:BC:42:F0:93:5A',
    candidates: ['candidate:1 1 UDP 2122252543 10.0.0.5 50200 typ host', 'candidate:2 1 UDP 1686052607 203.0.113.44 50200 typ srflx raddr 10.0.0.5 rport 50200'],
    ...extra,
  };
}

const announce = () => message('announce', HITOSHI, ALICE, {}, T0, 24 * HOUR);

describe('hitoshi announces with a standing answer for alice', () => {
  it('alice reads the announce and the standing answer exactly as hitoshi wrote them', async () => {
    const msg = announce();
    const standing = standingFor(ALICE);
    const built = await buildMail(msg, { sender: cast.hitoshi, recipientKey: cast.alice.publicKey, date: T0, standing });
    const result = await parseMail(built.raw, contextFor(cast.alice, { contacts: pinnedAll(cast) }));
    if (!result.ok) throw new Error(`${result.reason}: ${result.detail}`);
    expect(result.message).toEqual(msg);
    expect(result.standing).toEqual(standing);
    expect(result.standingRefused).toBeUndefined();
  });

  it('an older peerdial reads the same announce: one payload attachment, its JSON without a new field; the standing answer is a part it never looks at', async () => {
    const msg = announce();
    const built = await buildMail(msg, { sender: cast.hitoshi, recipientKey: cast.alice.publicKey, date: T0, standing: standingFor(ALICE) });
    const parsed = await simpleParser(built.raw);
    const payloads = parsed.attachments.filter((a) => a.contentType === PAYLOAD_MEDIA_TYPE);
    expect(payloads).toHaveLength(1);
    const standingParts = parsed.attachments.filter((a) => a.contentType === STANDING_MEDIA_TYPE);
    expect(standingParts.map((a) => a.filename)).toEqual([STANDING_FILENAME]);
    const { data } = await openpgp.decrypt({ message: await openpgp.readMessage({ armoredMessage: payloads[0]!.content.toString('ascii') }), decryptionKeys: cast.alice.privateKey, date: T0 });
    const payload = JSON.parse(data as string);
    expect(payload).toEqual(msg);
    // the closed v1 schema, as every peerdial so far checks it, takes the payload
    expect(validateMessage(payload).ok).toBe(true);
  });

  it('nobody on the way reads it: the standing answer is encrypted, and hitoshi cannot send one in clear text', async () => {
    const built = await buildMail(announce(), { sender: cast.hitoshi, recipientKey: cast.alice.publicKey, date: T0, standing: standingFor(ALICE) });
    expect(built.raw.toString('latin1')).not.toContain('r8Yv2kQp0sLm4nZx6cWb9tJd');
    expect(built.raw.toString('latin1')).not.toContain('203.0.113.44');
    const plain = buildMail(announce(), { sender: cast.hitoshi, date: T0, standing: standingFor(ALICE) });
    await expect(plain).rejects.toSatisfy((e: unknown) => isPeerdialError(e, 'WIRE_BUILD'));
  });

  it('only an announce carries one, and only one made for its recipient', async () => {
    const offer = buildMail(message('offer', HITOSHI, ALICE), { sender: cast.hitoshi, recipientKey: cast.alice.publicKey, date: T0, standing: standingFor(ALICE) });
    await expect(offer).rejects.toSatisfy((e: unknown) => isPeerdialError(e, 'WIRE_BUILD'));
    const forMallory = buildMail(announce(), { sender: cast.hitoshi, recipientKey: cast.alice.publicKey, date: T0, standing: standingFor(MALLORY) });
    await expect(forMallory).rejects.toSatisfy((e: unknown) => isPeerdialError(e, 'WIRE_BUILD'));
  });
});

describe('a standing answer alice does not take (the announce still counts: she calls with two mails)', () => {
  it('read after it expired', async () => {
    const built = await buildMail(announce(), { sender: cast.hitoshi, recipientKey: cast.alice.publicKey, date: T0, standing: standingFor(ALICE) });
    const result = await parseMail(built.raw, contextFor(cast.alice, { contacts: pinnedAll(cast), now: new Date(T0.getTime() + 2 * HOUR) }));
    if (!result.ok) throw new Error(`${result.reason}: ${result.detail}`);
    expect(result.standing).toBeUndefined();
    expect(result.standingRefused).toMatch(/expired/);
  });

  it('signed by mallory and slipped into hitoshi\'s announce', async () => {
    const genuine = await buildMail(announce(), { sender: cast.hitoshi, recipientKey: cast.alice.publicKey, date: T0 });
    const forged = await buildMail(message('announce', MALLORY, ALICE, {}, T0, 24 * HOUR), {
      sender: cast.mallory,
      recipientKey: cast.alice.publicKey,
      date: T0,
      standing: standingFor(ALICE, { from: MALLORY }),
    });
    const forgedPart = (await simpleParser(forged.raw)).attachments.find((a) => a.contentType === STANDING_MEDIA_TYPE)!.content.toString('ascii');
    const raw = genuine.raw.toString('latin1');
    const boundary = /boundary="([^"]+)"/.exec(raw)![1]!;
    const spliced = raw.replace(
      `--${boundary}--`,
      `--${boundary}\r\nContent-Type: ${STANDING_MEDIA_TYPE}; name=${STANDING_FILENAME}\r\nContent-Transfer-Encoding: 7bit\r\nContent-Disposition: attachment; filename=${STANDING_FILENAME}\r\n\r\n${forgedPart}\r\n--${boundary}--`,
    );
    const result = await parseMail(Buffer.from(spliced, 'latin1'), contextFor(cast.alice, { contacts: pinnedAll(cast) }));
    if (!result.ok) throw new Error(`${result.reason}: ${result.detail}`);
    expect(result.message.from).toBe(HITOSHI);
    expect(result.standing).toBeUndefined();
    expect(result.standingRefused).toMatch(/not signed by the key that signed the announce/);
  });
});

describe('the schema of a standing answer', () => {
  it('takes a well-formed one and refuses unknown fields, hostnames, TCP candidates and long lives', () => {
    expect(validateStanding(standingFor(ALICE)).ok).toBe(true);
    const refused = (s: unknown) => {
      const v = validateStanding(s);
      return v.ok ? 'taken' : v.detail;
    };
    expect(refused({ ...standingFor(ALICE), extra: 1 })).toMatch(/unknown field "extra"/);
    expect(refused(standingFor(ALICE, { candidates: ['candidate:1 1 UDP 2122252543 hitoshi.local 50200 typ host'] }))).toMatch(/hostname/);
    expect(refused(standingFor(ALICE, { candidates: ['candidate:1 1 TCP 2122252543 10.0.0.5 50200 typ host tcptype passive'] }))).toMatch(/not a UDP candidate/);
    expect(refused(standingFor(ALICE, { candidates: ['candidate:1 1 UDP 2122252543 169.254.0.9 50200 typ host'] }))).toMatch(/link-local/);
    expect(refused(standingFor(ALICE, { candidates: [] }))).toMatch(/non-empty/);
    expect(refused(standingFor(ALICE, { expires: new Date(T0.getTime() + 25 * HOUR).toISOString() }))).toMatch(/at most 86400 s/);
    expect(refused(standingFor(ALICE, { fingerprint: 'sha-256 AB' }))).toMatch(/fingerprint/);
  });

  it('an offer may name a standing answer; no other kind may', () => {
    expect(validateMessage(message('offer', ALICE, HITOSHI, { standing: 'st4nd1ng-answer-0001-hitoshi' })).ok).toBe(true);
    const answer = validateMessage(message('answer', ALICE, HITOSHI, { standing: 'st4nd1ng-answer-0001-hitoshi' }));
    expect(answer.ok ? 'taken' : answer.detail).toMatch(/answer must not name a standing answer/);
    const bad = validateMessage(message('offer', ALICE, HITOSHI, { standing: 'x' }));
    expect(bad.ok ? 'taken' : bad.detail).toMatch(/"standing" is not a random id/);
  });
});
