/**
 * Builds the web page: page/src/*.ts bundled by esbuild into one module,
 * with index.html and page.css, into dist/page/ (served by src/web/server.ts,
 * shipped in the package). `npm run build` runs it after tsc.
 */
import { build } from 'esbuild';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, '..', 'dist', 'page');
await fs.mkdir(out, { recursive: true });
await build({
  entryPoints: [path.join(here, 'src', 'main.ts')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  outfile: path.join(out, 'page.js'),
  logLevel: 'warning',
});
for (const f of ['index.html', 'page.css']) await fs.copyFile(path.join(here, f), path.join(out, f));
