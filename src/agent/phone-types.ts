/**
 * What the phone (phone.ts) shows the rest of peerdial: its options, the
 * calls it hands out (ringing, active) and the events it tells.
 */
import type { GroupField, PeerdialMessage } from '../wire/message.js';
import type { CallSession, SessionFactory } from '../session/index.js';
import type { Channel, CandidatePair, IceConfig, AnswerMedia, MediaSpec } from '../session/types.js';
import type { Account } from './account.js';
import type { Timers } from '../util/timers.js';
import type { TrustLevel } from '../store/contacts.js';
import type { Relays } from './relays.js';

export type Direction = 'out' | 'in';

/** What a call is for; the callee's agent picks its handler by it. */
export type Purpose = 'chat' | 'pipe' | 'file' | 'forward' | 'view' | 'media';

/** A connected call, handed to whoever runs what the session carries. */
export interface ActiveCall {
  callId: string;
  direction: Direction;
  peer: string;
  purpose: string;
  session: CallSession;
  /** The control channel (the first one): hang-up is said here. */
  control: Channel;
  pair: CandidatePair;
  /** From "call placed" (caller) or "offer seen" (callee) to connected. */
  setupMs: number;
  /** States so far, oldest first. */
  states: string[];
  /** Hang up: says bye over the channel and closes. */
  hangup(): void;
  /** Resolves with the final state when the call has ended. */
  ended: Promise<string>;
  /** This call's certificate (DTLS, and the TLS lane of carriers/tls-lane.ts) and the peer's verified description. */
  tls?: { certPemFile: string; keyPemFile: string; peerSdp: string };
  /** One pair of a group call (agent/group.ts): the group its offer named. */
  group?: GroupField;
  /**
   * When the call can move to a new transport after an address change
   * (phone-restart.ts): `session`, `control`, `pair` and `tls` above are
   * then the new transport's. Absent where a call cannot restart (media
   * calls, a browser tab's calls).
   */
  transport?: CallTransport;
}

/** The transport a call is on, for carriers that follow it (agent/follow-transport.ts). */
export interface CallTransport {
  /** 0 for the call's first transport, n after its n-th restart. */
  readonly generation: number;
  /** A restart is under way: the present transport may be dead. */
  readonly restarting: boolean;
  /** Called once the call is on a new transport; returns the unsubscribe. */
  onSwitch(cb: (generation: number) => void): () => void;
}

export type PhoneEvent =
  | { type: 'state'; callId: string; direction: Direction; peer: string; state: string }
  | { type: 'ringing'; call: RingingCall }
  | { type: 'connected'; call: ActiveCall }
  | { type: 'ended'; callId: string; direction: Direction; peer: string; state: string; detail?: string; states: string[] }
  /** `stranger`: the sender is not a contact (or is blocked); such mail is counted (Account.strangers), not logged one by one. */
  | { type: 'mail-rejected'; from?: string; reason: string; detail: string; stranger?: boolean }
  | { type: 'message'; message: PeerdialMessage }
  /** The session process of a call crashed (isolated sessions): the call ended, the agent goes on. */
  | { type: 'session-crashed'; callId: string; direction: Direction; peer: string; detail: string }
  /**
   * A standing answer was not used (one-mail calls, agent/one-mail.ts): on
   * the caller before its offer went, on the callee when the offer came.
   * The call goes with two mails.
   */
  | { type: 'standing-refused'; callId: string; direction: Direction; peer: string; code: string; detail: string }
  /** A connected call's restart after an address change or a lost transport: what the user is told ("address changed, reconnecting...", "reconnected via mail in 4.2 s"). */
  | { type: 'reconnect'; callId: string; direction: Direction; peer: string; text: string }
  | { type: 'error'; error: Error };

/** An incoming call that rings: answer or decline it. */
export interface RingingCall {
  callId: string;
  peer: string;
  purpose: string;
  /** How far the caller's key is trusted; 'learned' means new, taken from a mail: show it. */
  trust: TrustLevel;
  accept(): void;
  decline(text?: string): void;
}

export interface PhoneOptions {
  account: Account;
  ice: IceConfig;
  /** The TURN relays of `[ice] turn`, added to every call's ICE settings (agent/relays.ts). */
  relays?: Relays;
  /** Something was queued in the outbox: send it soon. */
  send: () => void;
  timers?: Timers;
  onEvent?: (e: PhoneEvent) => void;
  /** `peerdial listen`: answer calls from allowed callers whatever the answer mode says. */
  forceAnswer?: boolean;
  /** An allowed offer: somebody else (a `peerdial listen` beside the agent) may take it; true when taken. */
  takeOffer?: (offer: PeerdialMessage, messageId: string) => boolean;
  /** Ask the router to forward each call's UDP port (config `[ice] port_mapping`). */
  portMapping?: 'auto' | 'upnp' | 'natpmp' | 'off';
  /** Which of an offer's audio/video this side sends or receives (a camera node sends). */
  answerMedia?: (offer: PeerdialMessage) => AnswerMedia | undefined;
  /** Refuse an allowed offer before anything is answered (e.g. `view` where there is no camera): the text goes back in a decline. */
  refuseOffer?: (offer: PeerdialMessage) => string | undefined;
  /** A call was placed (before its offer is queued): for subscriptions at a running agent. */
  onCallPlaced?: (callId: string) => void;
  /** Offered a verified message for a call this phone does not know; true when somebody took it. */
  elsewhere?: (msg: PeerdialMessage, messageId: string) => boolean;
  /** Answer every incoming offer "busy" (a `peerdial call` process that is not the agent). */
  refuseIncoming?: boolean;
  /** Longest wait from answer to channel open, on either side (default 30 s after the answer arrives / 3 min for the callee). */
  connectTimeoutMs?: number;
  calleeConnectTimeoutMs?: number;
  /** Where sessions run: `Session` (this process, the default) or `SessionHosts` (a supervised child process). */
  sessions?: SessionFactory;
  /** An allowed offer (to ring or answer): where its session is when not `sessions` (a browser tab that answers it, browser-calls.ts). */
  sessionsFor?: (offer: PeerdialMessage) => SessionFactory | undefined;
  /**
   * A reply mail is expected until `until` (the caller's offer has gone):
   * the inbox is checked at a short interval meanwhile. Returns the cancel.
   */
  expectReply?: (opts: { until: Date }) => () => void;
}

export interface CallOptions {
  purpose?: Purpose;
  signal?: AbortSignal;
  onProgress?: (e: { state: string; detail?: string }) => void;
  /** Override the config's ring time (seconds). */
  ringSeconds?: number;
  /** Audio/video sections to offer (`--view` offers to receive a camera's picture and sound). */
  media?: MediaSpec;
  /** The user asked for it (`--plain`): the offer may go in clear text to a contact without a key. */
  plain?: boolean;
  /** false: two mails (offer and answer) even when a standing answer of the callee is held. */
  standing?: boolean;
  /** One pair of a group call: the offer names the group (agent/group.ts). */
  group?: GroupField;
  /** Where this call's session is (a browser tab's, browser-calls.ts) instead of PhoneOptions.sessions. */
  sessions?: SessionFactory;
}
