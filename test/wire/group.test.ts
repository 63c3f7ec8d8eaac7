/**
 * The group of a group call's offer: alice calls hitoshi and others at
 * once; the offer names the group (a random id, the members in order,
 * alice first). It travels signed and encrypted inside the payload like
 * any field, and anything else is refused: a member list that is too long,
 * names somebody twice, leaves out the sender or the recipient, holds
 * something that is not a mail address, or a group on another kind.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildMail } from '../../src/wire/build.js';
import { parseMail } from '../../src/wire/parse.js';
import { validateMessage } from '../../src/wire/validate.js';
import { LIMITS } from '../../src/wire/limits.js';
import { isPeerdialError } from '../../src/errors.js';
import { ALICE, HITOSHI, T0, contextFor, loadCast, message, pinnedAll, type Cast } from './scenario.js';

let cast: Cast;
beforeAll(async () => {
  cast = await loadCast();
});

const GROUP_ID = 'gr0up-1d-2025-06-01-aB3dE5fG';
const CAROL = 'carol@example.test';
const group = (members: unknown[] = [ALICE, HITOSHI, CAROL], extra: Record<string, unknown> = {}) => ({ id: GROUP_ID, members, ...extra });
const offer = (g: unknown, from = ALICE, to = HITOSHI) => ({ ...message('offer', from, to), group: g });

function detail(value: unknown): string {
  const r = validateMessage(value);
  return r.ok ? 'accepted' : r.detail;
}

describe('a group offer', () => {
  it('travels encrypted and comes out exactly as alice wrote it', async () => {
    const msg = message('offer', ALICE, HITOSHI, { group: group() as never });
    const built = await buildMail(msg, { sender: cast.alice, recipientKey: cast.hitoshi.publicKey, date: T0 });
    // nothing of the group shows outside the encrypted payload
    expect(built.raw.toString('latin1')).not.toContain(CAROL);
    expect(built.raw.toString('latin1')).not.toContain(GROUP_ID);
    const result = await parseMail(built.raw, contextFor(cast.hitoshi, { contacts: pinnedAll(cast) }));
    if (!result.ok) throw new Error(`${result.reason}: ${result.detail}`);
    expect(result.message.group).toEqual({ id: GROUP_ID, members: [ALICE, HITOSHI, CAROL] });
  });

  it('holds up to six members, the sender before the recipient', () => {
    const six = [ALICE, HITOSHI, CAROL, 'dave@example.test', 'erin@example.test', 'frank@example.test'];
    expect(six.length).toBe(LIMITS.groupMembers);
    expect(detail(offer(group(six)))).toBe('accepted');
    // a member's offer to a later member
    expect(detail(offer(group(six), HITOSHI, 'frank@example.test'))).toBe('accepted');
  });

  it('refuses a seventh member', () => {
    const seven = [ALICE, HITOSHI, CAROL, 'dave@example.test', 'erin@example.test', 'frank@example.test', 'grace@example.test'];
    expect(detail(offer(group(seven)))).toBe('group has more than 6 members');
  });

  it('refuses lists that are not the group of this offer', () => {
    expect(detail(offer(group([ALICE, HITOSHI, ALICE])))).toBe('group.members names somebody twice');
    expect(detail(offer(group([HITOSHI, CAROL])))).toBe('the sender is not a member of the group');
    expect(detail(offer(group([ALICE, CAROL])))).toBe('the recipient is not a member of the group');
    expect(detail(offer(group([HITOSHI, ALICE])))).toBe('the group offer goes from a later member to an earlier one');
    expect(detail(offer(group([ALICE, HITOSHI, 'Carol <carol@example.test>'])))).toBe('group.members holds something that is not a lower-case mail address');
    expect(detail(offer(group([ALICE, HITOSHI, '198.51.100.7'])))).toBe('group.members holds something that is not a lower-case mail address');
    expect(detail(offer(group([ALICE])))).toBe('group has fewer than 2 members');
    expect(detail(offer({ id: GROUP_ID, members: 'all of us' }))).toBe('group.members is not a list');
  });

  it('refuses extra fields, a bad id, and a group on anything but an offer', () => {
    expect(detail(offer(group(undefined, { names: ['Carol'] })))).toBe('group has unknown field "names"');
    expect(detail(offer({ id: 'short', members: [ALICE, HITOSHI] }))).toBe('group.id is not a random id');
    expect(detail(offer('all of us'))).toBe('field "group" is not an object');
    expect(detail({ ...message('answer', HITOSHI, ALICE), group: group() })).toBe('answer must not carry a group');
    expect(detail({ ...message('message', ALICE, HITOSHI, { text: 'hi' }), group: group() })).toBe('message must not carry a group');
  });

  it('is refused by the sender before it is built, as the receiver would refuse it', async () => {
    const bad = message('offer', ALICE, HITOSHI, { group: group([ALICE, CAROL]) as never });
    const err = await buildMail(bad, { sender: cast.alice, recipientKey: cast.hitoshi.publicKey, date: T0 }).catch((e: unknown) => e);
    expect(isPeerdialError(err, 'WIRE_BUILD')).toBe(true);
  });
});
