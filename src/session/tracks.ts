/**
 * Media tracks of a session (issue 5): RTP in and out through node-datachannel,
 * nothing decoded here. The Session (session.ts) plans the tracks of an offer
 * or answer with planOffer()/planAnswer(), adds each with addNativeTrack()
 * before the description is made, and holds the SessionTrack wrappers for its
 * whole life.
 *
 * Hazards (webrtc.md), as for channels:
 * - every callback handed to native code is wrapped (guarded()); listener
 *   errors are rethrown on a later tick (deliver());
 * - the Track and its media handlers are referenced by the wrapper, the
 *   wrapper by its Session, until the session closes (GC would close them);
 * - tracks are never closed one by one: closing the PeerConnection ends them;
 * - a track is held until the session has checked the peer's DTLS
 *   certificate (release()): until then it is not open, sends no RTP and
 *   drops what arrives.
 *
 * Picture loss: a receiving track gets an RtcpReceivingSession, which sends
 * receiver reports and makes requestKeyframe() send an RTCP PLI; a sending
 * track gets an RtcpNackResponder, which resends packets the peer reports
 * lost (NACK) from a short history. PLI/FIR arriving on a sending track are
 * reported with onKeyframeRequest(); an encoder that cannot act on them (the
 * ffmpeg CLI cannot) relies on a short key-frame interval instead, see
 * src/media/ffmpeg.ts.
 */
import { Audio, RtcpNackResponder, RtcpReceivingSession, Video } from 'node-datachannel';
import type { Direction, MediaHandler, Track } from 'node-datachannel';
import { PeerdialError } from '../errors.js';
import { deliver, errorText, guarded } from './channel.js';
import { isRtcp, withPayloadTypeAndSsrc } from './rtp.js';
import { TrackBase } from './track-base.js';
import { type SdpMediaDirection, mediaSections, mirrorDirection, narrowDirection } from './sdp.js';
import type { AnswerMedia, MediaDirection, MediaKind, MediaSpec } from './types.js';

/** What one track of a description will be. */
export interface TrackPlan {
  kind: MediaKind;
  mid: string;
  direction: MediaDirection;
  codec: 'H264' | 'opus';
  payloadType: number;
  clockRate: number;
  ssrc: number | undefined;
}

export const DEFAULT_VIDEO_PAYLOAD_TYPE = 96;
export const DEFAULT_AUDIO_PAYLOAD_TYPE = 111;
/** Packets kept for answering NACKs (about 1 s of 1.5 Mbit/s video). */
const NACK_HISTORY = 512;

const CLOCK_RATE = { H264: 90_000, opus: 48_000 } as const;

/** A random SSRC (non-zero 32-bit). */
export function randomSsrc(): number {
  return (Math.floor(Math.random() * 0xfffffffe) + 1) >>> 0;
}

/**
 * A MediaSpec with the usual payload types and fresh SSRCs, for the kinds
 * asked for: what `call --video/--audio` and the camera will offer.
 */
export function defaultMediaSpec(kinds: { video?: boolean; audio?: boolean }, direction: 'sendonly' | 'recvonly' | 'sendrecv'): MediaSpec {
  const spec: MediaSpec = {};
  if (kinds.video) spec.video = { codec: 'H264', payloadType: DEFAULT_VIDEO_PAYLOAD_TYPE, ssrc: randomSsrc(), direction };
  if (kinds.audio) spec.audio = { codec: 'opus', payloadType: DEFAULT_AUDIO_PAYLOAD_TYPE, ssrc: randomSsrc(), direction };
  return spec;
}

function checkPayloadType(pt: number, what: string): void {
  if (!Number.isInteger(pt) || pt < 96 || pt > 127) {
    throw new PeerdialError('USAGE', `${what}: payload type ${pt} is not a dynamic RTP payload type (96-127)`);
  }
}

function checkSsrc(ssrc: number, what: string): void {
  if (!Number.isInteger(ssrc) || ssrc < 1 || ssrc > 0xffffffff) {
    throw new PeerdialError('USAGE', `${what}: SSRC ${ssrc} is not a 32-bit number above 0`);
  }
}

const sends = (d: MediaDirection) => d === 'sendonly' || d === 'sendrecv';
const receives = (d: MediaDirection) => d === 'recvonly' || d === 'sendrecv';

