/**
 * Preload (`node --import`) that writes the URL of every module the ESM
 * loader loads, one a line, to the file named by PEERDIAL_RECORD_MODULES.
 * Packages imported from ESM code pass through it (CommonJS requires made
 * inside a package do not, but the package's own entry does).
 */
import { register } from 'node:module';

register(
  'data:text/javascript,' +
    encodeURIComponent(`
import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  if (process.env.PEERDIAL_RECORD_MODULES) appendFileSync(process.env.PEERDIAL_RECORD_MODULES, url + '\\n');
  return next(url, context);
}
`),
);
