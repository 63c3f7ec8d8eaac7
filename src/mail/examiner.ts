/**
 * The examiner: decrypts, decompresses and parses received mail in a
 * worker thread with hard caps, so that no mail can take the agent down.
 * One warm worker, one mail at a time. The worker's heap is limited
 * (`resourceLimits`), openpgp's decompression is limited to
 * LIMITS.decompressedBytes, and a parse that takes longer than
 * LIMITS.parseMs has its worker terminated and replaced. A mail that
 * exceeds a cap comes back as a typed rejection (`too-large`).
 *
 * The replay check stays here (the ledger is the host's): the worker
 * parses with `seen = () => false`; `examine` applies `seen` after, in the
 * parser's order (replay is its last check).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { PeerdialError } from '../errors.js';
import { readPublicKey } from '../wire/identity.js';
import { LIMITS } from '../wire/limits.js';
import { sanitizeText } from '../wire/sanitize.js';
import type { ParseAccepted, ParseContext, ParseRejected, ParseResult } from '../wire/parse.js';
import { clampDelay } from '../util/timers.js';

/** A contact as the worker needs it: armored pinned key, blocked. */
export interface ExamineContact {
  email: string;
  publicKey?: string;
  blocked: boolean;
}

export interface ExamineContext {
  selfEmail: string;
  now: Date;
  policy: ParseContext['policy'];
  contacts: ExamineContact[];
  /** An invite is out: a sender who is not a contact is read as one without a key (an introduction may come from them). */
  inviting?: boolean;
  seen(nonce: string, messageId: string): boolean;
}

/** @internal host -> worker */
export interface ExamineJob {
  id: number;
  raw: Uint8Array;
  selfEmail: string;
  nowMs: number;
  policy: ParseContext['policy'];
  contacts: ExamineContact[];
  inviting?: boolean;
}

/** @internal worker -> host */
export interface ExamineReply {
  id: number;
  result: ParseRejected | (Omit<ParseAccepted, 'senderKey'> & { senderKeyArmored: string });
}

export interface ExaminerOptions {
  /** Heap of the worker, MB (default LIMITS.parseHeapMb). */
  heapMb?: number;
  /** Wall time per mail before the worker is replaced (default LIMITS.parseMs). */
  timeoutMs?: number;
}

