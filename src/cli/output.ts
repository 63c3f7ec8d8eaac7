/**
 * How the CLI talks to people: status lines on stderr, results on stdout,
 * errors with what to do next. Everything written here goes through the
 * sanitiser (wire/sanitize.ts): text from mail or a peer never reaches the
 * terminal raw, whoever forgot to clean a field first.
 */
import { PeerdialError } from '../errors.js';
import { safeJson, sanitizeBlock, sanitizeText } from '../wire/sanitize.js';

/** One field from mail or a peer, for a line: no controls, no newlines, no bidi tricks, capped. */
export const safe = (text: unknown, max?: number): string => sanitizeText(text, max === undefined ? {} : { max });

export interface GlobalOptions {
  config?: string;
  account?: string;
  json?: boolean;
  quiet?: boolean;
}

export function status(opts: GlobalOptions, line: string): void {
  if (!opts.quiet) process.stderr.write(`${sanitizeBlock(line)}\n`);
}

/** A result line (or lines) on stdout. */
export function say(text: string): void {
  process.stdout.write(`${sanitizeBlock(text)}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(safeJson(value, 2) + '\n');
}

export function printError(err: unknown): void {
  if (err instanceof PeerdialError) {
    process.stderr.write(`peerdial: ${sanitizeBlock(err.message)} [${err.code}]\n`);
    if (err.hint) process.stderr.write(`  what to do: ${sanitizeBlock(err.hint)}\n`);
  } else {
    const e = err as Error;
    process.stderr.write(`peerdial: unexpected error: ${sanitizeBlock(e?.stack ?? String(err))}\n`);
    process.stderr.write('  what to do: this is a bug; please report it with the lines above.\n');
  }
}

/** Rows as aligned columns; every cell is sanitised (one line, capped). */
export function table(input: string[][]): string {
  const rows = input.map((r) => r.map((c) => sanitizeText(c, { max: 300 })));
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export function age(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (s < 0) return 'in the future';
  if (s < 90) return `${s}s ago`;
  if (s < 5400) return `${Math.round(s / 60)}m ago`;
  if (s < 172800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

/**
 * node-datachannel 0.33.4 keeps the process alive after a session with media
 * tracks has been closed and cleanup() has run (measured: without tracks the
 * process exits by itself). Commands that used media say so here, and the
 * CLI ends the process itself once everything is flushed.
 */
let mediaUsed = false;
export function usedMedia(): void {
  mediaUsed = true;
}
export function mustExitExplicitly(): boolean {
  return mediaUsed;
}
