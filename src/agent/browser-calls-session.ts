/**
 * The session of a call whose end is a browser tab (browser-calls.ts): it
 * stands where a node-datachannel session would be in the phone, makes no
 * connection of its own, and only hands descriptions over. It is
 * "connected" once the descriptions are exchanged: the peer's answer handed
 * to the tab (caller), or the tab's answer given to the phone (callee).
 */
import { PeerdialError } from '../errors.js';
import { descriptionShapeProblem, forceOffererDtlsClient } from '../session/sdp.js';
import type { CallSession, Connected, SessionFactory, SessionRole } from '../session/index.js';
import type { CandidatePair, Channel, MediaTrack } from '../session/types.js';

/** The agent does not see the tab's path. */
const UNKNOWN_PAIR: CandidatePair = { local: 'unknown', remote: 'unknown' };

/** The control channel of a tab's call: the tab holds the real one, this side has none to send on. */
const NO_CHANNEL: Channel = {
  label: 'control',
  protocol: '',
  isOpen: false,
  maxMessageSize: 0,
  send: () => Promise.reject(new PeerdialError('SESSION_CLOSED', 'the call runs in a browser tab: its channels are the tab\'s')),
  onMessage: () => undefined,
  onClose: () => undefined,
  close: () => undefined,
};

export class TabSession implements CallSession {
  private closed = false;
  private readonly closeListeners: Array<(reason: string) => void> = [];
  private exchanged!: () => void;
  private fail!: (err: Error) => void;
  private readonly ready = new Promise<void>((res, rej) => {
    this.exchanged = res;
    this.fail = rej;
  });

  constructor(
    readonly role: SessionRole,
    private readonly onAnswer?: (answerSdp: string) => void,
  ) {
    this.ready.catch(() => undefined);
    if (role === 'answerer') this.exchanged();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  acceptAnswer(answerSdp: string): void {
    if (this.closed) throw new PeerdialError('SESSION_CLOSED', 'the call has ended');
    const problem = descriptionShapeProblem(answerSdp, 'answer');
    if (problem) throw new PeerdialError('SESSION_FAILED', problem);
    this.onAnswer?.(answerSdp);
    this.exchanged();
  }

  addRemoteCandidate(): void {}

  async connected(opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Connected> {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, rej) => {
      if (opts.timeoutMs !== undefined) timer = setTimeout(() => rej(new PeerdialError('CALL_TIMEOUT', 'no answer reached the tab in time')), opts.timeoutMs);
      opts.signal?.addEventListener('abort', () => rej(new PeerdialError('ABORTED', 'aborted')), { once: true });
    });
    try {
      await Promise.race([this.ready, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return { pair: UNKNOWN_PAIR, ms: Date.now() - started, channel: NO_CHANNEL };
  }

  openChannel(): Promise<Channel> {
    return Promise.reject(new PeerdialError('USAGE', 'the call runs in a browser tab: its channels are the tab\'s'));
  }

  onChannel(): void {}

  tracks(): MediaTrack[] {
    return [];
  }

  track(): MediaTrack | undefined {
    return undefined;
  }

  onTrack(): void {}

  onClose(cb: (reason: string) => void): void {
    this.closeListeners.push(cb);
  }

  selectedPair(): CandidatePair | undefined {
    return undefined;
  }

  close(reason = 'closed'): void {
    if (this.closed) return;
    this.closed = true;
    this.fail(new PeerdialError('SESSION_CLOSED', `the call ended (${reason})`));
    for (const cb of this.closeListeners.splice(0)) {
      try {
        cb(reason);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

/** Is this the session of a tab's call (nothing of it runs in this agent)? */
export function isTabSession(session: CallSession | undefined): boolean {
  return session instanceof TabSession;
}

/**
 * The caller's sessions of a tab's call: its one offer is the tab's (made
 * fit for peerdial; the offerer is made the DTLS client, as peerdial's own
 * offers are); `onAnswer` gets the peer's answer. A second offer (a retry)
 * cannot be made without the tab.
 */
export function offeringTab(offerSdp: string, onAnswer: (answerSdp: string) => void): SessionFactory {
  let offered = false;
  return {
    createOffer: async () => {
      if (offered) throw new PeerdialError('SESSION_FAILED', 'a browser tab\'s call has one offer: call again from the page');
      offered = true;
      return { session: new TabSession('offerer', onAnswer), sdp: forceOffererDtlsClient(offerSdp) };
    },
    acceptOffer: () => Promise.reject(new PeerdialError('USAGE', 'this call is the tab\'s own offer')),
  };
}

/** The callee's sessions of a tab's call: the answer is the tab's, once it gives one. */
export function answeringTab(answer: Promise<string>): SessionFactory {
  return {
    createOffer: () => Promise.reject(new PeerdialError('USAGE', 'this call is answered by a tab')),
    acceptOffer: async () => {
      const sdp = await answer;
      return { session: new TabSession('answerer'), sdp };
    },
  };
}
