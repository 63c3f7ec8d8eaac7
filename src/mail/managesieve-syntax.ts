/**
 * The ManageSieve syntax (RFC 5804), apart from the connection: strings
 * quoted for a command (`sieveString`) and answer lines parsed into tokens
 * (`parseLine`), with the limits a hostile server is held to. No socket
 * here: the client (src/mail/managesieve.ts) feeds it the bytes it read.
 */
import { PeerdialError } from '../errors.js';

/** One token of an answer: an atom (OK, NO, ACTIVE...), a string (quoted or literal), or a parenthesised response code. */
export type Token = { atom: string } | { str: string } | { code: Token[] };

/** Quotes a string for a command: a quoted string when short and plain, else a `{n+}` literal. */
export function sieveString(s: string): string {
  const bytes = Buffer.byteLength(s, 'utf8');
  if (bytes <= 1024 && !/[\r\n\0"\\]/.test(s)) return `"${s}"`;
  return `{${bytes}+}\r\n${s}`;
}

/** The error of every ManageSieve failure: a refusal, a broken protocol, a limit passed (SIEVE_FAILED). */
export class SieveFailed extends PeerdialError {
  constructor(message: string, hint?: string, cause?: unknown) {
    super('SIEVE_FAILED', message, { ...(hint ? { hint } : {}), ...(cause !== undefined ? { cause } : {}) });
  }
}

/**
 * Parses one whole answer line (with its literals) from the start of `buf`:
 * the tokens and the bytes used, or undefined when more bytes are needed.
 * Throws on a line or literal over the limits or on bytes that are no token.
 */
export function parseLine(buf: Buffer, limits: { maxLineBytes: number; maxLiteralBytes: number }): { tokens: Token[]; used: number } | undefined {
  let i = 0;
  let lineBytes = 0;
  const stack: Token[][] = [[]];
  const push = (t: Token) => stack[stack.length - 1]!.push(t);
  const need = () => {
    if (lineBytes > limits.maxLineBytes) throw new SieveFailed(`the ManageSieve server sent a line longer than ${limits.maxLineBytes} bytes`);
    return undefined;
  };
  while (true) {
    if (i >= buf.length) return need();
    const c = buf[i]!;
    if (c === 0x20) {
      i++;
      lineBytes++;
      continue;
    }
    if (c === 0x0d || c === 0x0a) {
      if (c === 0x0d) {
        if (i + 1 >= buf.length) return need();
        if (buf[i + 1] !== 0x0a) throw new SieveFailed('the ManageSieve server sent a bare CR');
        i += 2;
      } else i += 1;
      if (stack.length !== 1) throw new SieveFailed('the ManageSieve server sent an unclosed "("');
      return { tokens: stack[0]!, used: i };
    }
    if (c === 0x28) {
      // (
      stack.push([]);
      i++;
      lineBytes++;
      if (stack.length > 8) throw new SieveFailed('the ManageSieve server nested response codes too deeply');
      continue;
    }
    if (c === 0x29) {
      if (stack.length === 1) throw new SieveFailed('the ManageSieve server sent an unmatched ")"');
      const inner = stack.pop()!;
      push({ code: inner });
      i++;
      lineBytes++;
      continue;
    }
    if (c === 0x22) {
      // "quoted", with \\ and \" escapes
      const bytes: number[] = [];
      let j = i + 1;
      for (;;) {
        if (j >= buf.length) {
          lineBytes += j - i;
          return need();
        }
        const d = buf[j]!;
        if (d === 0x5c) {
          if (j + 1 >= buf.length) {
            lineBytes += j - i;
            return need();
          }
          bytes.push(buf[j + 1]!);
          j += 2;
          continue;
        }
        if (d === 0x22) break;
        if (d === 0x0d || d === 0x0a) throw new SieveFailed('the ManageSieve server sent a line break inside a quoted string');
        bytes.push(d);
        j++;
        if (lineBytes + (j - i) > limits.maxLineBytes) throw new SieveFailed(`the ManageSieve server sent a line longer than ${limits.maxLineBytes} bytes`);
      }
      push({ str: Buffer.from(bytes).toString('utf8') });
      lineBytes += j + 1 - i;
      i = j + 1;
      continue;
    }
    if (c === 0x7b) {
      // {n} or {n+} CRLF, then n bytes
      const close = buf.indexOf(0x7d, i);
      if (close < 0) {
        if (buf.length - i > 24) throw new SieveFailed('the ManageSieve server sent a malformed literal length');
        return need();
      }
      const m = /^\{(\d{1,10})\+?\}$/.exec(buf.subarray(i, close + 1).toString('latin1'));
      if (!m) throw new SieveFailed('the ManageSieve server sent a malformed literal length');
      const n = Number(m[1]);
      if (n > limits.maxLiteralBytes) throw new SieveFailed(`the ManageSieve server announced a literal of ${n} bytes, more than ${limits.maxLiteralBytes}`);
      let start = close + 1;
      if (start >= buf.length) return need();
      if (buf[start] === 0x0d) start++;
      if (start >= buf.length) return need();
      if (buf[start] !== 0x0a) throw new SieveFailed('the ManageSieve server sent no line break after a literal length');
      start++;
      if (buf.length < start + n) return undefined;
      push({ str: buf.subarray(start, start + n).toString('utf8') });
      i = start + n;
      lineBytes = 0;
      continue;
    }
    // an atom: up to a space, a paren or the line end
    let j = i;
    while (j < buf.length) {
      const d = buf[j]!;
      if (d === 0x20 || d === 0x0d || d === 0x0a || d === 0x28 || d === 0x29 || d === 0x22 || d === 0x7b) break;
      if (d < 0x21 || d > 0x7e) throw new SieveFailed('the ManageSieve server sent a byte that is no token');
      j++;
      if (lineBytes + (j - i) > limits.maxLineBytes) throw new SieveFailed(`the ManageSieve server sent a line longer than ${limits.maxLineBytes} bytes`);
    }
    if (j >= buf.length) {
      lineBytes += j - i;
      return need();
    }
    push({ atom: buf.subarray(i, j).toString('latin1') });
    lineBytes += j - i;
    i = j;
  }
}

/** The words of a token: an atom or a string as itself, a response code as the words inside it. */
export function words(t: Token | undefined): string[] {
  if (!t) return [];
  if ('atom' in t) return [t.atom];
  if ('str' in t) return [t.str];
  return t.code.flatMap(words);
}
