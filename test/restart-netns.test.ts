/**
 * Alice's address changes in the middle of sending hitoshi a 256 MiB file
 * (network namespaces, root): her namespace loses its address and gets
 * another (ip addr del/add, route). Her machine notices (netlink), makes a
 * new transport and offers it; the old path is gone, so the offer goes over
 * the control channel in vain and then by mail (a signed, encrypted
 * `update` mail, built and parsed by the real wire code: this test process
 * is the mail leg); hitoshi answers by mail; the file carrier starts again
 * on the new transport and resumes from the bytes hitoshi kept. The file
 * arrives with its SHA-256, and both call logs say the call restarted and
 * how the description travelled.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildNetwork, type Network, type Site } from './harness/netns.js';
import { PeerProcess, type PeerEvent } from './harness/netns-call.js';
import { tempDir } from './harness/peers.js';
import { buildMail } from '../src/wire/build.js';
import { parseMail } from '../src/wire/parse.js';
import { updateFields, type CallUpdate } from '../src/wire/update.js';
import type { CallLogEntry } from '../src/store/calllog.js';
import { ALICE, HITOSHI, T0, contextFor, loadCast, message, pinnedAll, type Cast } from './wire/scenario.js';

const MiB = 1024 * 1024;
const FILE_BYTES = 256 * MiB;
const CALL_ID = 'restartCall-0000000000000001';
const NEW_ADDRESS = '198.18.0.111';

let net: Network;
let dir: string;
let cast: Cast;

beforeAll(async () => {
  net = await buildNetwork({ sites: [{ name: 'moving', kind: 'public' }, { name: 'staying', kind: 'public' }] });
  dir = await tempDir('restart-netns');
  cast = await loadCast();
}, 180_000);

afterAll(async () => {
  await net?.destroy();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** 256 MiB of random bytes on disk, and their SHA-256. */
async function bigFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  for (let i = 0; i < FILE_BYTES / (4 * MiB); i++) {
    const chunk = randomBytes(4 * MiB);
    hash.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return hash.digest('hex');
}

function peer(site: Site, role: 'offerer' | 'answerer', me: string, other: string, peerDir: string, file?: string): PeerProcess {
  const config = { role, ice: { iceServers: [], bindAddress: site.bindAddress }, dir: peerDir, file, connectTimeoutMs: 60_000, callId: CALL_ID, me, peer: other, mailFallbackMs: 3_000 };
  return new PeerProcess(net.spawnInNs(site.hostNs, ['test/harness/netns-restart-peer.mjs', JSON.stringify(config)]));
}

/**
 * The mail leg: every update a peer asks to mail is built as a real signed,
 * encrypted `update` mail from its sender and parsed by the recipient's
 * wire code (signature, pinned key, replay); the verified message goes on.
 */
function carryMail(from: { p: PeerProcess; email: string; who: keyof Cast }, to: { p: PeerProcess; who: keyof Cast }, carried: string[]): () => void {
  let seen = 0;
  const nonces = new Set<string>();
  let busy = Promise.resolve();
  const pump = setInterval(() => {
    for (; seen < from.p.events.length; seen++) {
      const ev = from.p.events[seen]!;
      if (ev.type !== 'mail') continue;
      const update = ev.update as CallUpdate;
      busy = busy.then(async () => {
        const msg = message('update', from.email, from.email === ALICE ? HITOSHI : ALICE, updateFields(update));
        const built = await buildMail(msg, { sender: cast[from.who], recipientKey: cast[to.who].publicKey, date: T0 });
        const parsed = await parseMail(built.raw, contextFor(cast[to.who], { contacts: pinnedAll(cast), seen: (n) => nonces.has(n) || (nonces.add(n), false) }));
        if (!parsed.ok) throw new Error(`the update mail was refused: ${parsed.reason}: ${parsed.detail}`);
        carried.push(`${from.email}: ${update.role} ${update.generation}`);
        to.p.send({ cmd: 'mail', message: parsed.message });
      });
    }
  }, 100);
  return () => clearInterval(pump);
}

