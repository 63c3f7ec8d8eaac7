/**
 * Preload (`node --import`) that makes one package look not installed, as
 * when an optional dependency failed to install: importing the package named by
 * PEERDIAL_HIDE_PACKAGE fails the way Node fails for a missing package
 * (ERR_MODULE_NOT_FOUND, "Cannot find package 'NAME'").
 */
import { register } from 'node:module';

register(
  'data:text/javascript,' +
    encodeURIComponent(`
export async function resolve(specifier, context, next) {
  const hidden = process.env.PEERDIAL_HIDE_PACKAGE;
  if (hidden && (specifier === hidden || specifier.startsWith(hidden + '/'))) {
    throw Object.assign(new Error("Cannot find package '" + hidden + "' imported from " + context.parentURL), { code: 'ERR_MODULE_NOT_FOUND' });
  }
  return next(specifier, context);
}
`),
);
