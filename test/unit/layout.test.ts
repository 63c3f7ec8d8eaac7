/**
 * The layout of src/ holds: no file or folder imports itself back, and none
 * of the forbidden directions of DESIGN.md is taken (the rules are in
 * .dependency-cruiser.cjs). A small tree with a cycle and a wrong direction
 * shows the rules do catch them.
 */
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cruise, type ICruiseOptions, type IForbiddenRuleType } from 'dependency-cruiser';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const config = createRequire(import.meta.url)(path.join(root, '.dependency-cruiser.cjs')) as {
  forbidden: IForbiddenRuleType[];
  options: ICruiseOptions;
};

/** Every violation of the rules in the tree under `baseDir`, one readable line each. */
async function violations(baseDir: string, options: ICruiseOptions = config.options): Promise<string[]> {
  const result = await cruise(['src'], { ...options, baseDir, validate: true, ruleSet: { forbidden: config.forbidden } });
  if (typeof result.output === 'string') throw new Error('dependency-cruiser gave a report, not a result');
  return result.output.summary.violations.map((v) => {
    const cycle = v.cycle?.length ? ` (cycle: ${v.cycle.map((c) => (typeof c === 'string' ? c : c.name)).join(' > ')})` : '';
    return `${v.rule.name}: ${v.from} -> ${v.to}${cycle}`;
  });
}

describe('the layout of src/', () => {
  it('has no import cycle, of files or of folders, and takes no forbidden direction', async () => {
    const found = await violations(root, { ...config.options, tsConfig: { fileName: path.join(root, 'tsconfig.json') } });
    expect(found).toEqual([]);
  }, 120_000);

  describe('the rules catch what they forbid', () => {
    let tmp: string | undefined;
    afterAll(async () => {
      if (tmp) await fs.rm(tmp, { recursive: true, force: true });
    });

    it('a file cycle, a folder cycle, wire/ reaching into agent/ and node-datachannel outside session/', async () => {
      tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'peerdial-layout-'));
      const files: Record<string, string> = {
        // agent/a <-> agent/b: a file cycle
        'src/agent/a.ts': "import { b } from './b.js';\nexport const a = (): number => b + 1;\n",
        'src/agent/b.ts': "import { a } from './a.js';\nexport const b = 1;\nexport const c = a;\n",
        // agent -> mail -> agent: a folder cycle without a file cycle
        'src/agent/c.ts': "import { m } from '../mail/m.js';\nexport const c = m;\n",
        'src/mail/m.ts': "export const m = 1;\n",
        'src/mail/n.ts': "import { d } from '../agent/d.js';\nexport const n = d;\n",
        'src/agent/d.ts': "export const d = 2;\n",
        // wire/ is pure
        'src/wire/w.ts': "import { d } from '../agent/d.js';\nexport const w = d;\n",
        // node-datachannel only behind session/
        'src/carriers/p.ts': "import { PeerConnection } from 'node-datachannel';\nexport const p = PeerConnection;\n",
      };
      for (const [name, text] of Object.entries(files)) {
        await fs.mkdir(path.join(tmp, path.dirname(name)), { recursive: true });
        await fs.writeFile(path.join(tmp, name), text);
      }
      const { tsConfig: _ignored, ...options } = config.options;
      const found = await violations(tmp, options);
      const rules = new Set(found.map((line) => line.slice(0, line.indexOf(':'))));
      expect([...rules].sort()).toEqual(['mail-is-an-edge', 'no-circular', 'no-circular-folders', 'node-datachannel-only-in-session', 'wire-is-pure']);
      expect(found).toContain('no-circular: src/agent/a.ts -> src/agent/b.ts (cycle: src/agent/b.ts > src/agent/a.ts)');
      expect(found.filter((line) => line.startsWith('no-circular-folders:'))).toContain('no-circular-folders: src/agent -> src/mail (cycle: src/mail > src/agent)');
      expect(found).toContain('wire-is-pure: src/wire/w.ts -> src/agent/d.ts');
    }, 120_000);
  });
});
