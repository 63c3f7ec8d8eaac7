/**
 * Plain types of a direct session. Only src/session/ imports
 * node-datachannel; everything else (agent, carriers, CLI) uses these.
 */

/** ICE configuration, from the user's config. Nothing is hard-wired. */
export interface IceConfig {
  /** STUN servers, e.g. "stun:stun.example.org:3478". Only the first STUN one is used by libjuice. */
  iceServers: string[];
  /** Bind ICE to this local address (tests: 127.0.0.1 or a namespace address). */
  bindAddress?: string;
  portRangeBegin?: number;
  portRangeEnd?: number;
  /** TURN relays the user configured (over UDP); relay candidates are gathered only with these. */
  turn?: TurnRelay[];
}

/** A TURN relay with its credentials (config/turn.ts reads them). */
export interface TurnRelay {
  host: string;
  port: number;
  username: string;
  password: string;
}

/** A reliable, ordered message channel over the session. */
export interface Channel {
  readonly label: string;
  readonly protocol: string;
  readonly isOpen: boolean;
  /**
   * Send one message. Resolves once the channel's send buffer is below its
   * low-water mark again (backpressure): await it in loops.
   * Rejects with PeerdialError('SESSION_CLOSED') when the channel is closed.
   */
  send(data: Uint8Array | string): Promise<void>;
  /** Largest message the remote side accepts, in bytes. */
  readonly maxMessageSize: number;
  onMessage(cb: (data: Buffer | string) => void): void;
  onClose(cb: () => void): void;
  close(): void;
}

export interface CandidatePair {
  local: string;
  remote: string;
}

// ---------------------------------------------------------------------------
// Media (issue 5). Plain types: capture, encoding and playback are ffmpeg's
// (src/media); a session only carries RTP.

export type MediaKind = 'audio' | 'video';

/** Direction of a media section, from the point of view of the side that describes it. */
export type MediaDirection = 'sendonly' | 'recvonly' | 'sendrecv' | 'inactive';

export interface VideoSpec {
  codec: 'H264';
  payloadType: number;
  /** SSRC this side sends with (ignored for recvonly). */
  ssrc: number;
  direction: Exclude<MediaDirection, 'inactive'>;
}

export interface AudioSpec {
  codec: 'opus';
  payloadType: number;
  ssrc: number;
  direction: Exclude<MediaDirection, 'inactive'>;
}

/** The media the offerer puts into its offer. */
export interface MediaSpec {
  video?: VideoSpec;
  audio?: AudioSpec;
}

/**
 * What the answerer accepts of an offer's media. A kind that is not listed is
 * answered `inactive` (nothing flows). The direction defaults to the mirror of
 * the offer's (the offer's sendonly is answered recvonly) and is narrowed to
 * what the offer allows; the payload type is always the offer's.
 */
export interface AnswerMedia {
  video?: { direction?: Exclude<MediaDirection, 'inactive'>; ssrc?: number };
  audio?: { direction?: Exclude<MediaDirection, 'inactive'>; ssrc?: number };
}

/** Counters of one track, for tests, the bench and the CLI. */
export interface TrackStats {
  packetsSent: number;
  bytesSent: number;
  /** Video: packets with the RTP marker bit (one per frame); audio: packets. */
  framesSent: number;
  /** sendRtp() calls refused because the track was not open, closed or receive-only. */
  dropped: number;
  packetsReceived: number;
  bytesReceived: number;
  framesReceived: number;
  /** Video only: frames that start with an IDR or SPS. */
  keyframesReceived: number;
  /** Gaps in the received sequence numbers. */
  packetsLost: number;
  keyframeRequestsSent: number;
  keyframeRequestsReceived: number;
  /** performance.now() of the first RTP packet received / the first key frame, if any. */
  firstPacketAt?: number;
  firstKeyframeAt?: number;
}

/**
 * One negotiated media track of a session: raw RTP in and out, no
 * depacketizing. Outgoing packets get this track's negotiated payload type
 * and SSRC written into them, so one encoder can feed several sessions.
 */
export interface MediaTrack {
  readonly kind: MediaKind;
  readonly mid: string;
  /** This side's direction, as negotiated. */
  readonly direction: MediaDirection;
  readonly codec: 'H264' | 'opus';
  readonly payloadType: number;
  readonly clockRate: number;
  /** SSRC this side sends with (undefined when it does not send). */
  readonly ssrc: number | undefined;
  readonly isOpen: boolean;
  readonly isClosed: boolean;
  /**
   * Send one RTP packet. Returns false (and counts it as dropped) when the
   * track is not open yet, closed, or does not send; never throws.
   */
  sendRtp(packet: Uint8Array): boolean;
  /** Every received RTP packet. Returns a function that removes the listener. */
  onRtp(cb: (packet: Buffer) => void): () => void;
  /** Received RTCP that the session did not consume (e.g. receiver reports, PLI on a sender). */
  onRtcp(cb: (packet: Buffer) => void): () => void;
  /** The peer asked for a key frame (RTCP PLI or FIR) on a track this side sends. */
  onKeyframeRequest(cb: () => void): () => void;
  /** Ask the sender for a key frame (RTCP PLI). False if this track does not receive or is not open. */
  requestKeyframe(): boolean;
  onOpen(cb: () => void): void;
  onClose(cb: (reason: string) => void): void;
  stats(): TrackStats;
}
