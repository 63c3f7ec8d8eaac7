/**
 * Messages between the agent (remote.ts) and a session host process
 * (host.ts), over the fork()'s IPC channel with `serialization: 'advanced'`
 * (Buffers travel as Buffers). Pure types and two converters; no I/O.
 *
 * Ids: the parent names sessions (`sid`) and requests (`req`); the host
 * names channels (`cid`) and tracks (`tid`). All are numbers unique within
 * one host process.
 */
import { PeerdialError, type ErrorCode } from '../errors.js';
import type { SessionProgress } from './options.js';
import type { TrackPlan } from './tracks.js';
import type { CandidatePair, IceConfig, MediaDirection, MediaSpec, AnswerMedia } from './types.js';

/** What survives of a PeerdialError (or any error) on its way through IPC. */
export interface WireError {
  code: ErrorCode;
  message: string;
  hint?: string;
}

export interface ChannelInfo {
  cid: number;
  label: string;
  protocol: string;
  maxMessageSize: number;
}

/** A track as the session process reports it: its plan, its id there, and whether it is open. */
export interface TrackInfo extends TrackPlan {
  tid: number;
  isOpen: boolean;
}

/** SessionOptions without what cannot cross a process boundary (signal, onProgress). */
export interface PlainSessionOptions {
  ice: IceConfig;
  gatherTimeoutMs?: number;
  certificate?: { certPemFile: string; keyPemFile: string };
  control?: { label?: string; protocol?: string };
  media?: MediaSpec | AnswerMedia;
  keepAnswerMs?: number;
  keepAnswerRefreshMs?: number;
  /** Options this side does not know yet are passed through as they are. */
  [other: string]: unknown;
}

export type ToHost =
  | { op: 'offer'; sid: number; opts: PlainSessionOptions }
  | { op: 'answer'; sid: number; offer: string; opts: PlainSessionOptions }
  | { op: 'abort'; sid: number }
  | { op: 'accept-answer'; sid: number; sdp: string; provisional?: boolean }
  | { op: 'candidate'; sid: number; candidate: string; mid: string }
  | { op: 'connected'; sid: number; req: number; timeoutMs?: number }
  | { op: 'open-channel'; sid: number; req: number; label: string; protocol?: string; lowWaterMark?: number }
  | { op: 'close'; sid: number; reason: string }
  | { op: 'send'; cid: number; seq: number; data: Buffer | string }
  | { op: 'close-channel'; cid: number }
  | { op: 'rtp'; tid: number; packet: Buffer }
  | { op: 'keyframe'; tid: number }
  /** No session left: release node-datachannel and exit. */
  | { op: 'exit' };

export type FromHost =
  | { ev: 'ready'; pid: number }
  | { ev: 'made'; sid: number; sdp: string }
  | { ev: 'make-failed'; sid: number; error: WireError }
  | { ev: 'progress'; sid: number; progress: SessionProgress }
  | { ev: 'answer-failed'; sid: number; error: WireError }
  | { ev: 'direction'; tid: number; direction: MediaDirection }
  | { ev: 'connected'; req: number; pair: CandidatePair; ms: number; channel: ChannelInfo }
  | { ev: 'connect-failed'; req: number; error: WireError }
  | { ev: 'closed'; sid: number; reason: string }
  | { ev: 'channel'; sid: number; channel: ChannelInfo }
  | { ev: 'channel-opened'; req: number; channel: ChannelInfo }
  | { ev: 'channel-failed'; req: number; error: WireError }
  | { ev: 'message'; cid: number; data: Buffer | string }
  | { ev: 'sent'; cid: number; seq: number }
  | { ev: 'send-failed'; cid: number; seq: number; error: WireError }
  | { ev: 'channel-closed'; cid: number; reason: string }
  | { ev: 'track'; sid: number; track: TrackInfo }
  | { ev: 'track-open'; tid: number }
  | { ev: 'track-closed'; tid: number; reason: string }
  | { ev: 'rtp'; tid: number; packet: Buffer }
  | { ev: 'rtcp'; tid: number; packet: Buffer };

export function toWireError(err: unknown, fallback: ErrorCode = 'SESSION_FAILED'): WireError {
  if (err instanceof PeerdialError) return { code: err.code, message: err.message, ...(err.hint !== undefined ? { hint: err.hint } : {}) };
  return { code: fallback, message: err instanceof Error ? err.message : String(err) };
}

export function fromWireError(e: WireError): PeerdialError {
  return new PeerdialError(e.code, e.message, e.hint !== undefined ? { hint: e.hint } : {});
}
