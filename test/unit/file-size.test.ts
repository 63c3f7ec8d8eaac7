/**
 * No source file in src/ is over 400 lines: a file that long holds several
 * things, and a newcomer cannot find them by its name. Two short lists say
 * which files may be longer: one state machine or one table (kept whole on
 * purpose, each with its reason), and the files being split right now (the
 * merger empties that list as the splits land). A listed file that is no
 * longer over the limit must leave its list, so neither list goes stale.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Most lines a source file may have. */
const MAX_LINES = 400;

/** Files that are one state machine or one table, path under src/ -> why it stays whole. */
const ONE_THING: Record<string, string> = {
  // none at present; an entry reads like
  // 'agent/example.ts': 'one state machine: its states and transitions read top to bottom',
};

/** Files over the limit that are being split now, in other branches; empty this list as those land. */
const BEING_SPLIT: Record<string, string> = {
  // none at present
};

/** Every .ts file under `dir` with its line count, path relative to `dir` with `/`. */
async function lineCounts(dir: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const full = path.join(entry.parentPath, entry.name);
    const text = await fs.readFile(full, 'utf8');
    // as `wc -l` counts: newlines, plus a last line without one
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    counts.set(path.relative(dir, full).split(path.sep).join('/'), lines);
  }
  return counts;
}

/** "file: N lines" for each file over MAX_LINES that no list lets through. */
function oversized(counts: Map<string, number>, allowed: readonly string[]): string[] {
  return [...counts]
    .filter(([file, lines]) => lines > MAX_LINES && !allowed.includes(file))
    .map(([file, lines]) => `${file}: ${lines} lines`)
    .sort();
}

describe('the size of the files in src/', () => {
  it(`has no file over ${MAX_LINES} lines but the listed ones`, async () => {
    const counts = await lineCounts(path.join(root, 'src'));
    expect(counts.size).toBeGreaterThan(100);
    expect(oversized(counts, [...Object.keys(ONE_THING), ...Object.keys(BEING_SPLIT)])).toEqual([]);
  });

  it('lists only files that exist and are still over the limit, each once and with its reason', async () => {
    const counts = await lineCounts(path.join(root, 'src'));
    const listed = [...Object.entries(ONE_THING), ...Object.entries(BEING_SPLIT)];
    const stale = listed.filter(([file]) => (counts.get(file) ?? 0) <= MAX_LINES).map(([file]) => file);
    expect(stale).toEqual([]);
    expect(Object.keys(ONE_THING).filter((file) => file in BEING_SPLIT)).toEqual([]);
    for (const [, reason] of listed) expect(reason.trim()).not.toBe('');
  });

  describe('the check catches what it forbids', () => {
    let tmp: string | undefined;
    afterAll(async () => {
      if (tmp) await fs.rm(tmp, { recursive: true, force: true });
    });

    it('a file of 401 lines is named, one of 400 and a listed one are not, nor what is not TypeScript', async () => {
      tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'peerdial-file-size-'));
      const lines = (n: number, end = '\n') => Array.from({ length: n }, (_, i) => `export const x${i} = ${i};`).join('\n') + end;
      await fs.mkdir(path.join(tmp, 'agent'), { recursive: true });
      await fs.writeFile(path.join(tmp, 'agent', 'long.ts'), lines(401));
      await fs.writeFile(path.join(tmp, 'agent', 'no-last-newline.ts'), lines(401, ''));
      await fs.writeFile(path.join(tmp, 'agent', 'just-right.ts'), lines(400));
      await fs.writeFile(path.join(tmp, 'table.ts'), lines(900));
      await fs.writeFile(path.join(tmp, 'notes.md'), lines(900));
      const counts = await lineCounts(tmp);
      expect(counts.get('agent/just-right.ts')).toBe(400);
      expect(oversized(counts, ['table.ts'])).toEqual(['agent/long.ts: 401 lines', 'agent/no-last-newline.ts: 401 lines']);
    });
  });
});
