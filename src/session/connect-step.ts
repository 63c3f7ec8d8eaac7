/**
 * The connect step of a session: it is ready once its connection is
 * connected, the peer's certificate is the one the peer's description
 * names, and the first channel (the control channel) is open. connected()
 * waits for `ready`.
 */
import { PeerdialError } from '../errors.js';
import type { Carried } from './carried.js';
import type { SessionChannel } from './channel.js';
import type { Connection } from './connection.js';
import { deferred } from './deferred.js';
import { type Fingerprint, descriptionFingerprints, peerCertificateError } from './fingerprint.js';
import { type Connected, DTLS_STALL_MS, type SessionProgress } from './options.js';

/** The reason a session gives when its DTLS handshake stalled (options.ts, DTLS_STALL_MS). */
export const DTLS_STALLED = "the DTLS handshake stalled after ICE had connected (the peer's WebRTC library may have stopped on this connection)";

/** What the connect step uses of its session. */
export interface ConnectStepSession {
  readonly carried: Carried;
  /** The session's current connection. */
  conn(): Connection;
  isClosed(): boolean;
  /** Fail the session (ready rejects) and close it. */
  fail(reason: string, error?: PeerdialError): void;
  progress(e: SessionProgress): void;
  /** When the peer's description was applied (performance.now()), if it was. */
  remoteSetAt(): number | undefined;
  /** This side made the offer (it is the DTLS client). */
  isOfferer(): boolean;
}

export class ConnectStep {
  readonly #s: ConnectStepSession;
  readonly ready = deferred<Connected>();
  #connected = false;
  /** The `a=fingerprint` lines of the remote description, normalised. */
  #remoteFingerprints: Fingerprint[] = [];
  #firstChannel: SessionChannel | undefined;
  #firstOpen = false;
  #stallTimer: NodeJS.Timeout | undefined;
  readonly #stallMs: number;

  constructor(s: ConnectStepSession, stallMs = DTLS_STALL_MS) {
    this.#s = s;
    this.#stallMs = stallMs;
    const stop = () => this.#stopStallTimer();
    this.ready.promise.then(stop, stop);
  }

  /**
   * The offerer's current connection's ICE state, once the answer is
   * applied: the offerer is the DTLS client and sends its ClientHello as its
   * ICE connects, so the handshake has DTLS_STALL_MS to finish, else the
   * session fails as stalled. Not on the answerer: its ICE may connect with
   * the caller's first connection while the answer is still in the mail,
   * and its DTLS then rightly waits (webrtc.md).
   */
  iceState(state: string): void {
    if ((state !== 'connected' && state !== 'completed') || this.#connected || this.#stallTimer || this.ready.settled) return;
    if (!this.#s.isOfferer() || this.#s.remoteSetAt() === undefined) return;
    const conn = this.#s.conn();
    this.#stallTimer = setTimeout(() => {
      this.#stallTimer = undefined;
      if (this.#connected || this.ready.settled || this.#s.isClosed() || this.#s.conn() !== conn) return;
      this.#s.fail(DTLS_STALLED, new PeerdialError('SESSION_FAILED', DTLS_STALLED, { hint: 'call again: a fresh offer makes a fresh connection' }));
    }, this.#stallMs);
    this.#stallTimer.unref?.();
  }

  #stopStallTimer(): void {
    if (this.#stallTimer) clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
  }

  /** The connection is connected and the peer checked. */
  get connected(): boolean {
    return this.#connected;
  }

  /** A control channel is there (opened by this side, or the peer's first). */
  get hasControl(): boolean {
    return this.#firstChannel !== undefined;
  }

  /** The peer's description is being applied: its certificate must match `sdp`'s fingerprints. */
  remoteDescription(sdp: string): void {
    this.#remoteFingerprints = descriptionFingerprints(sdp);
  }

  /** The offerer's control channel on the current connection; the session is ready once it opens. */
  controlChannel(channel: SessionChannel): void {
    this.#firstChannel = channel;
    this.#firstOpen = false;
    channel.whenOpen().then(
      () => {
        if (this.#firstChannel !== channel) return;
        this.#firstOpen = true;
        this.#maybeReady();
      },
      () => undefined,
    );
  }

  /** A channel the peer opened (on the callee the first is the control channel). */
  remoteChannel(channel: SessionChannel): void {
    if (this.#firstChannel === undefined) {
      this.#firstChannel = channel;
      this.#firstOpen = true;
    }
    // Listeners see the peer's channels only once the peer is checked (#verifyPeer).
    this.#s.carried.addRemoteChannel(channel);
    this.#maybeReady();
  }

  /** The connection reached `connected`: check the peer (once), then the session may be ready. */
  connectionUp(): void {
    if (!this.#s.carried.verified && !this.#verifyPeer()) return;
    this.#connected = true;
    this.#maybeReady();
  }

  /**
   * At `connected`, before any channel, track or byte is used: is the
   * certificate the peer used the one its signed description names? On a
   * match every held channel and track is released (and the peer's channels
   * handed to the listeners); otherwise the session fails with
   * FINGERPRINT_MISMATCH and closes, dropping whatever the channels held.
   */
  #verifyPeer(): boolean {
    const err = peerCertificateError(this.#remoteFingerprints, () => this.#s.conn().pc.remoteFingerprint());
    if (err) {
      this.#s.fail(err.message, err);
      return false;
    }
    this.#s.carried.release();
    return true;
  }

  #maybeReady(): void {
    if (this.ready.settled || this.#s.isClosed()) return;
    if (!this.#connected || !this.#firstOpen || this.#firstChannel === undefined) return;
    const remoteSetAt = this.#s.remoteSetAt();
    const ms = remoteSetAt === undefined ? 0 : Math.round(performance.now() - remoteSetAt);
    const pair = this.#s.conn().selectedPair();
    this.#s.progress({ type: 'connected', pair, ms });
    this.ready.resolve({ pair: pair ?? { local: 'unknown', remote: 'unknown' }, ms, channel: this.#firstChannel });
  }
}
