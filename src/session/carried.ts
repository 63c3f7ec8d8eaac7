/**
 * What a session carries: its data channels and media tracks, and the
 * listeners that see them.
 *
 * Until the session has checked the peer's DTLS certificate (release()),
 * every channel and track is held: nothing is sent, and what arrives is kept
 * (channels) or dropped (RTP); the peer's channels reach the listeners only
 * then. Every channel and track is referenced here for the session's life
 * (GC would close the native objects).
 */
import type { DataChannel, PeerConnection, Track } from 'node-datachannel';
import { SessionChannel, deliver } from './channel.js';
import { type SessionTrack, type TrackPlan, addNativeTrack, adoptNativeTrack } from './tracks.js';
import type { Channel, MediaKind, MediaTrack } from './types.js';

export class Carried {
  /** The peer's certificate matched the remote description: channels and tracks are released. */
  #verified = false;
  /** Every channel of this session, held for the session's life. */
  readonly channels = new Set<SessionChannel>();
  /** Every channel the peer opened, replayed to each listener added later. */
  #remote: SessionChannel[] = [];
  #channelCbs: Array<(ch: Channel) => void> = [];
  /** Every media track of this session, held for the session's life, in m-line order. */
  readonly tracks: SessionTrack[] = [];
  #trackCbs: Array<(track: MediaTrack) => void> = [];

  get verified(): boolean {
    return this.#verified;
  }

  /** Wrap a DataChannel of this session (held until release()). */
  adopt(dc: DataChannel, open: boolean, lowWaterMark?: number): SessionChannel {
    const held = !this.#verified;
    const channel = new SessionChannel(dc, lowWaterMark === undefined ? { open, held } : { open, held, lowWaterMark });
    this.channels.add(channel);
    return channel;
  }

  /** A channel the peer opened: listeners see it once the peer is checked. */
  addRemoteChannel(channel: SessionChannel): void {
    this.#remote.push(channel);
    if (this.#verified) for (const cb of this.#channelCbs) deliver(cb, channel);
  }

  /** A planned track, added to the connection. */
  addTrack(pc: PeerConnection, plan: TrackPlan): void {
    this.tracks.push(addNativeTrack(pc, plan, !this.#verified));
  }

  /** A media section of the peer's description that no plan covered. */
  addRemoteTrack(native: Track): void {
    const track = adoptNativeTrack(native, !this.#verified);
    this.tracks.push(track);
    for (const cb of this.#trackCbs) deliver(cb, track);
  }

  onChannel(cb: (channel: Channel) => void): void {
    this.#channelCbs.push(cb);
    if (this.#verified) for (const ch of this.#remote) deliver(cb, ch);
  }

  onTrack(cb: (track: MediaTrack) => void): void {
    this.#trackCbs.push(cb);
    for (const t of this.tracks) deliver(cb, t);
  }

  track(kind: MediaKind): MediaTrack | undefined {
    return this.tracks.find((t) => t.kind === kind);
  }

  /** The peer is checked: release every channel and track, and hand the peer's channels to the listeners. */
  release(): void {
    this.#verified = true;
    for (const ch of this.channels) ch.release();
    for (const t of this.tracks) t.release();
    for (const ch of this.#remote) for (const cb of this.#channelCbs) deliver(cb, ch);
  }

  /** The connection is being replaced: tracks let go of it, to move to the next (SessionTrack.moveTo). */
  detachTracks(): void {
    for (const track of this.tracks) track.detach();
  }

  moveTracksTo(pc: PeerConnection): void {
    for (const track of this.tracks) track.moveTo(pc);
  }

  /** Close and forget every channel (the offerer's channels before its fresh connection). */
  dropChannels(reason: string): void {
    for (const ch of this.channels) {
      ch.markClosed(reason);
      this.channels.delete(ch);
    }
  }

  /** The session closed. */
  closeAll(reason: string): void {
    for (const ch of this.channels) ch.markClosed(reason);
    for (const t of this.tracks) t.markClosed(reason);
    this.#remote = [];
  }
}
