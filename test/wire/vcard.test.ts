/**
 * vCard as Delta Chat writes it: a card read back is the card that was
 * built; folded lines, `\,` escapes, several cards and junk are handled.
 */
import { describe, expect, it } from 'vitest';
import { buildVcard, parseVcard } from '../../src/wire/vcard.js';

const KEY = new Uint8Array([0xc6, 0x33, 0x04, 1, 2, 3, 4, 5, 250, 251]);

describe('vCard', () => {
  it('a card built for alice with her key reads back as alice with that key', () => {
    const text = buildVcard({ email: 'alice@example.org', displayName: 'Alice Smith', key: KEY, rev: new Date('2026-12-01T22:32:15.123Z') });
    expect(text).toContain('REV:20261201T223215Z\r\n');
    expect(text).toContain('KEY:data:application/pgp-keys;base64\\,');
    expect(parseVcard(text)).toEqual({ contacts: [{ email: 'alice@example.org', displayName: 'Alice Smith', key: KEY }], skipped: [] });
  });

  it('a card Delta Chat shares (folded, LF line ends, names with commas) is read', () => {
    const b64 = Buffer.from(KEY).toString('base64');
    const text = ['BEGIN:VCARD', 'VERSION:4.0', 'EMAIL:bob@example.net', 'FN:Bob\\, the builder', `KEY:data:application/pgp-keys;base64\\,${b64.slice(0, 5)}`, ` ${b64.slice(5)}`, 'REV:20261201T223215Z', 'END:VCARD', ''].join('\n');
    expect(parseVcard(text).contacts).toEqual([{ email: 'bob@example.net', displayName: 'Bob, the builder', key: KEY }]);
  });

  it('two cards give two contacts; a card without address or with a key that is no base64 is skipped and said so', () => {
    const text = [
      buildVcard({ email: 'a@example.org', rev: new Date(0) }),
      'BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Nobody\r\nEND:VCARD\r\n',
      'BEGIN:VCARD\r\nVERSION:4.0\r\nEMAIL:c@example.org\r\nKEY:https://example.org/key.asc\r\nEND:VCARD\r\n',
      buildVcard({ email: 'd@example.org', displayName: 'D', key: KEY, rev: new Date(0) }),
    ].join('');
    const r = parseVcard(text);
    expect(r.contacts.map((c) => c.email)).toEqual(['a@example.org', 'd@example.org']);
    expect(r.contacts[0]!.key).toBeUndefined();
    expect(r.skipped).toEqual(['card 2: no e-mail address', 'card 3 (c@example.org): its KEY is not an OpenPGP key in base64']);
  });

  it('text that is no vCard gives no contact', () => {
    expect(parseVcard('hello\nEMAIL:x@example.org\n')).toEqual({ contacts: [], skipped: [] });
  });
});
