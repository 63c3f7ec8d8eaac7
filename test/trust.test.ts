/**
 * Trust on the real mail stack: a forger who mails first gets no answer and
 * no packet, and the real contact, introduced afterwards, still gets
 * through; invite/join makes both sides introduced after one exchange, and
 * a call follows; a caller without the forward capability gets no forward,
 * a file over the limit is refused; mail that came before its sender was a
 * contact is applied once they are added.
 */
import dgram from 'node:dgram';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { introduce, makePeer, mailboxSnapshot, runCli, tempDir, waitFor, type Peer } from './harness/peers.js';
import { agentOf } from './harness/agents.js';
import { buildMail } from '../src/wire/build.js';
import { formatFingerprint, generateIdentity } from '../src/wire/identity.js';
import type { PeerdialMessage } from '../src/wire/message.js';
import { Session } from '../src/session/index.js';
import { announce } from '../src/api/mail.js';
import { runPipe, sendFiles } from '../src/carriers/index.js';
import { Readable, Writable } from 'node:stream';
import { isPeerdialError } from '../src/errors.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
let bob: Peer;
let ines: Peer;
let jo: Peer;
let kim: Peer;
let lee: Peer;
let mo: Peer;

beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice', 'hitoshi', 'bob', 'ines', 'jo', 'kim', 'lee', 'mo'] });
  dir = await tempDir('trust');
  alice = await makePeer(stack, 'alice', dir);
  hitoshi = await makePeer(stack, 'hitoshi', dir, { answer: 'auto-answer' });
  bob = await makePeer(stack, 'bob', dir);
  ines = await makePeer(stack, 'ines', dir);
  jo = await makePeer(stack, 'jo', dir);
  kim = await makePeer(stack, 'kim', dir);
  lee = await makePeer(stack, 'lee', dir);
  mo = await makePeer(stack, 'mo', dir);
  await introduce(alice, hitoshi);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const cli = (p: Peer, ...args: string[]) => runCli(['--config', p.configFile, ...args], { timeoutMs: 60_000 });

/** A UDP socket on loopback that counts every packet that reaches it. */
async function decoy(): Promise<{ port: number; packets: () => number; close: () => void }> {
  const sock = dgram.createSocket('udp4');
  let n = 0;
  sock.on('message', () => n++);
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  return { port: sock.address().port, packets: () => n, close: () => sock.close() };
}

/** A real offer whose only candidate names the decoy: answered, ICE would send there. */
async function offerTo(port: number): Promise<string> {
  const { session, sdp } = await Session.createOffer({ ice: { iceServers: [], bindAddress: '127.0.0.1' } });
  session.close('only its description was needed');
  const lines = sdp.split(/\r?\n/).filter((l) => !l.startsWith('a=candidate:'));
  const at = lines.findIndex((l) => l.startsWith('a=end-of-candidates'));
  lines.splice(at === -1 ? lines.length - 1 : at, 0, `a=candidate:1 1 UDP 2122317823 127.0.0.1 ${port} typ host`);
  return lines.join('\r\n');
}

/** The forger: a key of its own for bob's address, an offer "from bob", straight into hitoshi's INBOX. */
const forgers = new Map<string, Awaited<ReturnType<typeof generateIdentity>>>();
async function forgeOffer(purpose: string, sdp: string, ttlSeconds: number, as: Peer = bob): Promise<void> {
  const forger = forgers.get(as.email) ?? (await generateIdentity(as.email));
  forgers.set(as.email, forger);
  const now = new Date();
  const msg: PeerdialMessage = {
    v: 1,
    kind: 'offer',
    from: as.email,
    to: hitoshi.email,
    callId: randomBytes(12).toString('base64url'),
    created: now.toISOString(),
    expires: new Date(now.getTime() + ttlSeconds * 1000).toISOString(),
    nonce: randomBytes(16).toString('base64url'),
    addresses: [{ ip: '127.0.0.1', source: 'interface', scope: 'loopback' }],
    sdp,
    purpose,
  };
  const { raw } = await buildMail(msg, { sender: forger, date: now });
  await stack.deliverRaw('hitoshi', raw);
}

