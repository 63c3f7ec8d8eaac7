/**
 * One sanitiser at the edge: any text that came from mail or from a peer
 * (header values, display names, chat lines, message texts, file names,
 * rejection details that quote them, library error texts) goes through
 * here before it reaches a terminal, a log line or a desktop notification.
 * Pure: no I/O.
 *
 * What it does to a string:
 * - C0 and C1 control characters (ESC, BEL, CR, CSI 0x9b, NEL, ...) and DEL
 *   become visible escapes (`\x1b`, `\x07`, `\x9b`): the attempt stays
 *   readable, nothing reaches the terminal as a control. Tab becomes a
 *   space; a newline becomes `\n` unless `multiline` keeps it.
 * - Bidi embeddings, overrides and isolates (U+202A-202E, U+2066-2069),
 *   marks (U+200E, U+200F, U+061C), line and paragraph separators and the
 *   other invisible format characters (Unicode Cf: soft hyphen, zero-width
 *   space, word joiner, BOM, interlinear annotations, tags, ...) become
 *   `\u{202e}`-style escapes. The zero-width joiner and non-joiner stay
 *   (emoji sequences and several scripts need them).
 * - Lone surrogates become U+FFFD.
 * - The result is at most `max` characters (default 500), cut at a code
 *   point boundary and marked with an ellipsis.
 * Everything else (letters of any script, emoji, punctuation) stays as it is.
 */

export interface SanitizeOptions {
  /** Longest result, in UTF-16 code units, ellipsis included (default 500). */
  max?: number;
  /** Keep line feeds (a CR LF or lone CR becomes one LF). Default: a line feed is shown as `\n`. */
  multiline?: boolean;
  /** Keep tabs (a chat line). Default: a tab becomes a space. */
  tabs?: boolean;
}

export const DEFAULT_MAX_CHARS = 500;
const ELLIPSIS = '\u2026';

/** Characters that are never written raw: controls, format characters, separators, lone surrogates. */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\p{Cc}\p{Cf}\u2028\u2029]|\p{Cs}/u;
const KEPT_FORMAT = new Set([0x200c, 0x200d]);

function hex(cp: number, width: number): string {
  return cp.toString(16).padStart(width, '0');
}

/** The visible stand-in for one code point that must not be written raw; undefined when it is safe. */
function escapeOf(cp: number, multiline: boolean, tabs = false): string | undefined {
  if (cp === 0x09) return tabs ? undefined : ' ';
  if (cp === 0x0a) return multiline ? '\n' : '\\n';
  if (cp === 0x0d) return multiline ? '\n' : '\\r';
  if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return `\\x${hex(cp, 2)}`;
  if (cp >= 0xd800 && cp <= 0xdfff) return '\ufffd';
  if (KEPT_FORMAT.has(cp)) return undefined;
  const ch = String.fromCodePoint(cp);
  if (!UNSAFE.test(ch)) return undefined;
  return `\\u{${hex(cp, 4)}}`;
}

/** Text from mail or a peer, safe for a terminal, a log line or a notification. Never throws. */
export function sanitizeText(input: unknown, opts: SanitizeOptions = {}): string {
  const text = typeof input === 'string' ? input : input === undefined || input === null ? '' : String(input);
  const max = Math.max(1, Math.floor(opts.max ?? DEFAULT_MAX_CHARS));
  const multiline = opts.multiline === true;
  const tabs = opts.tabs === true;
  let out = '';
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    const width = cp > 0xffff ? 2 : 1;
    // in multiline mode CR LF and a lone CR are one line feed
    const piece = multiline && cp === 0x0d ? (text.charCodeAt(i + 1) === 0x0a ? '' : '\n') : escapeOf(cp, multiline, tabs) ?? text.slice(i, i + width);
    if (out.length + piece.length > max) {
      return cutTo(out, max - ELLIPSIS.length) + ELLIPSIS;
    }
    out += piece;
    i += width;
  }
  return out;
}

/** `s` cut to at most `n` code units without splitting a surrogate pair. */
function cutTo(s: string, n: number): string {
  if (n <= 0) return '';
  if (s.length <= n) return s;
  const code = s.charCodeAt(n - 1);
  return code >= 0xd800 && code <= 0xdbff ? s.slice(0, n - 1) : s.slice(0, n);
}

/** Does `text` hold anything `sanitizeText` would change (apart from length)? */
export function isSafeText(text: string, opts: { multiline?: boolean } = {}): boolean {
  for (let i = 0; i < text.length; ) {
    const cp = text.codePointAt(i)!;
    if (cp === 0x0a && opts.multiline) {
      i += 1;
      continue;
    }
    if (escapeOf(cp, false) !== undefined) return false;
    i += cp > 0xffff ? 2 : 1;
  }
  return true;
}

/**
 * A whole output line or block of our own making that may quote text from
 * outside (the last line of defence at a sink): line feeds stay, everything
 * else is as `sanitizeText`; long enough for any line we print.
 */
export function sanitizeBlock(text: unknown, max = 64 * 1024): string {
  return sanitizeText(text, { multiline: true, max });
}

/**
 * JSON for a terminal or a log file: `JSON.stringify` already escapes C0
 * controls and lone surrogates; this also writes DEL, C1 controls, format
 * characters (bidi overrides and isolates) and line/paragraph separators as
 * `\uXXXX`. Lossless: parsing the result gives back the same value.
 */
export function safeJson(value: unknown, indent?: number): string {
  const json = JSON.stringify(value, null, indent) ?? 'null';
  return json.replace(/[\u007f-\u009f\p{Cf}\u2028\u2029]/gu, (ch) => {
    let out = '';
    for (let i = 0; i < ch.length; i++) out += `\\u${hex(ch.charCodeAt(i), 4)}`;
    return out;
  });
}
