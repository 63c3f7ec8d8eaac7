/**
 * `peerdial demo`: the whole thing on this machine, with no account and
 * no root: a throw-away mail server inside this process, two users
 * (alice, hitoshi), their keys, the first mails that carry the keys, then
 * a call: offer and answer by mail, a direct session over loopback, a
 * chat line each way and a file.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { startDemoMailServer } from './mail-server.js';
import { init } from '../api/init.js';
import { openAccount } from '../api/open.js';
import { announce } from '../api/mail.js';
import { Agent, channelNamed, type AgentEvent } from '../agent/agent.js';
import { runChat } from '../carriers/chat.js';
import { receiveFiles, sendFiles } from '../carriers/file.js';
import { formatFingerprint } from '../wire/identity.js';
import type { Account } from '../agent/account.js';

export interface DemoStep {
  /** Seconds since the demo started. */
  at: number;
  text: string;
}

export interface DemoResult {
  ok: boolean;
  seconds: number;
  setupMs: number;
  fileBytes: number;
  chat: string[];
}

function waitFor<T>(what: string, fn: () => T | undefined | false, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      const v = fn();
      if (v) return resolve(v);
      if (Date.now() > deadline) return reject(new Error(`demo: timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

export async function runDemo(opts: { onStep?: (s: DemoStep) => void; fileBytes?: number } = {}): Promise<DemoResult> {
  const t0 = performance.now();
  const step = (text: string) => opts.onStep?.({ at: (performance.now() - t0) / 1000, text });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'peerdial-demo-'));
  const server = await startDemoMailServer({ users: ['alice', 'hitoshi'] });
  const agents: Agent[] = [];
  try {
    step(`mail server up inside this process: SMTP 127.0.0.1:${server.smtpPort}, IMAP 127.0.0.1:${server.users.alice!.imapPort} (alice) and :${server.users.hitoshi!.imapPort} (hitoshi)`);
    const accounts: Record<string, Account> = {};
    for (const name of ['alice', 'hitoshi']) {
      const imap = server.imapServer(name);
      const smtp = server.smtpServer(name);
      const config = path.join(dir, name, 'config.toml');
      const r = await init({
        config,
        email: server.users[name]!.email,
        name: name === 'alice' ? 'Alice' : 'Hitoshi',
        user: imap.user,
        // a throw-away password for a throw-away server, so it may sit in the config
        secret: { password: imap.password },
        imap: { host: imap.host, port: imap.port, tls: 'none' },
        smtp: { host: smtp.host, port: smtp.port, tls: 'none' },
        stateDir: path.join(dir, name, 'state'),
        downloadDir: path.join(dir, name, 'downloads'),
        iceServers: [],
        bindAddress: '127.0.0.1',
        answer: name === 'hitoshi' ? 'auto-answer' : 'ring',
      });
      accounts[name] = await openAccount({ config });
      step(`${name} set up (${r.email}): logins checked, identity key ${r.fingerprint.slice(0, 24)}...`);
    }
    const alice = accounts.alice!;
    const hitoshi = accounts.hitoshi!;
    // Keys first, as an invite does (peerdial invite / join, or contacts add --key):
    // addresses never travel in clear text.
    await alice.contacts.add({ name: 'hitoshi', email: hitoshi.email });
    await alice.contacts.pinKey(hitoshi.email, hitoshi.identity.armoredPublicKey, hitoshi.identity.fingerprint, 'manual');
    await hitoshi.contacts.add({ name: 'alice', email: alice.email });
    await hitoshi.contacts.pinKey(alice.email, alice.identity.armoredPublicKey, alice.identity.fingerprint, 'manual');
    step(`each added the other as a contact, with the other's key (${formatFingerprint(hitoshi.identity.fingerprint).slice(0, 19)}..., ${formatFingerprint(alice.identity.fingerprint).slice(0, 19)}...)`);

    const hEvents: AgentEvent[] = [];
    const aEvents: AgentEvent[] = [];
    const chat: string[] = [];
    const got: { sha256?: string; bytes?: number } = {};
    const hAgent = new Agent({
      account: hitoshi,
      onEvent: (e) => hEvents.push(e),
      onIncoming: async (call) => {
        if (call.purpose === 'file') {
          const ch = await channelNamed(call, 'file');
          const files = await receiveFiles(ch, { dir: path.join(dir, 'hitoshi', 'downloads') });
          const f = files[0];
          if (f?.path) {
            const data = await fs.readFile(f.path);
            got.sha256 = createHash('sha256').update(data).digest('hex');
            got.bytes = data.length;
          }
          await call.ended;
          return;
        }
        const ch = await channelNamed(call, 'chat');
        async function* lines() {
          await waitFor('alice speaks', () => chat.length > 0);
          yield 'Hello Alice! Hitoshi here, straight from his machine to yours.';
          await call.ended;
        }
        await runChat(ch, lines(), { onLine: (from, text) => from === 'remote' && chat.push(`alice: ${text}`) });
      },
    });
    const aAgent = new Agent({ account: alice, onEvent: (e) => aEvents.push(e) });
    agents.push(hAgent, aAgent);
    hAgent.start();
    aAgent.start();
    await waitFor('agents idling', () => hEvents.some((e) => e.type === 'idle') && aEvents.some((e) => e.type === 'idle'));
    step("both agents watch their mailboxes (IMAP IDLE)");

    await announce(alice, { to: ['hitoshi'], queueOnly: true });
    aAgent.outbox.poke();
    await waitFor("alice's announce at hitoshi's", () => hEvents.some((e) => e.type === 'message' && e.message.kind === 'announce'));
    step("alice mailed her address, encrypted to hitoshi's key; his agent verified her signature");
    await announce(hitoshi, { to: ['alice'], queueOnly: true });
    hAgent.outbox.poke();
    await waitFor("hitoshi's announce at alice's", () => aEvents.some((e) => e.type === 'message' && e.message.kind === 'announce'));
    step('hitoshi answered likewise: all their mail is signed and encrypted, and the providers see no address');

    step('alice calls hitoshi: gathering addresses, mailing the offer...');
    const call = await aAgent.call('hitoshi', {
      purpose: 'chat',
      onProgress: (p) => {
        if (p.state === 'offer-sent') step('offer sent by mail; ringing...');
        if (p.state === 'connecting') step("hitoshi's agent answered by mail (his policy for alice: auto-answer); connecting...");
      },
    });
    step(`connected directly: ${call.pair.local} <-> ${call.pair.remote}, ${call.setupMs} ms after the call was placed`);
    const ch = await call.session.openChannel('chat');
    const replies: string[] = [];
    async function* aliceSays() {
      yield 'Hi Hitoshi, this is Alice. No server between us!';
      await waitFor('reply', () => replies.length > 0);
    }
    await runChat(ch, aliceSays(), { onLine: (from, text) => from === 'remote' && replies.push(text) });
    step(`alice said: "Hi Hitoshi, this is Alice. No server between us!"`);
    step(`hitoshi said: "${replies[0]}"`);
    call.hangup();
    await call.ended;
    step('alice hung up (said over the channel: no mail needed)');

    const fileBytes = opts.fileBytes ?? 4 * 1024 * 1024;
    const file = path.join(dir, 'alice', 'holiday.bin');
    const data = randomBytes(fileBytes);
    await fs.writeFile(file, data);
    const fcall = await aAgent.call('hitoshi', { purpose: 'file' });
    step(`second call for a file: connected in ${fcall.setupMs} ms`);
    const fch = await fcall.session.openChannel('file');
    const tf = performance.now();
    await sendFiles(fch, [file]);
    const secs = (performance.now() - tf) / 1000;
    fcall.hangup();
    await fcall.ended;
    await waitFor('file saved', () => got.sha256 !== undefined);
    const want = createHash('sha256').update(data).digest('hex');
    const ok = got.sha256 === want;
    step(`sent holiday.bin (${(fileBytes / 1048576).toFixed(1)} MiB) in ${secs.toFixed(2)} s; SHA-256 at hitoshi's ${ok ? 'matches' : 'DIFFERS'}`);
    return { ok, seconds: (performance.now() - t0) / 1000, setupMs: call.setupMs, fileBytes: got.bytes ?? 0, chat: [...chat, ...replies.map((r) => `hitoshi: ${r}`)] };
  } finally {
    for (const a of agents) await a.stop().catch(() => undefined);
    await server.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}
