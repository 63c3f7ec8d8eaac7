/**
 * A kept answer: the answerer's mailed answer, kept usable while it travels
 * back by mail (AnswerOptions.keepAnswerMs): until the session connects, its
 * connection is replaced, again and again, by one the answer still fits.
 *
 * Late answers: on a reachable path (loopback, or a caller that accepts
 * unsolicited packets) the callee's ICE stays connected to the caller's
 * agent while the answer is in the mail, and with the offerer as DTLS
 * client nothing times out: answers applied 90 s late connect (see
 * test/session). Behind a filtering NAT on the caller's side the callee's
 * checks are dropped until the caller has the answer, and libjuice gives up
 * after ~39.5 s (nat.md, measured again in test/nat.test.ts), however
 * long the connect timeout.
 *
 * With `keepAnswerMs` the answer stays usable that long: its ICE
 * credentials, DTLS certificate (`certificate`, or one the session makes)
 * and UDP port (a free port picked up front and pinned) are kept, and every
 * keepAnswerRefreshMs (25 s) until connected the connection is replaced by
 * a fresh one with the same identity and so the same host and srflx
 * candidates; media tracks move to each new connection (SessionTrack.moveTo:
 * the replaced native tracks and their handlers stay referenced, dropping
 * them is what crashed node-datachannel before). Whenever the
 * caller applies the answer, a live agent matching it is listening. A
 * progress event 'answer-kept' tells each replacement. Measured: answers
 * applied 90 s late connect behind a port-restricted caller, where a plain
 * session fails at ~39.5 s (test/nat.test.ts).
 */
import { errorText } from './channel.js';
import { PORT_RELEASE_TIMEOUT_MS } from './options.js';
import { candidateAddresses, iceIdentity } from './sdp.js';
import type { SessionInside } from './session-inside.js';

/** What a kept answer's replacing connections must reproduce, and the replacing. */
export class KeptAnswer {
  readonly #session: SessionInside;
  readonly offer: string;
  readonly ufrag: string;
  readonly pwd: string;
  readonly fingerprint: string;
  /** "address port type" of the answer's candidates, sorted. */
  readonly candidates: string[];
  readonly until: number;
  readonly refreshMs: number;
  /** Replacements so far. */
  count = 0;
  #timer: NodeJS.Timeout | undefined;
  #replacing = false;

  /** Throws when the answer lacks ICE credentials or a fingerprint. Call schedule() to start. */
  constructor(session: SessionInside, offer: string, answer: string, keepMs: number, refreshMs: number) {
    const id = iceIdentity(answer);
    if (!id) throw new Error('the answer lacks ICE credentials or a fingerprint');
    this.#session = session;
    this.offer = offer;
    this.ufrag = id.ufrag;
    this.pwd = id.pwd;
    this.fingerprint = id.fingerprint;
    this.candidates = candidateAddresses(answer);
    this.until = performance.now() + keepMs;
    this.refreshMs = refreshMs;
  }

  /** Is the answer still to be kept: not connected, not closed, keepAnswerMs not run out? */
  keeping(): boolean {
    const s = this.#session;
    return !s.isClosed() && !s.isConnected() && performance.now() < this.until;
  }

  /** The next replacement in refreshMs (unless the caller's agent is answering our checks). */
  schedule(): void {
    const s = this.#session;
    if (s.isClosed() || s.isConnected()) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      // A connected ICE agent (the caller's agent answers our checks) does not time out.
      const ice = s.conn.iceState;
      if (ice === 'connected' || ice === 'completed') this.schedule();
      else void this.replace('refresh');
    }, this.refreshMs);
  }

  stop(): void {
    clearTimeout(this.#timer);
  }

  /** Replace the connection by one with the same ICE credentials, certificate and port. */
  async replace(_why: string): Promise<void> {
    const s = this.#session;
    if (s.isClosed() || s.isConnected() || this.#replacing) return;
    if (performance.now() >= this.until) {
      s.fail('the answer was not used in time (keepAnswerMs ran out before the caller connected)');
      return;
    }
    this.#replacing = true;
    try {
      await this.#replaceNow();
    } finally {
      this.#replacing = false;
    }
  }

  async #replaceNow(): Promise<void> {
    const s = this.#session;
    s.carried.detachTracks();
    const released = await s.conn.release(() => s.isClosed());
    const releaseMs = released.ms;
    if (s.isClosed() || s.isConnected()) return;
    if (!released.free) {
      s.fail(`could not keep the answer usable: UDP port ${s.conn.rtc.portRangeBegin} was not released within ${PORT_RELEASE_TIMEOUT_MS / 1000} s`);
      return;
    }
    let sdp: string;
    try {
      const pc = s.conn.replace();
      s.carried.moveTracksTo(pc);
      pc.setRemoteDescription(this.offer, 'offer');
      pc.setLocalDescription('answer', { iceUfrag: this.ufrag, icePwd: this.pwd });
      sdp = pc.localDescription()?.sdp ?? '';
      const id = iceIdentity(sdp);
      if (!id || id.fingerprint !== this.fingerprint || id.ufrag !== this.ufrag || id.pwd !== this.pwd) {
        throw new Error('the new connection does not match the answer (certificate or ICE credentials differ)');
      }
    } catch (err) {
      s.fail(`could not keep the answer usable: ${errorText(err)}`);
      return;
    }
    const count = ++this.count;
    const pc = s.conn.pc;
    const report = () => {
      if (s.isClosed() || pc !== s.conn.pc) return;
      const now = candidateAddresses(pc.localDescription()?.sdp ?? sdp);
      const host = (list: string[]) => list.filter((c) => c.endsWith(' host')).join(',');
      if (host(now) !== host(this.candidates) && !s.isConnected()) {
        s.fail(`could not keep the answer usable: the new connection has other host candidates (${host(now)}; the answer has ${host(this.candidates)})`);
        return;
      }
      s.progress({ type: 'answer-kept', count, same: now.join(',') === this.candidates.join(','), releaseMs });
    };
    if (pc.gatheringState() === 'complete') report();
    else s.whenGathered(report);
    this.schedule();
  }
}
