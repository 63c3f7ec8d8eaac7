/**
 * Calls between peerdial and Delta Chat (core 2.57 from npm, on the real
 * mail stack), both ways, in Delta Chat's own call dialect. hitoshi uses
 * Delta Chat; the test stands in for its call app with a WebRTC peer of
 * its own (test/harness/deltachat-call-app.ts) and places and takes calls
 * through Delta Chat's RPC, as the app does. hitoshi and alice know each
 * other by vCard (no SecureJoin).
 *
 * - hitoshi calls alice's camera node from Delta Chat: the agent answers
 *   automatically with `call-accepted`, its test picture reaches the app;
 *   hitoshi hangs up in Delta Chat (`call-ended`) and the agent's call ends.
 * - alice runs `peerdial call hitoshi`: Delta Chat rings (IncomingCall with
 *   peerdial's offer), hitoshi accepts, a line crosses the data channel;
 *   alice hangs up and Delta Chat's call ends (`call-ended`).
 * - alice calls again and hitoshi declines in Delta Chat: alice's call
 *   ends as declined.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureMailServers, requireCommand } from './harness/system.js';
import { deltaChatAccount, introduceByVcard, startCore, stopCore, type DeltaChat } from './harness/deltachat.js';
import { CallApp } from './harness/deltachat-call-app.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { makePeer, runCli, tempDir, waitFor, type Peer } from './harness/peers.js';
import { agentOf, endedStates } from './harness/agents.js';

let stack: MailStack;
let dir: string;
let d: DeltaChat;
let dcHitoshi: number;
let chatId: number;
let alice: Peer;
const apps: CallApp[] = [];
/** Delta Chat's call events for hitoshi, in order. */
const events: Array<{ kind: string; msgId: number; info?: string }> = [];

const CAMERA = { video: { kind: 'test' as const }, audio: { kind: 'test' as const }, fps: 30 };