/** The tracks of an offer, in m-line order (video, then audio). */
export function planOffer(spec: MediaSpec | undefined): TrackPlan[] {
  const plans: TrackPlan[] = [];
  if (spec?.video) {
    const v = spec.video;
    checkPayloadType(v.payloadType, 'video');
    if (sends(v.direction)) checkSsrc(v.ssrc, 'video');
    if (v.codec !== 'H264') throw new PeerdialError('USAGE', `video codec ${String(v.codec)} is not supported (H264 only)`);
    plans.push({
      kind: 'video',
      mid: 'video',
      direction: v.direction,
      codec: 'H264',
      payloadType: v.payloadType,
      clockRate: CLOCK_RATE.H264,
      ssrc: sends(v.direction) ? v.ssrc >>> 0 : undefined,
    });
  }
  if (spec?.audio) {
    const a = spec.audio;
    checkPayloadType(a.payloadType, 'audio');
    if (sends(a.direction)) checkSsrc(a.ssrc, 'audio');
    if (a.codec !== 'opus') throw new PeerdialError('USAGE', `audio codec ${String(a.codec)} is not supported (opus only)`);
    if (spec.video && spec.video.payloadType === a.payloadType) {
      throw new PeerdialError('USAGE', 'audio and video need different payload types');
    }
    plans.push({
      kind: 'audio',
      mid: 'audio',
      direction: a.direction,
      codec: 'opus',
      payloadType: a.payloadType,
      clockRate: CLOCK_RATE.opus,
      ssrc: sends(a.direction) ? a.ssrc >>> 0 : undefined,
    });
  }
  return plans;
}

/**
 * The tracks of an answer to `offerSdp`: one per offered audio/video section
 * whose codec peerdial speaks (H264, opus), with the offer's mid and payload
 * type. Kinds not accepted are answered inactive. Sections with other codecs
 * get no plan (libdatachannel mirrors them; Session adopts what arrives).
 */
export function planAnswer(offerSdp: string, accept: AnswerMedia | undefined): TrackPlan[] {
  const plans: TrackPlan[] = [];
  const seen = new Set<MediaKind>();
  for (const section of mediaSections(offerSdp)) {
    const codec = section.kind === 'video' ? 'H264' : 'opus';
    const payloadType = section.payloadTypes[codec.toLowerCase()];
    if (payloadType === undefined) continue;
    const wanted = seen.has(section.kind) ? undefined : accept?.[section.kind];
    seen.add(section.kind);
    const possible = mirrorDirection(section.direction);
    const direction: SdpMediaDirection = wanted
      ? narrowDirection(wanted.direction ?? possible, possible)
      : 'inactive';
    let ssrc: number | undefined;
    if (sends(direction)) {
      ssrc = wanted?.ssrc ?? randomSsrc();
      checkSsrc(ssrc, section.kind);
    }
    plans.push({ kind: section.kind, mid: section.mid, direction, codec, payloadType, clockRate: CLOCK_RATE[codec], ssrc });
  }
  return plans;
}

/** Update planned directions from the peer's answer: what both sides allow. */
export function negotiatedDirection(plan: MediaDirection, answerSdp: string, mid: string): MediaDirection {
  const section = mediaSections(answerSdp).find((s) => s.mid === mid);
  if (!section) return 'inactive';
  return narrowDirection(plan, mirrorDirection(section.direction));
}

const NATIVE_DIRECTION: Record<MediaDirection, Direction> = {
  sendonly: 'SendOnly',
  recvonly: 'RecvOnly',
  sendrecv: 'SendRecv',
  inactive: 'Inactive',
};

function fromNativeDirection(d: Direction): MediaDirection {
  switch (d) {
    case 'SendOnly':
      return 'sendonly';
    case 'RecvOnly':
      return 'recvonly';
    case 'SendRecv':
      return 'sendrecv';
    default:
      return 'inactive';
  }
}

/**
 * Build the native description of a plan and add it to the PeerConnection:
 * before the offer is made, or before the offer is applied on the answerer.
 */
export function addNativeTrack(pc: { addTrack(media: Video | Audio): Track }, plan: TrackPlan, held = true): SessionTrack {
  return new SessionTrack(addNativeMedia(pc, plan), plan, held);
}

/** The native track for a plan, added to a peer connection. */
function addNativeMedia(pc: { addTrack(media: Video | Audio): Track }, plan: TrackPlan): Track {
  const dir = NATIVE_DIRECTION[plan.direction];
  let desc: Video | Audio;
  if (plan.kind === 'video') {
    const v = new Video(plan.mid, dir);
    v.addH264Codec(plan.payloadType);
    desc = v;
  } else {
    const a = new Audio(plan.mid, dir);
    a.addOpusCodec(plan.payloadType);
    desc = a;
  }
  if (plan.ssrc !== undefined) desc.addSSRC(plan.ssrc, 'peerdial', 'peerdial', `peerdial-${plan.kind}`);
  return pc.addTrack(desc);
}

