/**
 * A real headless Chromium for the web page's tests: the Debian `chromium`
 * package (installed by .ci/run), driven by playwright-core, no browser
 * download. Fake camera and microphone, no network of its own beyond what
 * the page asks for (loopback in these tests), a fresh profile each launch.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { findCommand } from './system.js';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  // WebRTC between tabs of a test stays on loopback (the tests keep only 127.0.0.1 candidates)
  '--allow-loopback-in-peer-connection',
];

export function chromiumPath(): string {
  const found = ['/usr/bin/chromium', findCommand('chromium')].find((p): p is string => !!p && existsSync(p));
  if (!found) throw new Error('These tests need the Debian package chromium (apt-get install chromium); .ci/run installs it.');
  return found;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS, timeout: 120_000 });
}
