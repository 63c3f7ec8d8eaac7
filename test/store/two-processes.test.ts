/**
 * Two processes of one account touch its stores at once: alice's agent
 * records the mail it handles while `peerdial inbox` (or a second agent by
 * mistake) does the same, and `contacts add` runs while the agent pins
 * a key. Real processes, the built store classes, one state dir: nothing
 * either of them wrote is lost, each shared nonce is
 * claimed by exactly one of them, and a lock left by a killed process is
 * taken over.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir, waitFor } from '../harness/peers.js';
import { Ledger } from '../../src/store/ledger.js';
import { ContactStore } from '../../src/store/contacts.js';
import { lockFile } from '../../src/store/files.js';

const RACER = path.join(ROOT, 'test', 'harness', 'store-racer.mjs');
const COUNT = 150;

let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = await tempDir('store-race');
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

interface Racer {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

function racer(args: string[]): Racer {
  const child = spawn(process.execPath, [RACER, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { child, out: () => out + err, exited };
}

async function readLedger(stateDir: string) {
  return JSON.parse(await fs.readFile(path.join(stateDir, 'ledger.json'), 'utf8')) as {
    mailboxes: Record<string, { uidValidity: string; lastUid: number }>;
    messages: Record<string, { result: string }>;
    nonces: Record<string, string>;
  };
}

describe('two processes on one ledger', () => {
  it(`both record ${COUNT} mails, move one mark and claim the same ${COUNT} nonces at once: nothing is lost, each nonce has one owner`, async () => {
    const stateDir = path.join(dir, 'race');
    const a = racer(['ledger', stateDir, 'a', String(COUNT)]);
    const b = racer(['ledger', stateDir, 'b', String(COUNT)]);
    await waitFor('both racers ready', () => a.out().includes('ready') && b.out().includes('ready'), 30_000);
    a.child.stdin!.end('go\n');
    b.child.stdin!.end('go\n');
    const [ca, cb] = await Promise.all([a.exited, b.exited]);
    expect({ a: ca, b: cb, out: ca || cb ? a.out() + b.out() : '' }).toEqual({ a: 0, b: 0, out: '' });

    const ledger = await readLedger(stateDir);
    for (const name of ['a', 'b']) {
      for (let i = 0; i < COUNT; i++) {
        expect(ledger.messages[`<${name}-${i}@race>`]?.result, `${name}'s mail ${i}`).toBe('accepted');
        expect(ledger.nonces[`${name}-nonce-${i}`], `${name}'s nonce ${i}`).toBeTruthy();
      }
    }
    expect(Object.keys(ledger.messages)).toHaveLength(2 * COUNT);
    for (let i = 0; i < COUNT; i++) expect(ledger.nonces[`shared-${i}`], `shared nonce ${i}`).toBeTruthy();
    // marks only move forward: the shared one ends at the highest UID either process saw
    expect(ledger.mailboxes).toEqual({
      INBOX: { uidValidity: '7', lastUid: 2 * (COUNT - 1) + 1 },
      'folder-a': { uidValidity: '7', lastUid: COUNT - 1 },
      'folder-b': { uidValidity: '7', lastUid: COUNT - 1 },
    });
    const claimedA = (JSON.parse(a.out().split('\n').find((l) => l.startsWith('{'))!) as { claimed: number[] }).claimed;
    const claimedB = (JSON.parse(b.out().split('\n').find((l) => l.startsWith('{'))!) as { claimed: number[] }).claimed;
    expect(claimedA.filter((i) => claimedB.includes(i)), 'nonces claimed by both').toEqual([]);
    expect([...claimedA, ...claimedB].sort((x, y) => x - y)).toEqual([...Array(COUNT).keys()]);

    // a third reader that had the ledger open before sees all of it: its copy is not stale
    const late = new Ledger(stateDir);
    await late.ready();
    expect(late.seen(`b-nonce-${COUNT - 1}`, '')).toBe(true);
    expect(await late.mark('INBOX')).toEqual({ uidValidity: '7', lastUid: 2 * COUNT - 1 });
  }, 120_000);

  it('both add contacts and change one shared contact at once: every contact and every change is there', async () => {
    const stateDir = path.join(dir, 'contacts');
    await new ContactStore(stateDir).add({ name: 'shared', email: 'shared@race.test' });
    const n = 40;
    const a = racer(['contacts', stateDir, 'a', String(n)]);
    const b = racer(['contacts', stateDir, 'b', String(n)]);
    await waitFor('both racers ready', () => a.out().includes('ready') && b.out().includes('ready'), 30_000);
    a.child.stdin!.end('go\n');
    b.child.stdin!.end('go\n');
    const [ca, cb] = await Promise.all([a.exited, b.exited]);
    expect({ a: ca, b: cb, out: ca || cb ? a.out() + b.out() : '' }).toEqual({ a: 0, b: 0, out: '' });
    const list = await new ContactStore(stateDir).list();
    expect(list).toHaveLength(1 + 2 * n);
    const shared = list.find((c) => c.email === 'shared@race.test')!;
    const want = ['a', 'b'].flatMap((p) => [...Array(n).keys()].map((i) => `${p}${i}`));
    expect([...shared.aliases].sort()).toEqual(want.sort());
  }, 120_000);

  it('a process holding the ledger lock is killed (SIGKILL): the lock is respected while it lives, then taken over', async () => {
    const stateDir = path.join(dir, 'stale');
    const holder = racer(['hold-lock', stateDir]);
    await waitFor('the holder has the lock', () => holder.out().includes('locked'), 30_000);
    const file = path.join(stateDir, 'ledger.json');
    // alive: nobody else gets it
    expect(await lockFile(file, { giveUpAfterMs: 0 })).toBeUndefined();

    holder.child.kill('SIGKILL');
    await holder.exited;
    await fs.stat(`${file}.lock`); // left behind: nobody removed it
    const ledger = new Ledger(stateDir);
    await ledger.record({ messageId: '<after-crash@x>', nonce: 'n-after-crash', result: 'accepted', now: new Date() });

    expect((await readLedger(stateDir)).messages['<after-crash@x>']?.result).toBe('accepted');
    await expect(fs.stat(`${file}.lock`)).rejects.toMatchObject({ code: 'ENOENT' });
  }, 120_000);
});