describe("alice's address changes while she sends hitoshi a file", () => {
  it('the call restarts on a new transport (its description by mail), the transfer resumes and the file arrives whole', async () => {
    const moving = net.site('moving');
    const staying = net.site('staying');
    const base = path.join(dir, 'call');
    await fs.mkdir(base, { recursive: true });
    const file = path.join(base, 'payload.bin');
    const sha = await bigFile(file);
    const alice = peer(moving, 'offerer', ALICE, HITOSHI, path.join(base, 'alice'), file);
    const hitoshi = peer(staying, 'answerer', HITOSHI, ALICE, path.join(base, 'hitoshi'));
    const logs = () => `alice: ${JSON.stringify(alice.events.filter((e) => e.type !== 'bytes'))} ${alice.stderr.join('')}\nhitoshi: ${JSON.stringify(hitoshi.events.filter((e) => e.type !== 'bytes'))} ${hitoshi.stderr.join('')}`;
    const carried: string[] = [];
    const stops = [carryMail({ p: alice, email: ALICE, who: 'alice' }, { p: hitoshi, who: 'hitoshi' }, carried), carryMail({ p: hitoshi, email: HITOSHI, who: 'hitoshi' }, { p: alice, who: 'alice' }, carried)];
    try {
      alice.send({ cmd: 'start' });
      const offer = await alice.waitFor(['offer', 'failed'], 120_000);
      expect(offer?.type, logs()).toBe('offer');
      hitoshi.send({ cmd: 'offer', sdp: offer!.sdp });
      const answer = await hitoshi.waitFor(['answer', 'failed'], 120_000);
      expect(answer?.type, logs()).toBe('answer');
      alice.send({ cmd: 'answer', sdp: answer!.sdp });

      // a good part of the file is across: alice's namespace is re-addressed
      const across = await waitForEvent(hitoshi, (e) => e.type === 'failed' || (e.type === 'bytes' && Number(e.bytes) >= 32 * MiB), 600_000);
      expect(across?.type, logs()).toBe('bytes');
      const ns = moving.hostNs;
      await net.exec(ns, 'ip', ['addr', 'del', `${moving.ip}/24`, 'dev', 'eth0']);
      await net.exec(ns, 'ip', ['addr', 'add', `${NEW_ADDRESS}/24`, 'dev', 'eth0']);
      await net.exec(ns, 'ip', ['route', 'replace', '198.18.0.0/24', 'dev', 'eth0', 'src', NEW_ADDRESS]);

      const [sent, received] = await Promise.all([alice.waitFor(['sent', 'failed'], 1_200_000), hitoshi.waitFor(['received', 'failed'], 1_200_000)]);
      expect(sent?.type, logs()).toBe('sent');
      expect(received?.type, logs()).toBe('received');

      // the file: whole, resumed on the new transport rather than sent again
      const got = (received!.files as Array<{ status: string; sha256: string; path: string; resumedFrom: number }>)[0]!;
      expect(got).toMatchObject({ status: 'saved', sha256: sha });
      expect(got.resumedFrom).toBeGreaterThan(0);
      expect(received!.attempts).toBeGreaterThanOrEqual(2);
      const saved = createHash('sha256');
      for await (const chunk of (await fs.open(got.path)).createReadStream()) saved.update(chunk as Buffer);
      expect(saved.digest('hex')).toBe(sha);

      // alice noticed the change, and the new transport is on her new address
      expect(alice.events.find((e) => e.type === 'address-changed')?.addresses).toEqual([NEW_ADDRESS]);
      expect(String((alice.events.find((e) => e.type === 'switched')?.pair as { local: string }).local)).toContain(NEW_ADDRESS);

      // what each user was told
      const said = (p: PeerProcess) => p.events.filter((e) => e.type === 'say').map((e) => String(e.text));
      // (her old transport may fail before the address watcher speaks: then she hears of the loss first)
      expect(said(alice)[0]).toMatch(/^(address changed|connection lost), reconnecting\.\.\.$/);
      expect(said(alice)).toContainEqual(expect.stringMatching(/^reconnected via mail in \d+\.\d s$/));
      expect(said(hitoshi)).toContainEqual(expect.stringMatching(/^reconnected via mail in \d+\.\d s$/));

      // the description went by mail both ways (the old path was gone, the control channel with it)
      expect(carried).toEqual([`${ALICE}: offer 1`, `${HITOSHI}: answer 1`]);

      console.log(`restart mid-transfer: alice "${said(alice).join('" / "')}", hitoshi "${said(hitoshi).join('" / "')}"; resumed at byte ${got.resumedFrom} of ${FILE_BYTES}`);

      // both call logs record the restart and how its description travelled
      const logOf = async (who: string) => (await fs.readFile(path.join(base, who, 'calls.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as CallLogEntry);
      expect(await logOf('alice')).toEqual([
        expect.objectContaining({ direction: 'out', peer: HITOSHI, callId: CALL_ID, outcome: 'restarted', detail: expect.stringMatching(/^restart 1: address changed; new description by mail; reconnected in \d+\.\d s$/) }),
      ]);
      expect(await logOf('hitoshi')).toEqual([
        expect.objectContaining({ direction: 'in', peer: ALICE, callId: CALL_ID, outcome: 'restarted', detail: expect.stringMatching(/^restart 1: the peer's address changed; new description by mail; reconnected in \d+\.\d s$/) }),
      ]);
    } finally {
      stops.forEach((s) => s());
      await Promise.all([alice.close(), hitoshi.close()]);
    }
  }, 1_800_000);
});

/** The first event `match` takes, or undefined after timeoutMs or the peer's exit. */
async function waitForEvent(p: PeerProcess, match: (e: PeerEvent) => boolean, timeoutMs: number): Promise<PeerEvent | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ev = p.events.find(match);
    if (ev || p.exit || Date.now() >= deadline) return ev;
    await new Promise((r) => setTimeout(r, 100));
  }
}