/** The worker's file: next to this one, or (when this runs from src/ under a test runner) in the build. */
function workerFile(): URL {
  const here = new URL('./examiner-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = new URL(here.href.replace(/\/src\/mail\/examiner-worker\.js$/, '/dist/mail/examiner-worker.js'));
  if (existsSync(fileURLToPath(built))) return built;
  throw new PeerdialError('MISSING_PACKAGE', `The mail examiner (${fileURLToPath(here)}) is missing.`, { hint: 'Build peerdial: npm run build' });
}

interface Pending {
  job: ExamineJob;
  resolve: (r: ExamineReply['result']) => void;
}

export class Examiner {
  private worker?: Worker;
  private ready?: Promise<void>;
  private queue: Pending[] = [];
  private current?: { pending: Pending; timer: NodeJS.Timeout | undefined };
  private nextId = 1;
  private closed = false;
  /** Workers started so far (1 while none had to be replaced). */
  started = 0;

  constructor(
    private readonly privateKey: string,
    private readonly o: ExaminerOptions = {},
  ) {}

  /** Starts the worker now, so that the first mail does not wait for it. */
  warm(): void {
    this.spawn();
  }

  private spawn(): void {
    if (this.worker || this.closed) return;
    const heap = this.o.heapMb ?? LIMITS.parseHeapMb;
    const w = new Worker(workerFile(), {
      workerData: { privateKey: this.privateKey },
      resourceLimits: { maxOldGenerationSizeMb: heap, maxYoungGenerationSizeMb: Math.max(4, Math.floor(heap / 8)), stackSizeMb: 4 },
      stdout: false,
      stderr: false,
    });
    this.started++;
    this.worker = w;
    this.ready = new Promise<void>((resolve) => {
      const onReady = (m: unknown) => {
        if ((m as { ready?: boolean })?.ready) {
          w.off('message', onReady);
          resolve();
        }
      };
      w.on('message', onReady);
      w.once('exit', () => resolve());
    });
    w.on('message', (m: ExamineReply | { ready: true }) => {
      if ('id' in m && this.current && this.current.pending.job.id === m.id) this.finish(m.result);
    });
    w.on('error', (err: Error & { code?: string }) => {
      if (this.worker !== w) return;
      const oom = err.code === 'ERR_WORKER_OUT_OF_MEMORY';
      this.lose(w, oom ? { reason: 'too-large', detail: `parsing it needs more than ${heap} MB` } : { reason: 'malformed', detail: `the examiner failed (${err.message})` });
    });
    w.on('exit', () => {
      if (this.worker === w) this.lose(w, { reason: 'malformed', detail: 'the examiner stopped' });
    });
    // Idle, it keeps no process alive (after the listeners: adding one refs it again); busy, it does.
    w.unref();
  }

  /** The worker is gone (or is being put down): the mail it held is rejected, the next one gets a fresh worker. */
  private lose(w: Worker, why: { reason: 'too-large' | 'malformed'; detail: string }): void {
    if (this.worker === w) this.worker = undefined;
    void w.terminate().catch(() => undefined);
    if (this.current) this.finish({ ok: false, ...why });
  }

  private finish(result: ExamineReply['result']): void {
    const cur = this.current;
    if (!cur) return;
    if (cur.timer) clearTimeout(cur.timer);
    this.current = undefined;
    this.worker?.unref();
    cur.pending.resolve(result);
    this.pump();
  }

  private pump(): void {
    if (this.current || this.closed) return;
    const next = this.queue.shift();
    if (!next) return;
    this.spawn();
    const w = this.worker!;
    w.ref();
    const timeout = this.o.timeoutMs ?? LIMITS.parseMs;
    // The clock runs from when the worker has the mail, not while a fresh worker starts.
    this.current = { pending: next, timer: undefined };
    void this.ready!.then(() => {
      if (this.worker !== w || this.current?.pending !== next) return;
      this.current.timer = setTimeout(() => this.lose(w, { reason: 'too-large', detail: `parsing it took longer than ${Math.round(timeout / 1000)} s` }), clampDelay(timeout));
      this.current.timer.unref();
      w.postMessage(next.job, [next.job.raw.buffer as ArrayBuffer]);
    });
  }

  /** Decrypt, decompress and parse one mail under the caps. Never throws for bad input. */
  async examine(raw: Uint8Array, ctx: ExamineContext): Promise<ParseResult> {
    if (this.closed) throw new PeerdialError('ABORTED', 'The examiner is closed.');
    const job: ExamineJob = {
      id: this.nextId++,
      raw: new Uint8Array(raw), // a copy of its own, moved to the worker
      selfEmail: ctx.selfEmail,
      nowMs: ctx.now.getTime(),
      policy: ctx.policy,
      contacts: ctx.contacts,
      ...(ctx.inviting ? { inviting: true } : {}),
    };
    const reply = await new Promise<ExamineReply['result']>((resolve) => {
      this.queue.push({ job, resolve });
      this.pump();
    });
    if (!reply.ok) return reply;
    const { senderKeyArmored, ...rest } = reply;
    const accepted: ParseAccepted = { ...rest, senderKey: await readPublicKey(senderKeyArmored) };
    const m = accepted.message;
    if (ctx.seen(m.nonce, accepted.messageId)) {
      return { ok: false, reason: 'replayed', detail: sanitizeText(`nonce ${m.nonce} or ${accepted.messageId} was already processed`), message: m, messageId: accepted.messageId, from: m.from };
    }
    return accepted;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.resolve({ ok: false, reason: 'malformed', detail: 'the examiner was closed' });
    if (this.current) this.finish({ ok: false, reason: 'malformed', detail: 'the examiner was closed' });
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate().catch(() => undefined);
  }
}
