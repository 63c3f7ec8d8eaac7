/**
 * What the parts of a Session that make or replace its connection
 * (local-description.ts, kept-answer.ts, fresh-agent.ts) may use of it: the
 * session hands them this view of its inside, and nothing else.
 */
import type { PeerdialError } from '../errors.js';
import type { Carried } from './carried.js';
import type { Connection } from './connection.js';
import type { SessionProgress } from './options.js';

export interface SessionInside {
  readonly conn: Connection;
  readonly carried: Carried;
  isClosed(): boolean;
  /** The current connection is connected (and the peer checked). */
  isConnected(): boolean;
  /** Fail the session (connected() rejects) and close it. */
  fail(reason: string, error?: PeerdialError): void;
  progress(e: SessionProgress): void;
  /** Call `cb` when the current connection has gathered its candidates. */
  whenGathered(cb: () => void): void;
  /** Open the offerer's control channel on the current connection. */
  openControl(control: { label: string; protocol: string }): void;
  /** Apply the peer's description to the current connection. */
  applyRemote(sdp: string, type: 'offer' | 'answer'): void;
}
