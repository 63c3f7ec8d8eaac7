/**
 * Plain types of a direct session. Only src/session/ imports
 * node-datachannel; everything else (agent, carriers, CLI) uses these.
 */

/** ICE configuration, from the user's config. Nothing is hard-wired. */
export interface IceConfig {
  /** STUN/TURN servers, e.g. "stun:stun.example.org:3478". Only the first STUN one is used by libjuice. */
  iceServers: string[];
  /** Bind ICE to this local address (tests: 127.0.0.1 or a namespace address). */
  bindAddress?: string;
  portRangeBegin?: number;
  portRangeEnd?: number;
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
