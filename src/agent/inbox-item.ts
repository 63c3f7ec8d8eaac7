/** The inbox line, shared by `peerdial inbox` (src/api/mail.ts) and the agent's desk. */
import type { Received } from './account.js';
import type { InboxMail } from '../mail/inbox.js';
import type { AddressEntry, PeerdialMessage } from '../wire/message.js';

/** One line of `peerdial inbox`: what arrived and what peerdial made of it. */
export interface InboxItem {
  uid: number;
  folder: string;
  ok: boolean;
  from?: string;
  kind?: string;
  created?: string;
  expires?: string;
  addresses?: AddressEntry[];
  reason?: string;
  detail?: string;
  learnedKey?: boolean;
  encrypted?: boolean;
  message?: PeerdialMessage;
  /** Rejected, from somebody who is not a contact (or a blocked one): summarised, not listed. */
  stranger?: boolean;
}

export function inboxItem(mail: InboxMail<Received>): InboxItem {
  const v = mail.verdict;
  if (v.ok && v.parsed?.ok) {
    const m = v.parsed.message;
    return {
      uid: mail.uid,
      folder: mail.folder,
      ok: true,
      from: m.from,
      kind: m.kind,
      created: m.created,
      expires: m.expires,
      addresses: m.addresses,
      learnedKey: v.parsed.learnedKey,
      encrypted: v.parsed.encrypted,
      message: m,
    };
  }
  const from = v.parsed && !v.parsed.ok ? v.parsed.from : undefined;
  return {
    uid: mail.uid,
    folder: mail.folder,
    ok: false,
    ...(from ? { from } : {}),
    reason: v.ok ? 'malformed' : v.reason,
    detail: v.ok ? 'no parse result' : v.detail,
    ...(v.stranger ? { stranger: true } : {}),
  };
}
