/**
 * The mail leg when a reply is expected, on the real mail stack: hitoshi
 * waits for alice's mail. With nothing expected his watcher only IDLEs
 * (no NOOP before the server's EXISTS), and Dovecot's IDLE notice comes
 * late after a quiet spell. While a reply is expected, the watcher's
 * scheduled checks (a NOOP that ends IDLE) bring the EXISTS at delivery
 * time: the pass that finds alice's mail was started by a reply check.
 * Figures (submit -> hitoshi's watcher has the classified mail, with and
 * without an expectation, and the NOOPs that cost) are printed, not
 * asserted: timing belongs in benchmarks.
 */
import nodemailer from 'nodemailer';
import type { ImapFlow } from 'imapflow';
import { describe, expect, it } from 'vitest';
import { connectImap } from '../src/mail/imap.js';
import { InboxWatcher, type CheckResult, type InboxMail } from '../src/mail/inbox.js';
import { REPLY_CHECKS, type ReplyCheckPlan } from '../src/mail/reply-checks.js';
import type { Received } from '../src/agent/account.js';
import type { MailStack } from './harness/mail-stack.js';
import { waitFor, type Peer } from './harness/peers.js';
import { introducedPeers } from './harness/scene.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;

introducedPeers('replychk', { alice: {}, hitoshi: {} }, async (s) => {
  stack = s.stack;
  dir = s.dir;
  alice = s.peers.alice!;
  hitoshi = s.peers.hitoshi!;
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

/** Hitoshi's watcher on a fresh connection, recording NOOPs, passes and mail. */
async function hitoshisWatcher(plan?: ReplyCheckPlan) {
  const h = await hitoshi.open();
  const client: ImapFlow = await connectImap(await h.imapTarget());
  const log: string[] = [];
  let noops = 0;
  const noop = client.noop.bind(client);
  client.noop = (() => {
    noops++;
    log.push('noop');
    return noop();
  }) as typeof client.noop;
  client.on('exists', () => log.push('exists'));
  const checks: CheckResult[] = [];
  const mails: { at: number; mail: InboxMail<Received> }[] = [];
  let idles = 0;
  const watcher = new InboxWatcher<Received>({
    client,
    ledger: h.ledger,
    folder: h.account.folder,
    screen: (o) => h.screen(o),
    classify: (raw) => h.classify(raw),
    onMail: (mail) => void mails.push({ at: Date.now(), mail }),
    ...(plan ? { replyChecks: plan } : {}),
    onProgress: (e) => {
      if (e.type === 'checked') checks.push(e.result);
      if (e.type === 'idle') idles++;
    },
  });
  await watcher.prepare();
  const ac = new AbortController();
  const watching = watcher.watch({ signal: ac.signal });
  await waitFor('the watcher in IDLE', () => idles > 0);
  return {
    watcher,
    log,
    checks,
    mails,
    get noops() {
      return noops;
    },
    get idles() {
      return idles;
    },
    async stop() {
      ac.abort();
      await watching;
      await client.logout().catch(() => client.close());
    },
  };
}

/** Alice submits one signed, encrypted offer to hitoshi (SMTP submission, STARTTLS + AUTH, as the outbox does). */
async function aliceSubmits(): Promise<{ t0: number; messageId: string }> {
  const a = await alice.open();
  const q = await a.queue({ kind: 'offer', to: hitoshi.email, sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n', purpose: 'chat' });
  const raw = await a.outbox.raw(q.entry.id);
  await a.outbox.remove(q.entry.id);
  const transport = nodemailer.createTransport(stack.smtpConfig('alice'));
  const t0 = Date.now();
  try {
    await transport.sendMail({ envelope: { from: alice.email, to: [hitoshi.email] }, raw });
  } finally {
    transport.close();
  }
  return { t0, messageId: q.messageId };
}

describe('hitoshi expects a reply from alice', () => {
  it('with nothing expected the watcher only IDLEs: no NOOP until the server\'s EXISTS, the mail is seen by IDLE', async () => {
    const w = await hitoshisWatcher();
    try {
      const { messageId } = await aliceSubmits();
      await waitFor('alice\'s mail at hitoshi', () => w.mails.find((m) => m.mail.verdict.ok && m.mail.verdict.messageId === messageId));
      expect(w.log.indexOf('exists')).toBeGreaterThanOrEqual(0);
      // the first NOOP is the one that ends IDLE after the EXISTS, never one before it
      expect(w.log.slice(0, w.log.indexOf('exists'))).not.toContain('noop');
      expect(w.watcher.replyChecks).toEqual({ noops: 0, found: 0 });
      const found = await waitFor('the pass that filed it', () => w.checks.find((c) => c.filed > 0));
      expect(found?.seenBy).toBe('idle');
      expect(found?.filed).toBe(1);
    } finally {
      await w.stop();
    }
  }, 60_000);

  it('while a reply is expected, a scheduled NOOP finds the new mail and the watcher classifies it; cancelled, IDLE alone again', async () => {
    // checks 50 ms apart for 3 s: on a loaded machine too, one comes before IDLE's own notice
    const w = await hitoshisWatcher({ firstMs: 50, factor: 1, maxMs: 50, maxChecks: 60 });
    try {
      const cancel = w.watcher.expectReply({ until: new Date(Date.now() + 30_000) });
      expect(w.watcher.expecting).toBe(1);
      const { messageId } = await aliceSubmits();
      await waitFor('alice\'s mail at hitoshi', () => w.mails.find((m) => m.mail.verdict.ok && m.mail.verdict.messageId === messageId));
      const found = await waitFor('the pass that filed it', () => w.checks.find((c) => c.filed > 0));
      expect(found?.filed).toBe(1);
      const spent = w.watcher.replyChecks;
      expect(spent.noops).toBeGreaterThan(0);
      expect(spent.noops).toBeLessThanOrEqual(60);
      // Which noticed it first, a check or IDLE, is a race the checks usually win
      // (the figure below); on a very busy machine IDLE may still be first, so it
      // is printed, not asserted. The pass and the counter agree either way.
      console.log(`reply expected: the mail was noticed by ${found?.seenBy} after ${spent.noops} NOOP(s)`);
      expect(spent.found).toBe(found?.seenBy === 'reply-check' ? 1 : 0);
      cancel();
      cancel();
      expect(w.watcher.expecting).toBe(0);
      const after = w.watcher.replyChecks.noops;
      const noopsAfter = w.noops;
      // long enough for many scheduled checks (50 ms apart), had it not been cancelled
      await sleep(1_000);
      expect(w.watcher.replyChecks.noops).toBe(after);
      expect(w.noops).toBe(noopsAfter);
    } finally {
      await w.stop();
    }
  }, 60_000);

  it('overlapping expectations are counted: the checks go on until the last is cancelled', async () => {
    const w = await hitoshisWatcher();
    try {
      const first = w.watcher.expectReply({ until: new Date(Date.now() + 30_000) });
      const second = w.watcher.expectReply({ until: new Date(Date.now() + 30_000) });
      expect(w.watcher.expecting).toBe(2);
      first();
      expect(w.watcher.expecting).toBe(1);
      await waitFor('a reply check', () => w.watcher.replyChecks.noops > 0);
      second();
      expect(w.watcher.expecting).toBe(0);
      const { messageId } = await aliceSubmits();
      await waitFor('alice\'s mail at hitoshi', () => w.mails.find((m) => m.mail.verdict.ok && m.mail.verdict.messageId === messageId));
      expect((await waitFor('the pass that filed it', () => w.checks.find((c) => c.filed > 0))).seenBy).toBe('idle');
    } finally {
      await w.stop();
    }
  }, 60_000);

  it('figure: submit -> hitoshi\'s watcher has the classified mail, without and with an expected reply', async () => {
    const rounds = 5;
    const plain: number[] = [];
    const expected: number[] = [];
    const noops: number[] = [];
    const seenBy: string[] = [];
    const w = await hitoshisWatcher();
    try {
      for (let i = 0; i < rounds * 2; i++) {
        const expecting = i % 2 === 1;
        // a quiet spell before each mail, as before a call's answer
        await sleep(1_500);
        const before = w.watcher.replyChecks.noops;
        const checksBefore = w.checks.length;
        const cancel = expecting ? w.watcher.expectReply({ until: new Date(Date.now() + 30_000) }) : () => undefined;
        const { t0, messageId } = await aliceSubmits();
        const got = await waitFor('alice\'s mail at hitoshi', () => w.mails.find((m) => m.mail.verdict.ok && m.mail.verdict.messageId === messageId));
        cancel();
        (expecting ? expected : plain).push(got.at - t0);
        if (expecting) noops.push(w.watcher.replyChecks.noops - before);
        seenBy.push(`${expecting ? 'expected' : 'plain'}:${(await waitFor('the pass that filed it', () => w.checks.slice(checksBefore).find((c) => c.filed > 0))).seenBy}`);
      }
    } finally {
      await w.stop();
    }
    console.log(
      `submit -> watcher has the verified mail (median of ${rounds}): IDLE only ${median(plain)} ms [${plain.join(', ')}]; ` +
        `reply expected ${median(expected)} ms [${expected.join(', ')}], reply-check NOOPs per mail ${noops.join(', ')}; seen by ${seenBy.join(' ')}`,
    );
    expect(plain).toHaveLength(rounds);
    expect(expected).toHaveLength(rounds);
    for (const n of noops) expect(n).toBeLessThanOrEqual(REPLY_CHECKS.maxChecks);
  }, 120_000);
});
