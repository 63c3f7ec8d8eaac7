/**
 * One encoder, several sessions: RtpFanout forwards a source's RTP into the
 * sending tracks of every attached session (each track writes its own
 * negotiated payload type and SSRC into the packets), and SharedSource starts
 * the encoder for the first viewer and stops it when the last one leaves.
 *
 * A viewer that joins mid-GOP would wait for the next key frame (up to the
 * key-frame interval, 1 s by default). RtpFanout keeps the packets since the
 * last key frame and sends them to a video track when it opens, so the
 * viewer's decoder starts at once; the sequence numbers simply continue into
 * the live packets that follow.
 */
import type { MediaKind, MediaTrack } from '../session/types.js';
import { parseRtp, startsH264Keyframe } from '../session/rtp.js';

/** Anything that emits RTP per kind (a MediaSource from source.ts). */
export interface RtpSource {
  onRtp(kind: MediaKind, cb: (packet: Buffer) => void): () => void;
  /** Video packets from the last key frame on, if the source keeps them (MediaSource does). */
  recentGop?(): Buffer[];
}

/** A viewer: anything with tracks that closes (a Session). */
export interface Viewer {
  tracks(): MediaTrack[];
  onClose(cb: (reason: string) => void): void;
}

/** Packets kept from the last key frame on (about 2 s of 1.5 Mbit/s video). */
const GOP_CACHE_LIMIT = 400;

interface Attached {
  track: MediaTrack;
  primed: boolean;
}

export class RtpFanout {
  readonly #attached = new Set<Attached>();
  readonly #unsubscribe: Array<() => void>;
  #gop: Buffer[] = [];
  #gopTimestamp: number | undefined;
  readonly #gopCache: boolean;

  constructor(source: RtpSource, opts: { gopCache?: boolean } = {}) {
    this.#gopCache = opts.gopCache ?? true;
    if (this.#gopCache && source.recentGop) {
      this.#gop = source.recentGop();
      const first = this.#gop[0] && parseRtp(this.#gop[0]);
      if (first) this.#gopTimestamp = first.timestamp;
    }
    this.#unsubscribe = [
      source.onRtp('video', (p) => this.#packet('video', p)),
      source.onRtp('audio', (p) => this.#packet('audio', p)),
    ];
  }

  /** Number of attached tracks. */
  get size(): number {
    return this.#attached.size;
  }

  /** Forward into the sending tracks among `tracks`; returns the detach function. */
  attach(tracks: MediaTrack[]): () => void {
    const mine: Attached[] = [];
    for (const track of tracks) {
      if (track.direction !== 'sendonly' && track.direction !== 'sendrecv') continue;
      const a: Attached = { track, primed: false };
      mine.push(a);
      this.#attached.add(a);
      const prime = () => {
        if (!this.#attached.has(a) || a.primed) return;
        if (track.kind === 'video') for (const p of this.#gop) track.sendRtp(p);
        a.primed = true;
      };
      if (track.isOpen) prime();
      else track.onOpen(prime);
    }
    return () => {
      for (const a of mine) this.#attached.delete(a);
    };
  }

  /** Stop listening to the source and detach everything. */
  close(): void {
    for (const u of this.#unsubscribe) u();
    this.#attached.clear();
    this.#gop = [];
  }

  #packet(kind: MediaKind, packet: Buffer): void {
    if (kind === 'video' && this.#gopCache) {
      const h = parseRtp(packet);
      if (h && h.timestamp !== this.#gopTimestamp && startsH264Keyframe(packet)) {
        this.#gop = [];
        this.#gopTimestamp = h.timestamp;
      }
      if (this.#gopTimestamp !== undefined && this.#gop.length < GOP_CACHE_LIMIT) this.#gop.push(packet);
    }
    for (const a of this.#attached) {
      if (a.primed && a.track.kind === kind && !a.track.isClosed) a.track.sendRtp(packet);
    }
  }
}

/** A source that can be stopped (a MediaSource). */
export interface StoppableSource extends RtpSource {
  stop(): Promise<unknown>;
}

/**
 * An encoder shared by viewers: started by the first join, stopped when the
 * last viewer has left (left() called or its session closed).
 */
export class SharedSource<S extends StoppableSource = StoppableSource> {
  readonly #start: () => Promise<S>;
  readonly #gopCache: boolean;
  #running: { source: S; fanout: RtpFanout } | undefined;
  #starting: Promise<{ source: S; fanout: RtpFanout }> | undefined;
  #stopping: Promise<void> | undefined;
  #viewers = 0;
  #startCount = 0;

  constructor(start: () => Promise<S>, opts: { gopCache?: boolean } = {}) {
    this.#start = start;
    this.#gopCache = opts.gopCache ?? true;
  }

  get viewers(): number {
    return this.#viewers;
  }

  /** The running encoder, if any. */
  get source(): S | undefined {
    return this.#running?.source;
  }

  /** How many times an encoder was started (for tests and logs). */
  get starts(): number {
    return this.#startCount;
  }

  /**
   * Add a viewer: its sending tracks get the encoder's RTP. Resolves with a
   * leave function (also called when the viewer's session closes). Rejects
   * when the encoder cannot start.
   */
  async join(viewer: Viewer): Promise<() => Promise<void>> {
    this.#viewers++;
    let running: { source: S; fanout: RtpFanout };
    try {
      running = await this.#ensure();
    } catch (err) {
      this.#viewers--;
      throw err;
    }
    const detach = running.fanout.attach(viewer.tracks());
    let left: Promise<void> | undefined;
    const leave = () => {
      left ??= (async () => {
        detach();
        this.#viewers--;
        if (this.#viewers === 0) await this.#stop();
      })();
      return left;
    };
    viewer.onClose(() => void leave());
    return leave;
  }

  /** Stop the encoder now, whoever is watching. */
  async stop(): Promise<void> {
    await this.#stop();
  }

  async #ensure(): Promise<{ source: S; fanout: RtpFanout }> {
    if (this.#stopping) await this.#stopping;
    if (this.#running) return this.#running;
    this.#starting ??= (async () => {
      try {
        const source = await this.#start();
        this.#startCount++;
        this.#running = { source, fanout: new RtpFanout(source, { gopCache: this.#gopCache }) };
        return this.#running;
      } finally {
        this.#starting = undefined;
      }
    })();
    return this.#starting;
  }

  #stop(): Promise<void> {
    this.#stopping ??= (async () => {
      try {
        const running = this.#running ?? (this.#starting ? await this.#starting.catch(() => undefined) : undefined);
        this.#running = undefined;
        if (running) {
          running.fanout.close();
          await running.source.stop();
        }
      } finally {
        this.#stopping = undefined;
      }
    })();
    return this.#stopping;
  }
}
