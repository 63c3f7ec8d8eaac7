/**
 * The agent's side of a browser tab's calls (src/agent/browser-calls.ts)
 * on the real mail stack, without a browser: what reaches a listening tab,
 * what its decline does, what happens when no tab listens, and the tab's
 * descriptions that are refused before any mail goes. The tab itself (a
 * real Chromium making and taking calls) is in test/browser-calls.test.ts.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { introduce, makePeer, tempDir, waitFor, type Peer } from './harness/peers.js';
import { agentOf, type RecordedAgent } from './harness/agents.js';
import { defaultMediaSpec } from '../src/session/index.js';
import { editLines } from '../src/session/sdp.js';
import { isPeerdialError } from '../src/errors.js';
import type { BrowserOffer } from '../src/agent/browser-calls.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const chromiumOffer = () => fs.readFile(path.join(root, 'fixtures/sdp/chromium-offer.sdp'), 'latin1');

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
let tab: RecordedAgent;
let caller: RecordedAgent;

beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice', 'hitoshi'] });
  dir = await tempDir('browser-mail');
  alice = await makePeer(stack, 'alice', dir, { ringSeconds: 60 });
  hitoshi = await makePeer(stack, 'hitoshi', dir, { ringSeconds: 60 });
  await introduce(alice, hitoshi);
  tab = await agentOf(alice);
  caller = await agentOf(hitoshi);
}, 120_000);

afterAll(async () => {
  await caller?.agent.stop();
  await tab?.agent.stop();
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const mediaCall = () => caller.agent.call('alice', { purpose: 'media', media: defaultMediaSpec({ video: true, audio: true }, 'sendrecv') });

describe("the agent's side of a browser tab's calls", () => {
  it('a video call while a tab listens: the tab gets the verified offer; its decline goes back by mail', { timeout: 120_000 }, async () => {
    const offers: BrowserOffer[] = [];
    const stop = tab.agent.browserCalls.onOffer((o) => offers.push(o));
    try {
      const placed = mediaCall().catch((e: unknown) => e);
      const offer = await waitFor('the offer reaches the tab', () => offers[0], 60_000);
      expect(offer).toMatchObject({ from: hitoshi.email, video: true, audio: true });
      expect(offer.offerSdp.startsWith('v=0')).toBe(true);
      expect(offer.offerSdp).toContain('a=setup:active');
      // it rings in alice's agent like any call, with the same id
      await waitFor('it rings', () => tab.events.some((e) => e.type === 'ringing' && e.call.callId === offer.callId));
      await tab.agent.browserCalls.hangup(offer.callId);
      const err = await placed;
      expect(isPeerdialError(err, 'CALL_DECLINED'), String(err)).toBe(true);
      const log = await (await alice.open()).calls.list();
      expect(log.filter((c) => c.callId === offer.callId).map((c) => c.outcome)).toEqual(['declined']);
      // one offer, one listener call
      expect(offers).toHaveLength(1);
    } finally {
      stop();
    }
  });

  it('with no tab listening, a video call is the agent\'s own: it rings, nothing is offered to a tab', { timeout: 120_000 }, async () => {
    const offers: BrowserOffer[] = [];
    tab.agent.browserCalls.onOffer((o) => offers.push(o))();
    const seen = tab.events.length;
    const placed = mediaCall().catch((e: unknown) => e);
    const ringing = await waitFor('it rings', () => tab.events.slice(seen).find((e) => e.type === 'ringing'), 60_000);
    if (ringing.type !== 'ringing') throw new Error('not ringing');
    const callId = ringing.call.callId;
    await expect(tab.agent.browserCalls.answer(callId, await chromiumOffer())).rejects.toThrow(/no offer .* is waiting for a tab's answer/);
    ringing.call.decline();
    expect(isPeerdialError(await placed, 'CALL_DECLINED')).toBe(true);
    expect(offers).toEqual([]);
  });

  it("a tab's offer peerdial cannot use is refused before any mail: mDNS names only, no control channel", async () => {
    const before = (await (await alice.open()).calls.list()).length;
    const mdns = editLines(await chromiumOffer(), (l) => (l.startsWith('a=candidate:') ? l.replace('198.18.9.1', '0f9d6a33-5b7e-4c40-9d1c-8d0b7f0c2e11.local') : l));
    const err = await tab.agent.browserCalls.call('hitoshi', mdns, { video: true, audio: true }).catch((e: unknown) => e);
    expect(isPeerdialError(err, 'USAGE')).toBe(true);
    expect(String(err)).toMatch(/mDNS/);
    let inData = false;
    const noChannel = editLines(await chromiumOffer(), (l) => {
      if (l.startsWith('m=')) inData = l.startsWith('m=application');
      return inData ? undefined : l;
    });
    await expect(tab.agent.browserCalls.call('hitoshi', noChannel, { video: true, audio: true })).rejects.toThrow(/the tab must open a data channel/);
    // what the call asks for must be what the offer carries
    await expect(tab.agent.browserCalls.call('hitoshi', await chromiumOffer(), { video: true, audio: false })).rejects.toThrow(/not what the call asks for/);
    expect((await (await alice.open()).calls.list()).length).toBe(before);
    expect(await (await alice.open()).outbox.list()).toEqual([]);
  });
});