describe('a forged first mail', () => {
  it('hitoshi auto-answers bob, added by address only; a forger mails first as bob: no answer, no packet; bob, introduced afterwards, is answered', { timeout: 120_000 }, async () => {
    expect((await cli(hitoshi, 'contacts', 'add', 'bob', bob.email, '--answer', 'auto-answer')).code).toBe(0);
    const trap = await decoy();
    const h = await agentOf(hitoshi);
    try {
      // a chat offer: the new key may ring, nothing more
      await forgeOffer('chat', await offerTo(trap.port), 6);
      const ringing = await waitFor('the forged call rings', () => h.events.find((e) => e.type === 'ringing'));
      expect(ringing.type === 'ringing' && ringing.call.trust).toBe('learned');
      const missed = await waitFor('it rings out', () => h.events.find((e) => e.type === 'ended' && e.direction === 'in'), 30_000);
      expect(missed).toMatchObject({ peer: bob.email, state: 'missed', states: ['offer-received', 'ringing', 'missed'] });
      // a camera-like purpose: not even a ring
      await forgeOffer('view', await offerTo(trap.port), 6);
      const denied = await waitFor('the forged view request is refused', () => h.events.find((e) => e.type === 'ended' && e.state === 'denied'), 30_000);
      expect(denied).toMatchObject({ peer: bob.email, detail: expect.stringContaining('only learned') });
      expect(trap.packets()).toBe(0);
      expect(h.events.some((e) => e.type === 'sent')).toBe(false);
      expect(await (await hitoshi.open()).outbox.list()).toEqual([]);
      const show = await cli(hitoshi, 'contacts', 'show', 'bob');
      expect(show.stdout).toMatch(/trust\s+learned/);

      // the real bob reads his fingerprint to hitoshi, who introduces it
      const real = (await bob.open()).identity.fingerprint;
      const forgedFpr = (await (await hitoshi.open()).contacts.require('bob')).fingerprint!;
      const key = await cli(hitoshi, 'contacts', 'key', 'bob', real);
      expect(key.code, key.stderr).toBe(0);
      expect(key.stdout.replace(/ /g, '')).toContain(`Replacedlearnedkey${forgedFpr}`);
      expect((await cli(hitoshi, 'contacts', 'list')).stdout).toMatch(new RegExp(`bob\\s+${bob.email.replace('.', '\\.')}\\s+-\\s+introduced \\(key awaited\\)`));

      // and bob adds hitoshi with the fingerprint hitoshi read to him (spaces as `contacts verify` prints it)
      const hitoshiFpr = formatFingerprint((await hitoshi.open()).identity.fingerprint);
      const added = await cli(bob, 'contacts', 'add', 'hitoshi', hitoshi.email, '--key', hitoshiFpr);
      expect(added.code, added.stderr).toBe(0);
      expect(added.stdout).toContain('key introduced (key awaited)');
      // an offer carries addresses: it goes only encrypted, so bob takes hitoshi's key itself from a file, which must match
      const keyFile = path.join(dir, 'hitoshi.asc');
      await fs.writeFile(keyFile, (await hitoshi.open()).identity.armoredPublicKey);
      expect((await cli(bob, 'contacts', 'key', 'hitoshi', keyFile)).code).toBe(0);
      const b = await agentOf(bob);
      try {
        const call = await b.agent.call('hitoshi');
        expect(call.states).toContain('connected');
        call.hangup();
        await call.ended;
      } finally {
        await b.agent.stop();
      }
      expect(await (await bob.open()).contacts.require('hitoshi')).toMatchObject({ trust: 'introduced', publicKey: expect.any(String) });
      const now = await (await hitoshi.open()).contacts.require('bob');
      expect(now).toMatchObject({ fingerprint: real, trust: 'introduced' });
      expect(now.publicKey).toBeDefined();
      expect(trap.packets()).toBe(0);
    } finally {
      trap.close();
      await h.agent.stop();
    }
  });
});