beforeAll(async () => {
  ensureMailServers();
  requireCommand('ffmpeg', 'ffmpeg');
  stack = await startMailStack({ users: ['alice', 'hitoshi'] });
  dir = await tempDir('deltachat-call');
  alice = await makePeer(stack, 'alice', dir, { answer: 'auto-answer' });
  d = await startCore(path.join(dir, 'deltachat'));
  dcHitoshi = await deltaChatAccount(d, stack, 'hitoshi');
  await d.rpc.setConfig(dcHitoshi, 'displayname', 'Hitoshi');
  d.on('ALL', (acc, e) => {
    if (acc !== dcHitoshi || !['IncomingCall', 'OutgoingCallAccepted', 'CallEnded', 'IncomingCallAccepted'].includes(e.kind)) return;
    const c = e as { kind: string; msg_id: number; place_call_info?: string; accept_call_info?: string };
    const info = c.place_call_info ?? c.accept_call_info;
    events.push({ kind: c.kind, msgId: c.msg_id, ...(info !== undefined ? { info } : {}) });
  });
  ({ chatId } = await introduceByVcard(d, dcHitoshi, alice, dir, runCli, { name: 'hitoshi', answer: 'auto-answer' }));
  await d.rpc.startIo(dcHitoshi);
}, 180_000);
afterAll(async () => {
  for (const a of apps) a.close();
  await stopCore(d);
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const app = (name: string) => {
  const a = new CallApp(name);
  apps.push(a);
  return a;
};

it("hitoshi calls alice's camera node from Delta Chat; the picture reaches his call app; his hang-up ends the agent's call", async () => {
  const cam = await agentOf(alice, { camera: CAMERA });
  try {
    const phone = app('hitoshi-app-1');
    const offer = await phone.offer({ video: true });
    const msgId = await d.rpc.placeOutgoingCall(dcHitoshi, chatId, offer, true);
    const accepted = await waitFor("alice's call-accepted in hitoshi's Delta Chat", () => events.find((e) => e.kind === 'OutgoingCallAccepted' && e.msgId === msgId), 120_000, 100);
    expect(accepted.info).toMatch(/^v=0/);
    phone.accept(accepted.info!);
    // on failure, say where the call stood: the app's connection and the agent's last events
    const where = () => `call app ${phone.state}, ${phone.videoFrames} frames; agent: ${cam.events.slice(-8).map((e) => ('state' in e ? `${e.type}:${String(e.state)}` : e.type)).join(', ')}`;
    await waitFor('30 video frames from the camera in the call app', () => phone.videoFrames >= 30, 120_000, 100).catch((err: Error) => {
      throw new Error(`${err.message} (${where()})`);
    });
    console.log(`Delta Chat -> camera: ${phone.videoFrames} video frames (${phone.videoPackets} RTP packets) received`);
    const connected = cam.events.find((e) => e.type === 'connected' && 'call' in e);
    expect(connected).toMatchObject({ call: { direction: 'in', peer: stack.users.hitoshi!.email, purpose: 'media' } });

    await d.rpc.endCall(dcHitoshi, msgId);
    await waitFor("the agent's call to end on hitoshi's call-ended", () => endedStates(cam.events, 'in').length === 1, 120_000, 100);
    expect(endedStates(cam.events, 'in')[0]).toEqual(expect.arrayContaining(['offer-received', 'answering', 'connected', 'closed']));
    const log = await (await alice.open()).calls.list();
    expect(log.filter((l) => l.direction === 'in').map((l) => l.outcome)).toEqual(['connected', 'hung-up']);
  } finally {
    await cam.agent.stop();
  }
}, 300_000);

it('alice runs peerdial call hitoshi: Delta Chat rings, hitoshi accepts, a line crosses; her hang-up ends the call in Delta Chat', async () => {
  const phone = app('hitoshi-app-2');
  const before = events.length;
  const call = runCli(['--config', alice.configFile, 'call', 'hitoshi'], { input: 'hello from peerdial\n', timeoutMs: 240_000 });
  const ring = await waitFor('IncomingCall in hitoshi\'s Delta Chat', () => events.slice(before).find((e) => e.kind === 'IncomingCall'), 120_000, 100);
  expect(ring.info).toMatch(/^v=0/);
  const answer = await phone.answer(ring.info!);
  await d.rpc.acceptIncomingCall(dcHitoshi, ring.msgId, answer);
  const line = await waitFor('a line from alice in the call app', () => phone.lines.find((l) => l.text.includes('hello from peerdial')), 120_000, 100);
  // the line came on a channel peerdial opened (not the app's own iceTrickling); peerdial's stdin
  // ends after this one line, so she may already be hanging up here: the channel's state is asserted after
  const chat = phone.channels.find((c) => c.getLabel() === line.label);
  expect(chat, `channels: ${phone.channels.map((c) => c.getLabel()).join(', ')}`).toBeDefined();
  expect(line.label).not.toBe('iceTrickling');
  const r = await call;
  expect(r.code, r.stderr).toBe(0);
  await waitFor("Delta Chat's call to end on alice's call-ended", () => events.slice(before).some((e) => e.kind === 'CallEnded' && e.msgId === ring.msgId), 120_000, 100);
  await waitFor("the chat channel to close in hitoshi's call app", () => !chat!.isOpen(), 60_000, 100);
}, 300_000);

it('alice calls again and hitoshi declines in Delta Chat: her call ends as declined', async () => {
  const before = events.length;
  const call = runCli(['--config', alice.configFile, 'call', 'hitoshi'], { timeoutMs: 240_000 });
  const ring = await waitFor('IncomingCall in hitoshi\'s Delta Chat', () => events.slice(before).find((e) => e.kind === 'IncomingCall'), 120_000, 100);
  await d.rpc.endCall(dcHitoshi, ring.msgId);
  const r = await call;
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('CALL_DECLINED');
}, 300_000);
