/**
 * A direct session: one node-datachannel PeerConnection with non-trickle
 * signalling, for offers and answers that travel by e-mail. Session makes
 * the offer or the answer, applies the peer's description, checks the
 * peer's certificate at `connected`, and hands out the control channel, the
 * other channels and the media tracks until it closes. The hazards it
 * handles are listed in index.ts.
 */
import type { DataChannel, Track } from 'node-datachannel';
import { PeerdialError, isPeerdialError } from '../errors.js';
import { isLoopbackOnly } from '../wire/peer-ip.js';
import { answererIdentity, offererIdentity } from './call-identity.js';
import { candidateProblem } from './candidates.js';
import { Carried } from './carried.js';
import { deliver, errorText } from './channel.js';
import type { CallCertificate } from './certificate.js';
import { ConnectStep } from './connect-step.js';
import { Connection, rtcConfig } from './connection.js';
import { settledWithin } from './deferred.js';
import { type Offered, applyAnswerFresh, applyAnswerHere } from './fresh-agent.js';
import { behindNat, hasRelayCandidate } from './sdp.js';
import { KeptAnswer } from './kept-answer.js';
import { makeAnswer, makeOffer } from './local-description.js';
import {
  CONTROL_LABEL,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_GATHER_TIMEOUT_MS,
  type AnswerOptions,
  type ChannelOptions,
  type Connected,
  type OfferOptions,
  type SessionOptions,
  type SessionProgress,
  type SessionRole,
  keepAnswerTimes,
} from './options.js';
import { usableAnswer, usableOffer } from './peer-description.js';
import { register, unregister } from './registry.js';
import { FRESH_OFFER_HINT, abortedError, connectTimeoutError, remoteRefusedError, toSessionError } from './session-errors.js';
import type { SessionInside } from './session-inside.js';
import { planAnswer, planOffer } from './tracks.js';
import type { CandidatePair, Channel, IceConfig, MediaKind, MediaTrack } from './types.js';
import { ANSWERER_CONTROL_STREAM } from './options.js';