describe('a forged first mail, then an invite', () => {
  it("the forger's key was learned for mo; mo joins hitoshi's invite: his key replaces it, introduced on both sides", { timeout: 120_000 }, async () => {
    expect((await cli(hitoshi, 'contacts', 'add', 'mo', mo.email, '--answer', 'auto-answer')).code).toBe(0);
    await forgeOffer('chat', await offerTo(9), 60, mo);
    const first = await cli(hitoshi, '--json', 'inbox');
    expect(JSON.parse(first.stdout).items).toMatchObject([{ ok: true, from: mo.email, kind: 'offer', learnedKey: true }]);
    const forged = (await (await hitoshi.open()).contacts.require('mo')).fingerprint;
    expect(await (await hitoshi.open()).contacts.require('mo')).toMatchObject({ trust: 'learned' });

    const inv = await cli(hitoshi, '--json', 'invite');
    const code = (JSON.parse(inv.stdout) as { code: string }).code;
    expect((await cli(mo, 'join', code)).code).toBe(0);
    const intro = await cli(hitoshi, '--json', 'inbox');
    expect(JSON.parse(intro.stdout).items).toMatchObject([{ ok: true, from: mo.email, kind: 'introduce' }]);
    const real = (await mo.open()).identity.fingerprint;
    expect(real).not.toBe(forged);
    expect(await (await hitoshi.open()).contacts.require('mo')).toMatchObject({ trust: 'introduced', fingerprint: real, answer: 'auto-answer' });
    const back = await cli(mo, '--json', 'inbox');
    expect(JSON.parse(back.stdout).items).toMatchObject([{ ok: true, from: hitoshi.email, kind: 'introduced' }]);
    expect(await (await mo.open()).contacts.require(hitoshi.email)).toMatchObject({ trust: 'introduced' });
  });
});

describe('invite and join', () => {
  it('ines invites, jo joins with the code; after one exchange both show each other as introduced; then jo calls ines; the code is used up', { timeout: 120_000 }, async () => {
    const inv = await cli(ines, 'invite', '--answer', 'auto-answer');
    expect(inv.code, inv.stderr).toBe(0);
    const code = /^\s+(\S+@\S+:[0-9A-F]{40}:\S{22})$/m.exec(inv.stdout)?.[1];
    expect(code).toBeDefined();
    expect(inv.stdout).toMatch(/peerdial:invite\?addr=ines%40/);
    expect(inv.stdout).toMatch(/[▀▄█]/); // the QR code
    const join = await cli(jo, 'join', code!);
    expect(join.code, join.stderr).toBe(0);
    expect(join.stdout).toContain(`Added ines <${ines.email}> as introduced`);
    expect(join.stdout).toContain('Introduction sent');

    const inbox = await cli(ines, '--json', 'inbox');
    expect(inbox.code, inbox.stderr).toBe(0);
    expect(JSON.parse(inbox.stdout).items).toMatchObject([{ ok: true, from: jo.email, kind: 'introduce' }]);
    const back = await cli(jo, '--json', 'inbox');
    expect(JSON.parse(back.stdout).items).toMatchObject([{ ok: true, from: ines.email, kind: 'introduced', encrypted: true }]);

    const inesSees = await (await ines.open()).contacts.require(jo.email);
    const joSees = await (await jo.open()).contacts.require(ines.email);
    expect(inesSees).toMatchObject({ name: 'jo', trust: 'introduced', fingerprint: (await jo.open()).identity.fingerprint, answer: 'auto-answer' });
    expect(joSees).toMatchObject({ name: 'ines', trust: 'introduced', fingerprint: (await ines.open()).identity.fingerprint });
    expect(joSees.publicKey).toBeDefined();
    expect((await cli(ines, 'contacts', 'list')).stdout).toMatch(/jo\s+\S+\s+-\s+introduced\s/);
    expect((await cli(jo, 'contacts', 'list')).stdout).toMatch(/ines\s+\S+\s+-\s+introduced\s/);

    const i = await agentOf(ines);
    const j = await agentOf(jo);
    try {
      const call = await j.agent.call('ines');
      await waitFor('ines answered by herself', () => i.events.some((e) => e.type === 'connected' && 'call' in e));
      call.hangup();
      expect(await call.ended).toBe('closed');
    } finally {
      await j.agent.stop();
      await i.agent.stop();
    }
    expect((await cli(ines, 'contacts', 'show', 'jo')).stdout).toMatch(/trust\s+introduced/);

    // kim got hold of the same code: it is used up
    expect((await cli(kim, 'join', code!)).code).toBe(0);
    const late = await cli(ines, '--json', 'inbox');
    expect(JSON.parse(late.stdout).items).toMatchObject([{ ok: false, from: kim.email, reason: 'unknown-sender' }]);
    expect(await (await ines.open()).contacts.byEmail(kim.email)).toBeUndefined();
  });
});

