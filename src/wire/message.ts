/**
 * The typed payload of an address mail (protocol v1). Pure data: no I/O.
 */
export const MESSAGE_KINDS = ['announce', 'offer', 'answer', 'decline', 'cancel', 'hangup', 'message', 'introduce', 'introduced', 'update'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

/** One reachable address of the sender, in a form a human can read. */
export interface AddressEntry {
  /** IP address (v4 or v6), without brackets. */
  ip: string;
  /** UDP port, when known (ICE candidates carry one). */
  port?: number;
  /** How it was found: interface, stun (server-reflexive), mapping (router port map), relay. */
  source: 'interface' | 'stun' | 'mapping' | 'relay';
  /** Classification, see src/address/classify.ts (public, private, cgnat, ula, ...). */
  scope: string;
}

export interface PeerdialMessage {
  v: 1;
  kind: MessageKind;
  /** Sender mail address (lower-case). Must match the outer From and the signing key. */
  from: string;
  /** Recipient mail address (lower-case). */
  to: string;
  /** Random id tying offer, answer, cancel, hangup together; for announce/message a fresh id. */
  callId: string;
  /** ISO 8601 UTC. */
  created: string;
  /** ISO 8601 UTC; a mail read after this is rejected as expired. */
  expires: string;
  /** Random, unique per mail: replay protection. */
  nonce: string;
  addresses: AddressEntry[];
  /** Complete (non-trickle) SDP for offer and answer. */
  sdp?: string;
  /** Free text: the text of a `message`, the reason of a `decline`/`hangup`. */
  text?: string;
  /** What the caller wants from the session (chat, pipe, file, forward, audio, video). */
  purpose?: string;
  /**
   * `introduce` (joiner to inviter) and `introduced` (the inviter's
   * confirmation): HMAC-SHA256 under the invite's one-time secret over both
   * addresses and fingerprints (src/wire/invite.ts), base64url.
   */
  mac?: string;
  /**
   * An `offer` made against the callee's standing answer (wire/standing.ts):
   * its id. The callee connects when the offer arrives and mails no answer.
   * Sent only to a peer that made a standing answer, so only to a peerdial
   * that reads this field.
   */
  standing?: string;
  /**
   * An `update` (wire/update.ts): which restart of the call its `sdp`
   * belongs to, and whether it is the restarting side's offer or the
   * reply to it.
   */
  restart?: { generation: number; role: 'offer' | 'answer' };
  /**
   * A group call (a mesh of at most LIMITS.groupMembers, agent/group.ts):
   * an `offer` only. `members` is the whole group in order, the caller
   * first; `from` comes before `to` in it (the member earlier in the list
   * offers to the later one). Nothing else: no names, no addresses.
   */
  group?: GroupField;
  /** Optional attachment of a `message` (voicemail audio), base64. */
  attachment?: { filename: string; contentType: string; data: string };
}

/** The group of a group call's offer (PeerdialMessage.group). */
export interface GroupField {
  /** Random id of the group, the same in every offer of it. */
  id: string;
  /** Mail addresses (lower-case), the caller first; 2 to LIMITS.groupMembers, no repeats. */
  members: string[];
}

/** Why a mail was not accepted. Stable strings: they appear in logs and tests. */
export const REJECT_REASONS = [
  'not-ours',
  'unsupported-version',
  'malformed',
  'bad-signature',
  'key-mismatch',
  'unknown-sender',
  'blocked-sender',
  'wrong-recipient',
  'sender-mismatch',
  'expired',
  'replayed',
  'undecryptable',
  /** Over one of the limits in limits.ts (size, decompressed size, parse time or memory). */
  'too-large',
  /** `created` lies further in the future than the allowed clock skew. */
  'from-the-future',
  /** `expires - created` is longer than its kind may live. */
  'lifetime-too-long',
  /** The process died once while examining this mail: never parsed again. */
  'quarantined',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];