export class Session {
  readonly role: SessionRole;
  readonly #conn: Connection;
  /** A kept answer (acceptOffer with keepAnswerMs). */
  #kept: KeptAnswer | undefined;
  /** The offer as mailed: what the connection that takes the answer must reproduce. */
  #offered: Offered | undefined;
  /** A certificate the session made itself, removed when it closes. */
  #ownCertificate: CallCertificate | undefined;
  readonly #onProgress: ((e: SessionProgress) => void) | undefined;
  /** Channels and tracks, held until the peer is checked. */
  readonly #carried = new Carried();
  #closeCbs: Array<(reason: string) => void> = [];
  #closed = false;
  #closeReason = '';
  #remoteSetAt: number | undefined;
  /** The answer applied was made from a standing answer: a mailed one may still replace it. */
  #provisional = false;
  /** The answer being applied (applyAnswerFresh): a replacing one waits for it. */
  #applying: Promise<void> | undefined;
  #pendingCandidates: Array<{ candidate: string; mid: string }> = [];
  /** The answerer opens the control channel (AnswerOptions.opensControl). */
  #opensControl = false;
  #keepOfferConnection = false; // OfferOptions.keepOfferConnection
  /** Connected, the peer checked, the control channel open: connected() waits for it. */
  readonly #step = new ConnectStep({
    carried: this.#carried,
    conn: () => this.#conn,
    isClosed: () => this.#closed,
    fail: (reason, error) => this.#fail(reason, error),
    progress: (e) => this.#progress(e),
    remoteSetAt: () => this.#remoteSetAt,
    isOfferer: () => this.role === 'offerer',
  });
  /** What the kept answer, the fresh agent and the making of our description (local-description.ts) may use of this session. */
  readonly #inside: SessionInside;

  private constructor(role: SessionRole, opts: SessionOptions, manualAnswer: boolean, configured: IceConfig /* before a port was pinned */) {
    this.role = role;
    this.#onProgress = opts.onProgress;
    const rtc = rtcConfig(opts.ice);
    if (opts.certificate) {
      rtc.certificatePemFile = opts.certificate.certPemFile;
      rtc.keyPemFile = opts.certificate.keyPemFile;
    }
    // A kept answer is made with setLocalDescription (its ICE credentials are given).
    if (manualAnswer) rtc.disableAutoNegotiation = true;
    register(this);
    try {
      this.#conn = new Connection(role, rtc, { begin: configured.portRangeBegin, end: configured.portRangeEnd }, {
        state: (state) => this.#onState(state),
        ice: (state) => (this.#progress({ type: 'ice', state }), this.#step.iceState(state)),
        dataChannel: (dc) => this.#onRemoteChannel(dc),
        track: (track) => this.#onRemoteTrack(track),
        internalError: (err) => this.#fail(`internal error: ${errorText(err)}`),
      });
    } catch (err) {
      this.#closed = true;
      unregister(this);
      throw new PeerdialError('SESSION_FAILED', `could not start a peer connection: ${errorText(err)}`, {
        hint: 'check the ICE settings (iceServers, bindAddress, port range) and the certificate files in the configuration',
        cause: err,
      });
    }
    this.#inside = {
      conn: this.#conn,
      carried: this.#carried,
      isClosed: () => this.#closed,
      isConnected: () => this.#step.connected,
      fail: (reason, error) => this.#fail(reason, error),
      progress: (e) => this.#progress(e),
      whenGathered: (cb) => this.#conn.whenGathered(cb),
      openControl: (control) => this.#openControl(control),
      applyRemote: (sdp, type) => this.#applyRemote(sdp, type),
    };
  }

  /** A new session that owns `ownCertificate` (removed when it closes, or now if the session cannot start). */
  static #make(role: SessionRole, opts: SessionOptions, manualAnswer: boolean, ownCertificate: CallCertificate | undefined, configured: IceConfig): Session {
    let session: Session;
    try {
      session = new Session(role, opts, manualAnswer, configured);
    } catch (err) {
      ownCertificate?.remove();
      throw err;
    }
    session.#ownCertificate = ownCertificate;
    return session;
  }

  /**
   * Caller side: make a session and its complete offer (all candidates, no
   * trickle), with the offerer as DTLS client. Mail `sdp` to the callee,
   * then give the answer to acceptAnswer().
   */
  static async createOffer(opts: OfferOptions): Promise<{ session: Session; sdp: string }> {
    if (opts.signal?.aborted) throw abortedError(opts.signal);
    const plans = planOffer(opts.media);
    // The answer is applied on a fresh connection with the offer's identity
    // (see acceptAnswer): its UDP port is pinned and its certificate kept.
    const { sessionOpts, ownCertificate } = await offererIdentity(opts);
    const session = Session.#make('offerer', sessionOpts, true, ownCertificate, opts.ice);
    const control = { label: opts.control?.label ?? CONTROL_LABEL, protocol: opts.control?.protocol ?? '' };
    try {
      const { sdp, offered } = await makeOffer(session.#inside, plans, control, opts);
      session.#offered = offered;
      session.#keepOfferConnection = opts.keepOfferConnection ?? ((opts.ice.turn?.length ?? 0) > 0 && behindNat(sdp));
      return { session, sdp };
    } catch (err) {
      session.close('offer not made');
      throw toSessionError(err, 'could not make an offer');
    }
  }

  /** The offerer's control channel on the current connection; the session is ready once it opens. */
  #openControl(control: { label: string; protocol: string }): void {
    const dc = this.#conn.pc.createDataChannel(control.label, { protocol: control.protocol });
    this.#step.controlChannel(this.#carried.adopt(dc, false));
  }

  /**
   * Callee side: apply a mailed offer and make the complete answer to mail
   * back. An actpass offer is made active first (the offerer becomes the DTLS
   * client), so the answer may come back to the caller minutes later.
   *
   * Late answers, and `keepAnswerMs`, which keeps the answer usable while it
   * is in the mail: see kept-answer.ts.
   */
  static async acceptOffer(offerSdp: string, opts: AnswerOptions): Promise<{ session: Session; sdp: string }> {
    if (opts.signal?.aborted) throw abortedError(opts.signal);
    const offer = usableOffer(offerSdp, opts.ice.bindAddress);
    const { keepMs, refreshMs } = keepAnswerTimes(opts);
    const keep = keepMs > 0;
    const standing = opts.standing;
    const plans = planAnswer(offer, opts.media);
    const { sessionOpts, ownCertificate } = await answererIdentity(opts, keep);
    const session = Session.#make('answerer', sessionOpts, keep || standing !== undefined, ownCertificate, opts.ice);
    session.#opensControl = opts.opensControl === true;
    try {
      const sdp = await makeAnswer(session.#inside, offer, plans, opts, keep);
      if (keep) {
        session.#kept = new KeptAnswer(session.#inside, offer, sdp, keepMs, refreshMs);
        session.#kept.schedule();
      }
      return { session, sdp };
    } catch (err) {
      session.close('answer not made');
      throw toSessionError(err, 'could not answer the offer');
    }
  }

  /**
   * Caller side: apply the mailed answer, on a fresh connection with the offer's identity (fresh-agent.ts
   * says why; OfferOptions.keepOfferConnection: on the offer's own). Then await connected().
   */
  acceptAnswer(answerSdp: string, opts: { provisional?: boolean } = {}): void {
    if (this.role !== 'offerer') throw new PeerdialError('USAGE', 'acceptAnswer() is for the offering side');
    if (this.#closed) throw this.#closedError();
    // An answer made from a standing answer is provisional: the callee may refuse it and mail a real one, which replaces it.
    if (this.#remoteSetAt !== undefined && !this.#provisional) {
      throw new PeerdialError('SESSION_FAILED', 'this offer has already been answered', { hint: FRESH_OFFER_HINT });
    }
    const answer = usableAnswer(answerSdp, this.#conn.rtc.bindAddress);
    // A provisional answer's connection is replaced only once it has gathered: closed while gathering, libjuice aborts the process ("Failed to gather local ICE candidates").
    const replacing = this.#remoteSetAt !== undefined;
    this.#remoteSetAt = performance.now();
    this.#provisional = opts.provisional === true;
    const offered = this.#offered;
    const here = this.#keepOfferConnection && !replacing && !hasRelayCandidate(answer);
    const apply = async () => {
      if (!offered) throw new Error('no offer was made on this session');
      if (here) applyAnswerHere(this.#inside, answer, answerSdp);
      else await applyAnswerFresh(this.#inside, offered, answer, answerSdp);
    };
    const fresh = replacing
      ? (this.#applying ?? Promise.resolve())
          .catch(() => undefined)
          .then(() => this.#conn.gathered(undefined, DEFAULT_GATHER_TIMEOUT_MS))
          .then(apply)
      : apply();
    this.#applying = fresh;
    void fresh.catch((err) => this.#fail(errorText(err), isPeerdialError(err) ? err : undefined));
  }

  /** Add a remote candidate (trickle); queued until the remote description is set (non-trickle signalling never needs it). */
  addRemoteCandidate(candidate: string, mid: string): void {
    if (this.#closed) return;
    // the same candidate policy as for a whole description (session/candidates.ts)
    if (candidateProblem(candidate, { loopback: isLoopbackOnly(this.#conn.rtc.bindAddress) })) return;
    if (this.#remoteSetAt === undefined) this.#pendingCandidates.push({ candidate, mid });
    else this.#conn.addCandidate(candidate, mid);
  }

  /**
   * Resolves when the peer connection is connected and the first data
   * channel (the control channel) is usable. Rejects with
   * PeerdialError('SESSION_FAILED') on failure or timeout (default 30 s; on
   * the callee, count the mail round trip in), 'SESSION_CLOSED' when the
   * session is closed first, 'ABORTED' on the signal. A timeout does not
   * close the session.
   */
  connected(opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Connected> {
    const ready = this.#step.ready;
    if (ready.settled) return ready.promise;
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(abortedError(signal));
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    return settledWithin(ready.promise, timeoutMs, signal, () => connectTimeoutError(this.#conn.noCommonFamily(), timeoutMs));
  }

  /** Open another channel; resolves once it is open. */
  async openChannel(label: string, opts: ChannelOptions = {}): Promise<Channel> {
    if (this.#closed) throw this.#closedError();
    // The connection may still be replaced (a kept answer; the offerer's
    // fresh connection for the answer): open on the one that connects.
    if (!this.#step.connected) await this.#step.ready.promise;
    if (this.#closed) throw this.#closedError();
    let dc: DataChannel;
    try {
      dc = this.#conn.pc.createDataChannel(label, { protocol: opts.protocol ?? '' });
    } catch (err) {
      throw toSessionError(err, `could not open channel "${label}"`);
    }
    const channel = this.#carried.adopt(dc, false, opts.lowWaterMark);
    await channel.whenOpen();
    return channel;
  }

  /**
   * Called for every channel the peer opens (on the callee this includes the
   * control channel). Channels that arrived earlier are
   * handed to every listener added later, too.
   */
  onChannel(cb: (channel: Channel) => void): void {
    this.#carried.onChannel(cb);
  }

  /** The session's media tracks (negotiated audio/video sections), in m-line order. */
  tracks(): MediaTrack[] {
    return [...this.#carried.tracks];
  }

  /** The first track of a kind, if the session has one. */
  track(kind: MediaKind): MediaTrack | undefined {
    return this.#carried.track(kind);
  }

  /**
   * Called for every media track of the session (those this side planned and
   * any the peer's description added); tracks that exist already are handed
   * to every listener added later, too. A track delivers RTP once it is open.
   */
  onTrack(cb: (track: MediaTrack) => void): void {
    this.#carried.onTrack(cb);
  }

  /** Called once when the session closes, with the reason. */
  onClose(cb: (reason: string) => void): void {
    if (this.#closed) queueMicrotask(() => deliver(cb, this.#closeReason));
    else this.#closeCbs.push(cb);
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** The selected candidate pair, if any. */
  selectedPair(): CandidatePair | undefined {
    if (this.#closed) return undefined;
    return this.#conn.selectedPair();
  }

  /**
   * End the session: closes the PeerConnection (which closes every channel)
   * and, when it was the last session, releases node-datachannel.
   */
  close(reason = 'closed'): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    this.#kept?.stop();
    const err = this.#closedError();
    this.#step.ready.reject(err);
    this.#conn.abandonWaits(err);
    this.#carried.closeAll(`the session was closed (${reason})`);
    this.#conn.close();
    this.#ownCertificate?.remove();
    this.#progress({ type: 'closed', reason });
    for (const cb of this.#closeCbs.splice(0)) deliver(cb, reason);
    unregister(this);
  }

  // -------------------------------------------------------------------------

  #applyRemote(sdp: string, type: 'offer' | 'answer'): void {
    this.#step.remoteDescription(sdp);
    try {
      this.#conn.pc.setRemoteDescription(sdp, type);
    } catch (err) {
      // PR 1612 race (remoteRefusedError): adding the description's candidates throws "without ICE transport".
      const raced = /without ICE transport/i.test(errorText(err)) || this.#conn.nativeState() === 'failed';
      const e = remoteRefusedError(type, err, raced);
      this.#fail(e.message, e);
      throw e;
    }
    this.#remoteSetAt = performance.now();
    for (const c of this.#pendingCandidates.splice(0)) this.#conn.addCandidate(c.candidate, c.mid);
  }

  /** A media section of the peer's description that no plan covered. */
  #onRemoteTrack(native: Track): void {
    if (this.#closed) return;
    this.#carried.addRemoteTrack(native);
  }

  #onRemoteChannel(dc: DataChannel): void {
    if (this.#closed) return;
    this.#step.remoteChannel(this.#carried.adopt(dc, true));
  }

  #onState(state: string): void {
    if (this.#closed) return;
    this.#progress({ type: 'state', state });
    if (state === 'connected') {
      this.#step.connectionUp();
      // the answerer's own control channel, for a peer that opens none (Delta Chat's call app; options.ts)
      if (this.#opensControl && this.#step.connected && !this.#step.hasControl) this.#step.controlChannel(this.#carried.adopt(this.#conn.pc.createDataChannel(CONTROL_LABEL, { protocol: '', id: ANSWERER_CONTROL_STREAM }), false));
    } else if (state === 'failed' && !this.#step.connected && this.#kept?.keeping()) {
      // The agent gave up before the caller had the answer: replace it now
      // (on a later tick, outside the native callback).
      setTimeout(() => void this.#kept?.replace('the agent gave up'), 0);
    } else if (state === 'failed') {
      this.#fail(this.#step.connected ? 'the direct connection was lost' : 'the direct connection failed');
    } else if (state === 'closed') {
      this.close('the connection closed');
    }
  }

  // -------------------------------------------------------------------------

  /** A failure: reject connected() with SESSION_FAILED and close. */
  #fail(reason: string, error?: PeerdialError): void {
    if (this.#closed) return;
    this.#progress({ type: 'failed', reason });
    this.#step.ready.reject(error ?? new PeerdialError('SESSION_FAILED', reason, { hint: FRESH_OFFER_HINT }));
    this.close(reason);
  }

  #progress(e: SessionProgress): void {
    if (this.#onProgress) deliver(this.#onProgress, e);
  }

  #closedError(): PeerdialError {
    return new PeerdialError('SESSION_CLOSED', `the session is closed (${this.#closeReason || 'closed'})`);
  }
}
