/**
 * The group channel's messages (carriers/group-frames.ts): what a member
 * sends is read back the same; anything else from a peer is refused, and
 * text is made safe to print.
 */
import { describe, expect, it } from 'vitest';
import { decodeGroup, encodeGroup } from '../../src/carriers/group-frames.js';

describe('group channel messages', () => {
  it('a line, a pair left out and a bye come back as sent', () => {
    for (const m of [
      { t: 'chat', text: 'hello all' },
      { t: 'left-out', offerer: 'bob@example.test', answerer: 'dave@example.test', why: 'bob does not have dave as a contact with a key' },
      { t: 'bye' },
    ] as const) {
      expect(decodeGroup(encodeGroup(m))).toEqual(m);
    }
  });

  it('escape sequences in a line are not passed to the terminal', () => {
    const got = decodeGroup(JSON.stringify({ t: 'chat', text: 'hi\u001b[2Jthere' }));
    expect('text' in got && got.text).not.toContain('\u001b');
  });

  it('anything else is invalid', () => {
    expect(decodeGroup(Buffer.from('{"t":"chat","text":"x"}'))).toMatchObject({ type: 'invalid' });
    expect(decodeGroup('not json')).toMatchObject({ type: 'invalid' });
    expect(decodeGroup('{"t":"chat"}')).toMatchObject({ type: 'invalid' });
    expect(decodeGroup(JSON.stringify({ t: 'chat', text: 'x'.repeat(16 * 1024 + 1) }))).toMatchObject({ type: 'invalid' });
    expect(decodeGroup('{"t":"left-out","offerer":"Bob","answerer":"dave@example.test","why":"x"}')).toMatchObject({ type: 'invalid' });
    expect(decodeGroup('{"t":"relay","from":"alice@example.test"}')).toMatchObject({ type: 'invalid' });
  });
});
