/**
 * The worker thread in which one mail at a time is decrypted,
 * decompressed and parsed (see examiner.ts). It holds the account's
 * private key and nothing else of the account; the contacts' keys come
 * with each job. What it can spend is capped from outside (heap, time)
 * and inside (openpgp's decompression limit).
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as openpgp from 'openpgp';
import { loadIdentity, readPublicKey } from '../wire/identity.js';
import { LIMITS } from '../wire/limits.js';
import { parseMail, type ContactView } from '../wire/parse.js';
import type { ExamineJob, ExamineReply } from './examiner.js';

openpgp.config.maxDecompressedMessageSize = LIMITS.decompressedBytes;

const port = parentPort!;
const identity = await loadIdentity((workerData as { privateKey: string }).privateKey);
const keys = new Map<string, openpgp.PublicKey>();
/** For tests of the quarantine only: a parse that never ends. */
const hang = process.env.PEERDIAL_TEST_EXAMINE_HANG === '1';

async function keyOf(armored: string): Promise<openpgp.PublicKey> {
  let k = keys.get(armored);
  if (!k) {
    k = await readPublicKey(armored);
    if (keys.size > 1000) keys.clear();
    keys.set(armored, k);
  }
  return k;
}

port.on('message', (job: ExamineJob) => {
  void (async () => {
    if (hang) return;
    const views = new Map<string, ContactView>();
    for (const c of job.contacts) {
      const view: ContactView = { blocked: c.blocked };
      if (c.publicKey) view.publicKey = await keyOf(c.publicKey);
      views.set(c.email, view);
    }
    const result = await parseMail(Buffer.from(job.raw.buffer, job.raw.byteOffset, job.raw.byteLength), {
      self: { email: job.selfEmail, identity },
      now: new Date(job.nowMs),
      contact: (email) => views.get(email.toLowerCase()) ?? (job.inviting ? {} : undefined),
      policy: job.policy,
      // The replay check is the host's: it holds the ledger.
      seen: () => false,
    });
    let reply: ExamineReply;
    if (result.ok) {
      const { senderKey, ...rest } = result;
      reply = { id: job.id, result: { ...rest, senderKeyArmored: senderKey.armor() } };
    } else {
      reply = { id: job.id, result };
    }
    port.postMessage(reply);
  })().catch((err: unknown) => {
    port.postMessage({ id: job.id, result: { ok: false, reason: 'malformed', detail: `mail could not be processed (${(err as Error)?.message})` } } satisfies ExamineReply);
  });
});
port.postMessage({ ready: true });
