/**
 * One new mail, as the inbox watcher (src/mail/inbox.ts) handles it: size
 * and outer headers first (never the body, no \Seen), then the ledger
 * (seen before, being examined when the process died, quarantined), then
 * the screen and the size limit, and only then the body, fetched and
 * classified. Verified mail is moved into peerdial's folder; every verdict
 * is recorded in the ledger and reported through `onMail`.
 */
import { EXAMINING } from '../store/ledger.js';
import { HEADER_SIGNER, HEADER_VERSION } from '../wire/headers.js';
import { LIMITS } from '../wire/limits.js';
import { sanitizeText } from '../wire/sanitize.js';
import type { MailOutline } from '../wire/parse.js';
import type { InboxOptions, Verdict } from './inbox-types.js';

/**
 * Handles the mail with this UID in the open mailbox `box`: true when it
 * was verified (and filed), false when it was left where it is.
 * `countCommand` is called once for each IMAP command sent.
 */
export async function handleNewMail<V extends Verdict>(o: InboxOptions<V>, uid: number, box: string, countCommand: () => void): Promise<boolean> {
  const c = o.client;
  const now = o.now?.() ?? new Date();
  countCommand();
  // First round trip: envelope, size and two outer headers, never the body
  // (BODY.PEEK[HEADER.FIELDS]: no \Seen on anything).
  const meta = await c.fetchOne(String(uid), { uid: true, size: true, envelope: true, headers: [HEADER_VERSION, HEADER_SIGNER] }, { uid: true });
  const messageId = (meta && meta.envelope?.messageId) || '';
  const id = messageId || `uid:${uid}`;
  const reject = (reason: string, detail: string): V => ({ ok: false, messageId, reason, detail: sanitizeText(detail) }) as V;
  if (!meta || !meta.size) {
    // Found by the search, gone before the first fetch (no data, size 0): another mail client took it.
    await o.onMail({ uid, verdict: reject('vanished', vanished(`UID ${uid}`)), folder: box });
    return false;
  }
  const before = await o.ledger.resultOf(id);
  if (before === EXAMINING) {
    // The process died while examining it: report it once, never look inside again.
    await o.ledger.record({ messageId: id, result: 'quarantined', now });
    await o.onMail({ uid, verdict: reject('quarantined', `examining ${id} stopped the process once; it stays in ${box}, never parsed again`), folder: box });
    return false;
  }
  if (before === 'quarantined') return false;
  // in peerdial's own folder, mail it filed there itself (from the INBOX) is seen again: not news
  if (before !== undefined && box === o.folder) return false;
  if (before !== undefined) {
    // Already handled once (a copy, a replay, or a restart after a crash): report, leave alone.
    await o.onMail({ uid, verdict: reject('replayed', `Message-ID ${id} was processed before`), folder: box });
    return false;
  }
  const outline: MailOutline = {
    size: meta.size ?? 0,
    from: (meta.envelope?.from ?? []).map((a) => a.address ?? ''),
    headers: meta.headers ?? '',
    ...(messageId ? { messageId } : {}),
  };
  let verdict: V | undefined = await o.screen?.(outline, uid);
  if (!verdict && outline.size > LIMITS.mailBytes) {
    verdict = reject('too-large', `mail is ${outline.size} bytes, more than ${LIMITS.mailBytes} (LIMITS.mailBytes)`);
  }
  if (!verdict) {
    await o.ledger.beginExamining(id, now);
    countCommand();
    const body = await c.fetchOne(String(uid), { uid: true, source: { maxLength: LIMITS.mailBytes } }, { uid: true });
    // A mail expunged by another client meanwhile comes back without (or with an empty) source.
    verdict = body && body.source && body.source.length > 0 ? await o.classify(body.source, uid) : reject('vanished', vanished(id));
  }
  await o.ledger.record({
    messageId: id,
    result: verdict.ok ? 'accepted' : verdict.reason,
    now,
    ...(verdict.nonce ? { nonce: verdict.nonce } : {}),
    ...(verdict.expires ? { expires: verdict.expires } : {}),
  });
  if (verdict.ok && verdict.messageId && verdict.messageId !== id) {
    // The parser's Message-ID names the same mail: remember it too.
    await o.ledger.record({ messageId: verdict.messageId, result: 'accepted', now, ...(verdict.expires ? { expires: verdict.expires } : {}) });
  }
  let folder = box;
  if (verdict.ok && box !== o.folder) {
    countCommand();
    await c.messageMove(String(uid), o.folder, { uid: true });
    folder = o.folder;
  }
  await o.onMail({ uid, verdict, folder });
  return verdict.ok;
}

/** What a mail that another client deleted or moved before peerdial read it is reported as. */
function vanished(what: string): string {
  return `${what} was deleted or moved by another mail client before peerdial read it (a client that deletes from the server at once, or a filter, can lose calls; see "Using peerdial beside other mail clients" in the README)`;
}
