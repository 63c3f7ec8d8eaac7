/**
 * The one sanitiser at the edge: whatever a stranger puts into a header or a
 * peer into a chat line, what reaches the terminal carries no control
 * character, no escape sequence, no bidi trick, and stays readable.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isSafeText, safeJson, sanitizeBlock, sanitizeText } from '../../src/wire/sanitize.js';

const ESC = '\x1b';
const BEL = '\x07';
const CSI = '\u009b';
const RLO = '\u202e';

/** Nothing a terminal would act on: no C0 (but \n where allowed), DEL, C1, format characters, separators, lone surrogates. */
function assertInert(s: string, opts: { newlines?: boolean } = {}): void {
  // eslint-disable-next-line no-control-regex
  const bad = opts.newlines ? /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/ : /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
  expect(s).not.toMatch(bad);
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp === 0x200c || cp === 0x200d) continue;
    expect(/\p{Cf}/u.test(ch), `format character U+${cp.toString(16)}`).toBe(false);
    expect(cp >= 0xd800 && cp <= 0xdfff, 'lone surrogate').toBe(false);
  }
}

describe('mallory puts escape sequences into a header; hitoshi reads it on his terminal', () => {
  it('the title-setting OSC, a colour CSI and a bell become visible text', () => {
    const s = sanitizeText(`${ESC}]0;pwned${BEL}${ESC}[31mred`);
    expect(s).toBe('\\x1b]0;pwned\\x07\\x1b[31mred');
    assertInert(s);
  });

  it('the one-byte CSI (U+009B) and the other C1 controls are escaped too', () => {
    expect(sanitizeText(`a${CSI}2Jb\u0085c\u008dd`)).toBe('a\\x9b2Jb\\x85c\\x8dd');
    expect(sanitizeText('x\x7fy')).toBe('x\\x7fy');
  });

  it('bidi overrides and isolates cannot reorder what he reads', () => {
    const s = sanitizeText(`invoice${RLO}fdp.exe \u2066x\u2069 \u202a\u202b\u202c\u202d \u200e\u200f\u061c`);
    expect(s).toBe('invoice\\u{202e}fdp.exe \\u{2066}x\\u{2069} \\u{202a}\\u{202b}\\u{202c}\\u{202d} \\u{200e}\\u{200f}\\u{061c}');
    assertInert(s);
  });

  it('invisible format characters and line separators are shown, joiners in emoji stay', () => {
    expect(sanitizeText('a\u200bb\ufeffc\u2060d\u00ade\u2028f\u2029g')).toBe('a\\u{200b}b\\u{feff}c\\u{2060}d\\u{00ad}e\\u{2028}f\\u{2029}g');
    expect(sanitizeText('tag\u{e0041}')).toBe('tag\\u{e0041}');
    const family = '\u{1f468}\u200d\u{1f469}\u200d\u{1f467}';
    expect(sanitizeText(family)).toBe(family);
  });

  it('newlines cannot forge a second log line; a block keeps its own line feeds only', () => {
    expect(sanitizeText('hello\r\n2026-12-01T10:00:00Z call from boss: connected')).toBe('hello\\r\\n2026-12-01T10:00:00Z call from boss: connected');
    expect(sanitizeText('a\tb')).toBe('a b');
    expect(sanitizeBlock(`line one\r\nline two${ESC}[2J\rthree`)).toBe('line one\nline two\\x1b[2J\nthree');
  });

  it('lone surrogates become U+FFFD; pairs stay', () => {
    expect(sanitizeText('a\ud800b\udc00c')).toBe('a\ufffdb\ufffdc');
    expect(sanitizeText('\u{1f4de} call')).toBe('\u{1f4de} call');
  });

  it('ordinary text of any script is left as it is', () => {
    for (const t of ['Hitoshi Yamada', '山田 仁', 'Zoë Ångström-Łukasz', 'مرحبا بالعالم', 'שלום', 'Привет, как дела?', 'a "quoted" <b@c> (x) 100% \\ ok']) {
      expect(sanitizeText(t)).toBe(t);
      expect(isSafeText(t)).toBe(true);
    }
  });

  it('length is capped at a code point boundary, with an ellipsis', () => {
    expect(sanitizeText('x'.repeat(10_000)).length).toBe(500);
    expect(sanitizeText('x'.repeat(10_000))).toMatch(/x…$/);
    const cut = sanitizeText('\u{1f600}'.repeat(100), { max: 10 });
    expect(cut.length).toBeLessThanOrEqual(10);
    expect(cut).toBe('\u{1f600}'.repeat(4) + '…');
    // escapes count toward the cap
    expect(sanitizeText(ESC.repeat(1000), { max: 40 }).length).toBeLessThanOrEqual(40);
  });

  it('anything that is not a string still becomes a safe string', () => {
    expect(sanitizeText(undefined)).toBe('');
    expect(sanitizeText(42)).toBe('42');
    expect(sanitizeText(new Error(`boom${ESC}[31m`))).toBe('Error: boom\\x1b[31m');
  });

  it('JSON output escapes C1 and bidi characters and parses back to the same value', () => {
    const value = { from: `a${CSI}b`, detail: `x${RLO}y${ESC}z\u2028\u{e0041}`, n: 1 };
    const json = safeJson(value, 2);
    assertInert(json, { newlines: true });
    expect(JSON.parse(json)).toEqual(value);
  });

  it('property: whatever the input, the output is inert, capped and stable', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.integer({ min: 1, max: 400 }), fc.boolean(), (s, max, multiline) => {
        const out = sanitizeText(s, { max, multiline });
        assertInert(out, { newlines: multiline });
        expect(out.length).toBeLessThanOrEqual(max);
        // safe text passes through unchanged, so sanitising twice changes nothing more
        if (out.length < max) expect(sanitizeText(out, { max, multiline })).toBe(out);
        expect(isSafeText(out, { multiline })).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: safeJson round-trips any value made of hostile strings', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), fc.string({ unit: 'binary', maxLength: 100 }), (v, s) => {
        const value = { v, s };
        const json = safeJson(value);
        assertInert(json);
        expect(JSON.parse(json)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 500 },
    );
  });
});
