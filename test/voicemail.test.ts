/**
 * Voicemail: alice calls hitoshi, nobody answers, alice leaves a message;
 * hitoshi's `peerdial messages` lists it, decrypted and verified.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { MailStack } from './harness/mail-stack.js';
import { mailboxSnapshot, runCli, type Peer } from './harness/peers.js';
import { introducedPeers } from './harness/scene.js';
import { announce } from '../src/api/mail.js';
import { LIMITS } from '../src/wire/limits.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;

introducedPeers('voicemail', { alice: {}, hitoshi: {} }, async (s) => {
  stack = s.stack;
  dir = s.dir;
  alice = s.peers.alice!;
  hitoshi = s.peers.hitoshi!;
  // they have each other's keys: everything between them is encrypted, this announce too
  await announce(await hitoshi.open(), { to: ['alice'] });
  expect((await runCli(['--config', alice.configFile, 'inbox'])).code).toBe(0);
});

describe('voicemail', () => {
  it('nobody answers; alice leaves a message; hitoshi lists it decrypted and verified', async () => {
    const call = await runCli(['--config', alice.configFile, 'call', 'hitoshi', '--ring-seconds', '5', '--message', 'Call me back about the camera, please.'], { timeoutMs: 60_000 });
    expect(call.code).toBe(2);
    expect(call.stderr).toContain('did not answer');
    expect(call.stderr).toContain('message sent to hitoshi@example.test');
    const r = await runCli(['--config', hitoshi.configFile, '--json', 'messages']);
    expect(r.code, r.stderr).toBe(0);
    const list = JSON.parse(r.stdout) as { from: string; text?: string; read: boolean }[];
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ from: alice.email, text: 'Call me back about the camera, please.' });
    // the provider only ever saw ciphertext
    const filed = await mailboxSnapshot(stack, 'hitoshi', 'Peerdial');
    expect(filed.some((m) => m.source.includes('camera'))).toBe(false);
    // hitoshi's log shows the missed call that came before it
    const log = await runCli(['--config', hitoshi.configFile, '--json', 'log', '--missed']);
    expect(JSON.parse(log.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ peer: alice.email, outcome: 'missed' })]));
  });

  it('a recorded voice message arrives byte for byte and can be saved', async () => {
    const audio = path.join(dir, 'note.opus');
    const bytes = randomBytes(40_000);
    await fs.writeFile(audio, bytes);
    const sent = await runCli(['--config', alice.configFile, 'message', 'hitoshi', 'voice note attached', '--audio', audio]);
    expect(sent.code, sent.stderr).toBe(0);
    const out = path.join(dir, 'saved');
    const r = await runCli(['--config', hitoshi.configFile, '--json', 'messages', '--save', out]);
    const list = JSON.parse(r.stdout) as { text?: string; savedTo?: string; attachment?: { bytes: number; contentType: string } }[];
    const voice = list.find((m) => m.text === 'voice note attached')!;
    expect(voice.attachment).toMatchObject({ bytes: 40_000, contentType: 'audio/ogg' });
    expect((await fs.readFile(voice.savedTo!)).equals(bytes)).toBe(true);
    const plain = await runCli(['--config', hitoshi.configFile, 'messages', '--no-check']);
    expect(plain.stdout).toContain('voice message, 40000 bytes');
  });

  it('a voice message of exactly LIMITS.voicemailBytes arrives; one byte more fails before sending, naming the limit', async () => {
    const audio = path.join(dir, 'long.opus');
    const bytes = randomBytes(LIMITS.voicemailBytes);
    await fs.writeFile(audio, bytes);
    const sent = await runCli(['--config', alice.configFile, 'message', 'hitoshi', 'the long one', '--audio', audio], { timeoutMs: 120_000 });
    expect(sent.code, sent.stderr).toBe(0);
    const out = path.join(dir, 'saved-long');
    const r = await runCli(['--config', hitoshi.configFile, '--json', 'messages', '--save', out], { timeoutMs: 120_000 });
    const list = JSON.parse(r.stdout) as { text?: string; savedTo?: string }[];
    const voice = list.find((m) => m.text === 'the long one');
    expect(voice, r.stderr).toBeDefined();
    expect((await fs.readFile(voice!.savedTo!)).equals(bytes)).toBe(true);

    const before = (await mailboxSnapshot(stack, 'hitoshi')).length;
    await fs.writeFile(audio, randomBytes(LIMITS.voicemailBytes + 1));
    const over = await runCli(['--config', alice.configFile, 'message', 'hitoshi', 'too long', '--audio', audio]);
    expect(over.code).toBe(64);
    expect(over.stderr).toContain(`is ${LIMITS.voicemailBytes + 1} bytes; a voice message may be at most ${LIMITS.voicemailBytes} bytes (LIMITS.voicemailBytes). Nothing was sent.`);
    expect(over.stderr).toContain('libopus');
    expect((await (await alice.open()).outbox.list()).length).toBe(0);
    expect((await mailboxSnapshot(stack, 'hitoshi')).length).toBe(before);
  }, 240_000);

  it('a message without text or audio is refused with a hint', async () => {
    const r = await runCli(['--config', alice.configFile, 'message', 'hitoshi']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('needs a text or an audio file');
  });
});