describe('capabilities', () => {
  it('alice, introduced and auto-answered, may not forward: declined, no session; a file over her limit is refused, a small one saved, a pipe stopped at the limit', { timeout: 120_000 }, async () => {
    const allow = await cli(hitoshi, 'contacts', 'allow', 'alice', 'file-max=1K');
    expect(allow.code, allow.stderr).toBe(0);
    expect(allow.stdout).toContain('files up to 1K');
    expect((await cli(hitoshi, 'contacts', 'show', 'alice')).stdout).toMatch(/may use\s+chat pipe file view media; files up to 1K/);
    const h = await agentOf(hitoshi);
    const a = await agentOf(alice);
    try {
      const err = await a.agent.call('hitoshi', { purpose: 'forward' }).catch((e) => e);
      expect(isPeerdialError(err, 'CALL_DECLINED')).toBe(true);
      expect(String(err.message)).toContain('forward is not allowed');
      expect(h.events.some((e) => e.type === 'connected' && 'call' in e)).toBe(false);

      const small = path.join(dir, 'small.bin');
      const big = path.join(dir, 'big.bin');
      await fs.writeFile(small, randomBytes(512));
      await fs.writeFile(big, randomBytes(4096));
      const call = await a.agent.call('hitoshi', { purpose: 'file' });
      const sent = await sendFiles(await call.session.openChannel('file'), [big, small]);
      expect(sent.map((s) => s.status)).toEqual(['rejected', 'sent']);
      call.hangup();
      await call.ended;
      const carried = await waitFor('both files reported', () => {
        const lines = h.events.filter((e) => e.type === 'carried' && e.what === 'file').map((e) => (e.type === 'carried' ? e.detail : ''));
        return lines.length === 2 ? lines : undefined;
      });
      expect(carried[0]).toMatch(/^rejected big\.bin/);
      expect(carried[1]).toMatch(/^saved /);
      const saved = /^saved (\S+)/.exec(carried[1]!)![1]!;
      expect((await fs.stat(saved)).size).toBe(512);

      // a pipe into a file is held to the same limit
      const pcall = await a.agent.call('hitoshi', { purpose: 'pipe' });
      const pch = await pcall.session.openChannel('pipe');
      void runPipe(pch, Readable.from([randomBytes(4096)]), new Writable({ write: (_c, _e, cb) => cb() })).catch(() => undefined);
      const stopped = await waitFor('the pipe is stopped', () => h.events.find((e) => e.type === 'carried' && e.what === 'pipe'), 30_000);
      const detail = stopped.type === 'carried' ? stopped.detail : '';
      expect(detail).toMatch(/^stopped: more than the 1024 bytes/);
      const pipeFile = /is in (\S+)$/.exec(detail)![1]!;
      expect((await fs.stat(pipeFile)).size).toBeLessThanOrEqual(1024);
      await pcall.ended;
    } finally {
      await a.agent.stop();
      await h.agent.stop();
      await cli(hitoshi, 'contacts', 'allow', 'alice', 'file-max=100M');
    }
  });
});

describe('mail from somebody not yet a contact', () => {
  it("lee's announce reaches hitoshi before he adds lee: kept, and applied when he adds her", { timeout: 120_000 }, async () => {
    const la = await lee.open();
    await la.contacts.add({ name: 'hitoshi', email: hitoshi.email });
    const h = await agentOf(hitoshi);
    await h.agent.serveControl();
    try {
      // lee has no key of hitoshi's: she sends her address in clear text, on purpose
      const r = await announce(la, { to: ['hitoshi'], addresses: [{ ip: '203.0.113.8', source: 'stun', scope: 'public' }], plain: true });
      expect(r.drain?.sent).toBe(1);
      const rejected = await waitFor('rejected: not a contact', () => h.events.find((e) => e.type === 'mail-rejected' && e.from === lee.email));
      expect(rejected).toMatchObject({ reason: 'unknown-sender' });
      const add = await cli(hitoshi, 'contacts', 'add', 'lee', lee.email);
      expect(add.code, add.stderr).toBe(0);
      expect(add.stdout).toContain('1 mail(s) that came before they were a contact looked at again: 1 accepted.');
      const c = await (await hitoshi.open()).contacts.require('lee');
      expect(c.presence?.addresses.map((x) => x.ip)).toEqual(['203.0.113.8']);
      expect(c.trust).toBe('learned');
      const filed = await mailboxSnapshot(stack, 'hitoshi', 'Peerdial');
      expect(filed.some((m) => m.source.includes(`From: Lee <${lee.email}>`) || m.source.includes(`From: ${lee.email}`))).toBe(true);
    } finally {
      await h.agent.stop();
    }
  });
});
