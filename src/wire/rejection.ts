/** How parseMail's checks turn a mail away: a typed rejection, thrown and made into a ParseRejected at the end. */
import type { PeerdialMessage, RejectReason } from './message.js';

export class Rejection extends Error {
  constructor(
    readonly reason: RejectReason,
    readonly detail: string,
    /** Set only when the mail was verified and is merely stale (expired or replayed). */
    readonly verified?: PeerdialMessage,
  ) {
    super(detail);
  }
}

export function reject(reason: RejectReason, detail: string): never {
  throw new Rejection(reason, detail);
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
