/**
 * The local web page, in a real headless Chromium, against the real mail
 * stack: hitoshi runs `peerdial web` (his agent with the page); alice calls
 * from her terminal. The page lists hitoshi's contacts, a call that rings
 * shows up without a reload (the agent's event stream), it is answered
 * there and chat goes both ways with alice's terminal; the next call is
 * declined from the page; whoever lacks the token, or comes from another
 * Origin or Host, gets 403 and nothing else; and the video view's own
 * RTCPeerConnection plays a picture, two tabs calling each other through a
 * stand-in for the agent's browser calls.
 */
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { BIN, ROOT, introduce, makePeer, runCli, tempDir, waitFor, type Peer } from './harness/peers.js';
import { launchChromium } from './harness/chromium.js';
import { Agent } from '../src/agent/agent.js';
import type { BrowserCalls, BrowserOffer } from '../src/agent/browser-calls-types.js';
import { startPageServer } from '../src/web/server.js';

let stack: MailStack;
let dir: string;
let alice: Peer;
let hitoshi: Peer;
let browser: Browser;
const running: ChildProcess[] = [];

interface Proc {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

function start(args: string[]): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  running.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  return { child, out: () => out, err: () => err, exited: new Promise((r) => child.on('close', (c) => r(c))) };
}

/** hitoshi's `peerdial web`: his agent with the page; resolves once the mailbox is watched and the address printed. */
async function hitoshiWeb(): Promise<{ proc: Proc; url: string; port: number }> {
  const proc = start(['--config', hitoshi.configFile, 'web']);
  proc.child.stdin!.end();
  const url = await waitFor('the page address', () => /web page: (http:\/\/127\.0\.0\.1:\d+\/#t=[A-Za-z0-9_-]+)/.exec(proc.out())?.[1], 60_000);
  await waitFor('mailbox connected', () => proc.out().includes('mailbox connected'), 60_000);
  return { proc, url, port: Number(new URL(url).port) };
}

async function stopWeb(proc: Proc): Promise<void> {
  proc.child.kill('SIGTERM');
  expect(await proc.exited, proc.out() + proc.err()).toBe(0);
}

function request(port: number, p: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: string; csp?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method: opts.method ?? 'GET', headers: opts.headers ?? {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      const csp = res.headers['content-security-policy'];
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ...(typeof csp === 'string' ? { csp } : {}) }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

async function openPage(url: string): Promise<Page> {
  const page = await browser.newPage();
  page.setDefaultTimeout(120_000);
  await page.goto(url);
  await page.waitForSelector('body[data-ready="yes"]');
  return page;
}

beforeAll(async () => {
  ensureMailServers();
  stack = await startMailStack({ users: ['alice', 'hitoshi'] });
  dir = await tempDir('web');
  alice = await makePeer(stack, 'alice', dir, { ringSeconds: 120 });
  hitoshi = await makePeer(stack, 'hitoshi', dir, { answer: 'ring', ringSeconds: 120 });
  await introduce(alice, hitoshi);
  browser = await launchChromium();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stack?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/**
 * A stand-in for the agent's browser calls (agent/browser-calls.ts carries
 * the descriptions by mail): it hands a tab's offer to every open page as
 * if it came from alice, and the answer back. Only 127.0.0.1 candidates go
 * across, so the tabs' media stay on loopback.
 */
class LoopbackCalls implements BrowserCalls {
  private readonly listeners = new Set<(o: BrowserOffer) => void>();
  private readonly waiting = new Map<string, (answerSdp: string) => void>();
  readonly hungUp: string[] = [];
  readonly offers: string[] = [];
  readonly answers: string[] = [];
  private n = 0;

  async call(_contact: string, offerSdp: string, opts: { video: boolean; audio: boolean }): Promise<{ callId: string; answerSdp: string }> {
    const callId = `tab-call-${++this.n}`;
    this.offers.push(offerSdp);
    const answerSdp = await new Promise<string>((resolve) => {
      this.waiting.set(callId, resolve);
      for (const l of this.listeners) l({ callId, from: alice.email, offerSdp: loopbackOnly(offerSdp), ...opts });
    });
    return { callId, answerSdp: loopbackOnly(answerSdp) };
  }
  async answer(callId: string, answerSdp: string): Promise<void> {
    this.answers.push(answerSdp);
    this.waiting.get(callId)?.(answerSdp);
  }
  async hangup(callId: string): Promise<void> {
    this.hungUp.push(callId);
  }
  onOffer(listener: (o: BrowserOffer) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

function loopbackOnly(sdp: string): string {
  return sdp
    .split('\r\n')
    .filter((l) => !l.startsWith('a=candidate:') || l.split(' ')[4] === '127.0.0.1')
    .join('\r\n');
}

/** Frames the <video> has decoded and shown from now until `count` (requestVideoFrameCallback). */
function framesShown(page: Page, count: number): Promise<number> {
  return page.evaluate(
    (n) =>
      new Promise<number>((resolve) => {
        const v = document.getElementById('remote-video') as HTMLVideoElement;
        let seen = 0;
        const each = () => {
          seen++;
          if (seen >= n) resolve(seen);
          else v.requestVideoFrameCallback(each);
        };
        v.requestVideoFrameCallback(each);
      }),
    count,
  );
}

describe('the page in the browser', () => {
  it('lists hitoshi\'s contacts, and alice\'s announced address as it comes; alice\'s call rings in the open page, is answered there, and chat goes both ways with her terminal', async () => {
    const web = await hitoshiWeb();
    try {
      const page = await openPage(web.url);
      // the token left the address bar; the page keeps it for this tab
      expect(new URL(page.url()).hash).toBe('');
      await expect(page.textContent('#me')).resolves.toBe(hitoshi.email);
      const row = page.locator(`#contacts tr[data-email="${alice.email}"]`);
      await row.waitFor();
      const cells = await row.locator('td').allTextContents();
      expect(cells.slice(0, 4)).toEqual(['alice', alice.email, 'introduced', 'no address yet']);
      await expect(page.isVisible('#ringing-none')).resolves.toBe(true);

      // alice announces her addresses: hitoshi's agent takes the mail, and the open page shows them, valid
      const announced = await runCli(['--config', alice.configFile, 'announce', 'hitoshi'], { timeoutMs: 120_000 });
      expect(announced.code, announced.stderr).toBe(0);
      await row.locator('td .valid').waitFor({ timeout: 90_000 });
      expect(await row.locator('td').nth(3).textContent()).toMatch(/^\S.* valid, .+ ago$/);

      const call = start(['--config', alice.configFile, 'call', 'hitoshi']);
      // the page was not reloaded: the ringing call came over the event stream
      const ringing = page.locator('#ringing li', { hasText: alice.email });
      await ringing.waitFor({ timeout: 90_000 });
      await ringing.locator('button.answer').click();

      await waitFor('alice connected', () => call.err().includes('connected to hitoshi@example.test'), 90_000);
      const box = page.locator('#calls .call', { hasText: alice.email });
      await box.locator('.line.note', { hasText: `connected to ${alice.email}` }).waitFor();

      call.child.stdin!.write('hello from the terminal\n');
      await box.locator('.line.remote', { hasText: 'hello from the terminal' }).waitFor();

      await box.locator('input[name="line"]').fill('hello from the page');
      await box.locator('input[name="line"]').press('Enter');
      await waitFor('the page\'s line at alice\'s terminal', () => call.out().includes(`${hitoshi.email}: hello from the page`), 60_000);
      await box.locator('.line.local', { hasText: 'hello from the page' }).waitFor();

      await fs.mkdir(path.join(ROOT, 'docs'), { recursive: true });
      await page.screenshot({ path: path.join(ROOT, 'docs', 'web.png'), fullPage: true });

      // alice hangs up (end of her input): the page says so, her command ends by itself
      call.child.stdin!.end();
      await box.locator('.line.note', { hasText: `${alice.email} hung up` }).waitFor();
      expect(await call.exited, call.err()).toBe(0);
      // the call log on the page has the call, from the agent's log
      await page.locator('#log tr', { hasText: alice.email }).first().waitFor();
      await page.close();
    } finally {
      await stopWeb(web.proc);
    }
  });

  it('a call declined from the page: alice\'s terminal hears "declined"; one nobody answers shows as missed', async () => {
    const web = await hitoshiWeb();
    try {
      const page = await openPage(web.url);
      const calling = runCli(['--config', alice.configFile, 'call', 'hitoshi'], { timeoutMs: 180_000 });
      const ringing = page.locator('#ringing li', { hasText: alice.email });
      await ringing.waitFor({ timeout: 90_000 });
      await ringing.locator('button.decline').click();
      await ringing.waitFor({ state: 'detached' });
      const r = await calling;
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('declined');

      // nobody answers the next one: it rings, stops, and the page counts it as missed
      const unanswered = runCli(['--config', alice.configFile, 'call', 'hitoshi', '--ring-seconds', '5'], { timeoutMs: 180_000 });
      await page.locator('#ringing li', { hasText: alice.email }).waitFor({ timeout: 90_000 });
      expect((await unanswered).code).toBe(2);
      await page.locator('#log tr.missed', { hasText: alice.email }).waitFor({ timeout: 90_000 });
      await expect(page.textContent('#missed')).resolves.toBe('(1 missed)');
      await page.close();
    } finally {
      await stopWeb(web.proc);
    }
  });

  it('"Chat" next to alice calls her from the page; her `peerdial listen` answers, lines go both ways, the page hangs up', async () => {
    const web = await hitoshiWeb();
    const listen = start(['--config', alice.configFile, 'listen']);
    try {
      await waitFor('alice listening', () => listen.err().includes('waiting for a call'), 60_000);
      const page = await openPage(web.url);
      await page.locator(`#contacts tr[data-email="${alice.email}"] button.chat`).click();
      const box = page.locator('#calls .call', { hasText: `to ${alice.email}` });
      await box.locator('.line.note', { hasText: `connected to ${alice.email}` }).waitFor({ timeout: 120_000 });
      await box.locator('input[name="line"]').fill('are you there?');
      await box.locator('input[name="line"]').press('Enter');
      await waitFor('the page\'s line at alice\'s terminal', () => listen.out().includes(`${hitoshi.email}: are you there?`), 60_000);
      listen.child.stdin!.write('yes, in the terminal\n');
      await box.locator('.line.remote', { hasText: 'yes, in the terminal' }).waitFor();
      await box.locator('button.decline', { hasText: 'Hang up' }).click();
      await box.locator('.line.note', { hasText: 'you hung up' }).waitFor();
      expect(await listen.exited, listen.err()).toBe(0);
      await page.close();
    } finally {
      if (listen.child.exitCode === null) listen.child.kill('SIGTERM');
      await stopWeb(web.proc);
    }
  });

  it('a file sent from the page arrives in alice\'s download folder', async () => {
    const acc = await alice.open();
    await acc.contacts.update(hitoshi.email, (c) => (c.answer = 'auto-answer'));
    const aliceAgent = new Agent({ account: acc });
    aliceAgent.start();
    const web = await hitoshiWeb();
    try {
      const page = await openPage(web.url);
      const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
      await page.locator(`#contacts tr[data-email="${alice.email}"] input[type="file"]`).setInputFiles({ name: 'notes.bin', mimeType: 'application/octet-stream', buffer: data });
      await page.locator('#notices li', { hasText: 'notes.bin to alice: sent' }).waitFor({ timeout: 120_000 });
      const saved = path.join(alice.downloadDir, 'notes.bin');
      expect(Buffer.compare(await fs.readFile(saved), data)).toBe(0);
      await page.close();
    } finally {
      await stopWeb(web.proc);
      await aliceAgent.stop();
      await acc.contacts.update(hitoshi.email, (c) => delete c.answer);
    }
  });

  it('without the token, or from another Origin or Host, a request gets 403 and an empty body', async () => {
    const web = await hitoshiWeb();
    try {
      const token = new URL(web.url).hash.replace('#t=', '');
      // `peerdial web` beside the running agent asks it: the same page, the same token
      const again = await runCli(['--config', hitoshi.configFile, 'web'], { timeoutMs: 60_000 });
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toContain(web.url);
      const own = `127.0.0.1:${web.port}`;
      // the check can pass: with the token, from here, the state comes
      const ok = await request(web.port, '/api/state', { headers: { 'X-Peerdial-Token': token } });
      expect(ok.status).toBe(200);
      expect(JSON.parse(ok.body).me).toBe(hitoshi.email);

      const refused = [
        await request(web.port, '/api/state'),
        await request(web.port, '/api/state', { headers: { 'X-Peerdial-Token': 'x'.repeat(token.length) } }),
        await request(web.port, '/api/events'),
        await request(web.port, `/api/events?t=${token}`, { headers: { Host: `rebound.example:${web.port}` } }),
        await request(web.port, '/api/state', { headers: { 'X-Peerdial-Token': token, Host: `rebound.example:${web.port}` } }),
        await request(web.port, '/', { headers: { Host: `rebound.example:${web.port}` } }),
        await request(web.port, '/api/state', { headers: { 'X-Peerdial-Token': token, Origin: 'http://attacker.example' } }),
        await request(web.port, '/api/decline', { method: 'POST', headers: { 'X-Peerdial-Token': token, Origin: 'http://attacker.example', 'Content-Type': 'application/json', Host: own }, body: '{}' }),
        await request(web.port, '/api/state', { headers: { 'X-Peerdial-Token': token, 'Sec-Fetch-Site': 'cross-site' } }),
      ];
      for (const r of refused) expect(r).toEqual({ status: 403, body: '' });

      // the page itself without the token: it asks for the printed address and shows nothing of the agent
      const page = await browser.newPage();
      await page.goto(`http://${own}/`);
      await page.waitForSelector('#no-token', { state: 'visible', timeout: 60_000 });
      expect(await page.isVisible('main')).toBe(false);
      expect(await page.content()).not.toContain(alice.email);

      // the page loads nothing from elsewhere and runs no inline script
      const shell = await request(web.port, '/');
      expect(shell.status).toBe(200);
      expect(shell.csp).toContain("default-src 'none'");
      expect(shell.csp).toContain("script-src 'self'");
      expect(shell.body).not.toMatch(/https?:\/\//);
      await page.close();
    } finally {
      await stopWeb(web.proc);
    }
  });

  it('the video view: one tab calls with its camera, another answers; each plays the other\'s picture, and hanging up reaches the agent', async () => {
    const calls = new LoopbackCalls();
    const agent = new Agent({ account: await hitoshi.open() });
    const server = await startPageServer({ agent, browserCalls: calls });
    try {
      const caller = await openPage(server.url);
      const callee = await openPage(server.url);
      await expect(caller.isVisible('#video-off')).resolves.toBe(false);
      await caller.locator(`#contacts tr[data-email="${alice.email}"] button.video`).click();
      const offer = callee.locator('#offers li', { hasText: alice.email });
      await offer.waitFor({ timeout: 120_000 });
      // the offer was complete when it left the tab: gathering had finished, candidates inside
      expect(calls.offers[0]).toMatch(/^a=candidate:/m);
      expect(calls.offers[0]).toMatch(/^m=video /m);
      // and a loopback one among them, the only kind handed across
      expect(loopbackOnly(calls.offers[0]!)).toMatch(/^a=candidate:\S+ \d+ udp \d+ 127\.0\.0\.1 /im);
      await offer.locator('button.answer').click();
      await callee.locator('#video-status', { hasText: 'connected' }).waitFor({ timeout: 120_000 });
      await caller.locator('#video-status', { hasText: 'connected' }).waitFor({ timeout: 120_000 });
      // at least 60 decoded frames each way (the fake camera sends about 30 per second)
      const [toCaller, toCallee] = await Promise.all([framesShown(caller, 60), framesShown(callee, 60)]);
      expect(toCaller).toBeGreaterThanOrEqual(60);
      expect(toCallee).toBeGreaterThanOrEqual(60);
      await caller.locator('#video-hangup').click();
      await waitFor('the hang-up at the agent', () => calls.hungUp.length === 1, 60_000);
      expect(calls.hungUp).toEqual(['tab-call-1']);
      await caller.close();
      await callee.close();
    } finally {
      await server.close();
      await agent.stop();
    }
  });
});
