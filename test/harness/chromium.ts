/**
 * A real headless Chromium for the web page's tests: the Debian `chromium`
 * package found on PATH (installed by .ci/run), driven by playwright-core,
 * no browser download. Fake camera and microphone, a fresh profile each
 * launch. Unlike browser.ts (a tab as a call's end, in a network namespace),
 * the page here is the agent's own on 127.0.0.1, and tabs that call each
 * other keep only loopback candidates (--allow-loopback-in-peer-connection).
 */
import { chromium, type Browser } from 'playwright-core';
import { requireCommand } from './system.js';

/** How every test starts Chromium: headless as root, no network of its own, fake camera and microphone. */
export const CHROMIUM_BASE_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
];

export const CHROMIUM_ARGS = [
  ...CHROMIUM_BASE_ARGS,
  // WebRTC between tabs of a test stays on loopback (the tests keep only 127.0.0.1 candidates)
  '--allow-loopback-in-peer-connection',
];

export function chromiumPath(): string {
  return requireCommand('chromium', 'chromium');
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS, timeout: 120_000 });
}