/** Wrap a track that the peer's description created (a section no plan covered). */
export function adoptNativeTrack(track: Track, held = true): SessionTrack {
  const kind: MediaKind = track.type() === 'audio' ? 'audio' : 'video';
  const codec = kind === 'video' ? 'H264' : 'opus';
  return new SessionTrack(track, {
    kind,
    mid: track.mid(),
    direction: fromNativeDirection(track.direction()),
    codec,
    payloadType: kind === 'video' ? DEFAULT_VIDEO_PAYLOAD_TYPE : DEFAULT_AUDIO_PAYLOAD_TYPE,
    clockRate: CLOCK_RATE[codec],
    ssrc: undefined,
  }, held);
}

/**
 * A media track of a session in this process: a node-datachannel Track, held
 * (nothing sent or delivered) until the session has checked the peer.
 */
export class SessionTrack extends TrackBase {
  #track: Track;
  readonly #plan: TrackPlan;
  /** Media handlers of the current native track, referenced for its life. */
  #handlers: MediaHandler[] = [];
  #replaced: Array<{ track: Track; handlers: MediaHandler[] }> = [];
  /** Counts native tracks bound; callbacks of an earlier one are ignored. */
  #generation = 0;
  #open = false;
  /** Held until the session has checked the peer (release()). */
  #held: boolean;

  constructor(track: Track, plan: TrackPlan, held = true) {
    super(plan);
    this.#track = track;
    this.#plan = plan;
    this.#held = held;
    this.#bind(track);
  }

  /**
   * The session replaced its peer connection before anything was connected
   * (Session.acceptAnswer, a kept answer): the same track, planned again on
   * `pc`. Callbacks of the old native track count no more.
   */
  moveTo(pc: { addTrack(media: Video | Audio): Track }): void {
    if (this.closed) return;
    this.#bind(addNativeMedia(pc, this.#plan));
  }

  /** Before the session closes the connection it replaces: the native track's callbacks count no more. */
  detach(): void {
    this.#generation++;
  }

  #bind(track: Track): void {
    // A replaced native track and its handlers stay referenced: native code
    // may still use them while the old connection closes (dropping them
    // segfaulted).
    if (this.#generation > 0) this.#replaced.push({ track: this.#track, handlers: this.#handlers });
    this.#track = track;
    const generation = ++this.#generation;
    const current = (fn: () => void) => () => {
      if (this.#generation === generation) fn();
    };
    // One handler chain per track: receiver reports + PLI when receiving,
    // NACK answers when sending.
    this.#handlers = [];
    if (receives(this.#plan.direction)) this.#handlers.push(new RtcpReceivingSession());
    if (sends(this.#plan.direction)) this.#handlers.push(new RtcpNackResponder(NACK_HISTORY));
    const [first, ...rest] = this.#handlers;
    if (first) {
      for (const h of rest) first.addToChain(h);
      track.setMediaHandler(first);
    }
    const internal = (err: unknown) => {
      if (this.#generation === generation) this.markClosed(`internal error in the ${this.kind} track: ${errorText(err)}`);
    };
    this.#open = track.isOpen();
    track.onOpen(guarded(current(() => this.#onOpen()), internal));
    track.onClosed(guarded(current(() => this.markClosed('the peer closed the track')), internal));
    track.onError(guarded((err: string) => current(() => this.markClosed(`track error: ${err}`))(), internal));
    track.onMessage(guarded((msg: Buffer) => current(() => this.#incoming(msg))(), internal));
  }

  get isOpen(): boolean {
    return this.#open && !this.#held && !this.closed;
  }

  /** The session checked the peer: the track may open, send and deliver RTP. */
  release(): void {
    if (!this.#held || this.closed) return;
    this.#held = false;
    if (this.#open) this.fireOpen();
  }

  sendRtp(packet: Uint8Array): boolean {
    if (!this.isOpen || !sends(this.direction_) || isRtcp(packet) || packet.length < 12) {
      this.counters.dropped++;
      return false;
    }
    const out = withPayloadTypeAndSsrc(packet, this.payloadType, this.ssrc);
    const buf = Buffer.isBuffer(out) ? out : Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    try {
      this.#track.sendMessageBinary(buf);
    } catch {
      this.counters.dropped++;
      return false;
    }
    this.countSent(buf);
    return true;
  }

  requestKeyframe(): boolean {
    if (!this.isOpen || !receives(this.direction_)) return false;
    let ok = false;
    try {
      ok = this.#track.requestKeyframe();
    } catch {
      ok = false;
    }
    if (ok) this.counters.keyframeRequestsSent++;
    return ok;
  }

  /** After the answer: the direction both sides agreed on. */
  setNegotiatedDirection(direction: MediaDirection): void {
    this.direction_ = direction;
  }

  #onOpen(): void {
    if (this.closed || this.#open) return;
    this.#open = true;
    if (!this.#held) this.fireOpen();
  }

  #incoming(msg: Buffer): void {
    if (this.closed || this.#held) return;
    if (isRtcp(msg)) this.receivedRtcp(msg);
    else this.receivedRtp(msg);
  }
}
