/**
 * The agent: the long-running process of one account. Inbox watcher +
 * outbox + policy + the phone, plus what an answered call carries when
 * nobody sits at the terminal (unattended.ts: files into the download
 * folder, a pipe into a file there, port forwards to allowed targets, chat
 * lines to the log).
 */
import { AgentBrowserCalls, isTabSession } from './browser-calls.js';
import type { Account } from './account.js';
import { OutboxLoop, ReplyExpectations, watchInbox, type MailboxEvent } from './mailbox.js';
import { Phone } from './phone.js';
import type { ActiveCall, CallOptions, RingingCall } from './phone-types.js';
import { SessionHosts, shutdownSessions } from '../session/index.js';
import { answerLanes } from '../carriers/index.js';
import { PeerdialError } from '../errors.js';
import { SharedSource, startSource, type MediaSource } from '../media/index.js';
import { serveControl, type ControlClient, type ControlServer } from './control.js';
import { watchAddresses, type AddressWatcher } from '../address/watch.js';
import type { DetectedAddress } from '../address/interfaces.js';
import { addressEntries, announce, type AnnounceOptions, type AnnounceResult } from './announce.js';
import type { StandingAnswer } from '../wire/standing.js';
import { HealthRecord, type AgentHealth } from './health.js';
import { pollMailbox } from './poll.js';
import { Desk } from './desk.js';
import { recheckKept, type RecheckResult } from './kept.js';
import { relaysFor } from './relays.js';
import { carryUnattended } from './unattended.js';
import { GroupDesk } from './group-desk.js';
import { iceFromConfig, type AgentEvent, type AgentOptions } from './agent-options.js';

export { iceFromConfig, type AgentEvent, type AgentOptions } from './agent-options.js';
export { channelNamed, waitEnded } from './call-waits.js';

export class Agent {
  readonly phone: Phone;
  /** The group calls of this agent (group-desk.ts): `groups.start(['bob', 'carol'])` calls everybody at once. */
  readonly groups: GroupDesk;
  readonly outbox: OutboxLoop;
  /** What commands beside the agent ask of it (inbox, announce, outbox flush, doctor). */
  private readonly desk: Desk;
  /** Replies this agent's calls wait for by mail (handed to the inbox watcher of the moment). */
  readonly replies = new ReplyExpectations();
  private readonly ac = new AbortController();
  private watching?: Promise<void>;
  private carrying = new Set<Promise<void>>();
  private control?: ControlServer;
  private readonly remote?: ControlClient;
  /** What `peerdial status` reports about the mailbox. */
  private readonly health = new HealthRecord();

  /** Calls whose end is a browser tab (browser-calls.ts): the web page hands descriptions to it. */
  readonly browserCalls: AgentBrowserCalls;
  /** The camera's encoder, shared by the viewers (camera nodes only). */
  readonly camera?: SharedSource<MediaSource>;
  /** The session processes, when sessions are isolated. */
  readonly sessionHosts?: SessionHosts;

  constructor(private readonly o: AgentOptions) {
    const emit = (e: AgentEvent) => o.onEvent?.(e);
    if ((o.sessions ?? (o.control === 'serve' ? 'isolated' : 'in-process')) === 'isolated') {
      this.sessionHosts = new SessionHosts({ onCrash: (c) => emit({ type: 'session-process-crashed', ...c }) });
    }
    if (o.camera) {
      const source = o.camera;
      this.camera = new SharedSource(() => startSource(source));
    }
    if (o.control && o.control !== 'serve') this.remote = o.control;
    const remote = this.remote;
    this.outbox = new OutboxLoop(o.account, (e) => {
      if (e.type === 'sent') {
        this.phone.mailSent(e.messageId);
        this.control?.sent(e.messageId);
      }
      emit(e);
    });
    // announces of this agent carry standing answers (one-mail calls) where the phone makes them
    this.desk = new Desk(o.account, this.outbox, (to) => this.phone.standingFor(to));
    this.browserCalls = new AgentBrowserCalls({ call: (who, opts) => this.phone.call(who, opts) });
    this.phone = new Phone({
      account: o.account,
      sessionsFor: (offer) => this.browserCalls.sessionsFor(offer),
      ice: iceFromConfig(o.account),
      ...(relaysFor(o.account.config.ice) ? { relays: relaysFor(o.account.config.ice)! } : {}),
      ...(this.sessionHosts ? { sessions: this.sessionHosts } : {}),
      send: () => (remote ? remote.poke() : this.outbox.poke()),
      // the caller's answer is expected: check the mailbox at a short interval meanwhile (this agent's own watcher)
      ...(remote ? {} : { expectReply: (opts: { until: Date }) => this.replies.expect(opts) }),
      ...(o.account.config.ice.portMapping ? { portMapping: o.account.config.ice.portMapping } : {}),
      ...(remote ? { onCallPlaced: (callId: string) => remote.subscribe(callId) } : {}),
      elsewhere: (msg, messageId) => this.control?.deliver(msg, messageId) ?? false,
      takeOffer: (msg, messageId) => this.control?.offerToTaker(msg, messageId) ?? false,
      answerMedia: (offer) => {
        if (offer.purpose === 'view' && this.camera) return { video: { direction: 'sendonly' }, audio: { direction: 'sendonly' } };
        // a call with voice/video: send our camera when there is one, and receive theirs
        const d = this.camera ? 'sendrecv' : 'recvonly';
        if (offer.purpose === 'media') return { video: { direction: d }, audio: { direction: d } };
        return undefined;
      },
      refuseOffer: (offer) => (offer.purpose === 'view' && !this.camera && !o.onIncoming ? 'there is no camera here' : undefined),
      ...(o.timers ? { timers: o.timers } : {}),
      ...(o.forceAnswer ? { forceAnswer: true } : {}),
      ...(o.refuseIncoming ? { refuseIncoming: true } : {}),
      ...(o.connectTimeoutMs ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
      ...(o.calleeConnectTimeoutMs ? { calleeConnectTimeoutMs: o.calleeConnectTimeoutMs } : {}),
      onEvent: (e) => {
        if (e.type === 'ringing') this.ringing.set(e.call.callId, e.call);
        if (e.type === 'ended') this.ringing.delete(e.callId);
        this.browserCalls.phoneEvent(e);
        // a tab's call runs in the tab: nothing to carry here
        // a call that can move to a new transport needs to know when this machine's addresses change
        if (e.type === 'connected' && e.call.transport) this.watchForCalls();
        if (e.type === 'connected' && e.call.direction === 'in' && !isTabSession(e.call.session)) {
          // before anything awaits: the caller may offer a TLS lane at once
          answerLanes(e.call);
          // on a new transport (a restart) the caller's lane offers come on its new control channel
          e.call.transport?.onSwitch(() => answerLanes(e.call));
          this.carry(e.call);
        }
        // an introduction was accepted: its confirmation waits in the outbox
        if (e.type === 'message' && e.message.kind === 'introduce') this.outbox.poke();
        emit(e);
      },
    });
    this.groups = new GroupDesk({ account: o.account, phone: this.phone, onGroup: o.onGroup, log: (groupId, detail) => emit({ type: 'group', groupId, detail }) });
  }

  get account(): Account {
    return this.o.account;
  }

  /** True when a running agent owns the mailbox and this one only places calls through it. */
  get viaRunningAgent(): boolean {
    return this.remote !== undefined;
  }

  /** Starts watching the inbox and draining the outbox (or listening to the running agent). */
  start(): void {
    if (this.remote) {
      if (this.o.forceAnswer) this.remote.takeIncoming();
      this.remote.onMail((msg, id) => void this.phone.handleVerified(msg, id));
      this.remote.onSent((id) => this.phone.mailSent(id));
      return;
    }
    this.outbox.start(this.ac.signal);
    if (this.o.addressWatch) {
      this.addresses = watchAddresses({
        ...this.o.addressWatch,
        signal: this.ac.signal,
        onChange: (now) => {
          // calls in progress first: their restarts should not wait for the announces
          this.phone.addressesChanged(now);
          void this.announceChange(now);
        },
      });
    }
    const onEvent = (e: MailboxEvent) => {
      this.health.mailboxEvent(e);
      if (e.type === 'checked') this.desk.checked(e.result);
      // a SecureJoin step answered: the answer waits in the outbox
      if (e.type === 'chat-mail' && e.result.queued) this.outbox.poke();
      this.o.onEvent?.(e);
    };
    const onMail = (mail: Parameters<Phone['handleMail']>[0]) => (this.desk.handled(mail) ? undefined : this.phone.handleMail(mail));
    // mail that came before its sender was a contact gets its second look
    void this.recheckKept();
    const poll = this.o.link?.pollMinutes;
    this.watching = poll
      ? pollMailbox({ account: this.o.account, link: this.o.link!.hooks, everyMs: poll * 60_000, signal: this.ac.signal, onMail, busy: () => this.phone.activeCount() > 0, onEvent })
      : watchInbox(this.o.account, {
          signal: this.ac.signal,
          onMail,
          onEvent,
          onWatcher: (w) => {
            this.desk.watcherChanged(w);
            this.replies.watcherChanged(w);
          },
          classifyFirst: (raw) => this.desk.classifyFirst(raw),
        });
  }

  /** Looks again at kept mail of senders who are contacts now (`contacts add` asks for it). */
  async recheckKept(only?: string): Promise<RecheckResult> {
    try {
      return await recheckKept(this.o.account, (mail) => this.phone.handleMail(mail), only);
    } catch (err) {
      this.o.onEvent?.({ type: 'error', error: err as Error });
      return { looked: 0, accepted: 0 };
    }
  }

  call(who: string, opts: CallOptions = {}): Promise<ActiveCall> {
    return this.phone.call(who, opts);
  }

  private carry(call: ActiveCall): void {
    if (call.group) return this.groups.incoming(call); // a pair of a group call: into its group (group-desk.ts)
    const run = (async () => {
      try {
        const elsewhere = this.o.carryElsewhere?.(call);
        if (elsewhere) await elsewhere;
        else if (this.o.onIncoming) await this.o.onIncoming(call);
        else {
          await carryUnattended(call, {
            account: this.o.account,
            camera: this.camera,
            forwardAllow: this.o.forwardAllow,
            say: (what, detail) => this.o.onEvent?.({ type: 'carried', callId: call.callId, what, detail }),
          });
        }
      } catch (err) {
        this.o.onEvent?.({ type: 'carried', callId: call.callId, what: call.purpose, detail: `failed: ${(err as Error).message}` });
      }
    })();
    this.carrying.add(run);
    void run.finally(() => this.carrying.delete(run));
  }

  /** Opens the control socket (`peerdial agent`); fails when another agent of the account runs. */
  async serveControl(): Promise<void> {
    this.control = await serveControl({
      stateDir: this.o.account.stateDir,
      email: this.o.account.email,
      poke: () => this.outbox.poke(),
      onRequest: (name) => this.o.onEvent?.({ type: 'control-request', name }),
      requests: {
        ...this.desk.requests(),
        status: () => this.status(),
        'address-changed': () => {
          this.addresses?.poke();
          return { watching: this.addresses?.mode ?? 'off' };
        },
        ringing: () => [...this.ringing.values()].map((r) => ({ callId: r.callId, peer: r.peer, purpose: r.purpose, trust: r.trust })),
        'recheck-kept': (a) => this.recheckKept(typeof a.email === 'string' ? a.email : undefined),
        answer: (a) => this.pickRinging(a.callId).accept(),
        decline: (a) => this.pickRinging(a.callId).decline(typeof a.text === 'string' ? a.text : undefined),
        ...this.o.moreRequests,
      },
    });
  }

  /** Agent up, mailbox, IDLE, last check, outbox length, active calls (`peerdial status`). */
  async status(): Promise<AgentHealth> {
    const outboxLength = (await this.o.account.outbox.list().catch(() => [])).length;
    return this.health.snapshot({ pid: process.pid, email: this.o.account.email, outboxLength, activeCalls: this.phone.activeCount() });
  }

  /** Incoming calls ringing now, newest last. */
  private readonly ringing = new Map<string, RingingCall>();

  /** Incoming calls ringing now, oldest first (the web page shows them). */
  ringingNow = (): RingingCall[] => [...this.ringing.values()];

  /** Takes a ringing call out of the list to answer or decline it; without an id, the newest. */
  pickRinging(callId: unknown): RingingCall {
    const all = [...this.ringing.values()];
    const r = typeof callId === 'string' && callId ? this.ringing.get(callId) : all.at(-1);
    if (!r) throw new PeerdialError('USAGE', all.length ? `No ringing call ${String(callId)}.` : 'No call is ringing.');
    this.ringing.delete(r.callId);
    return r;
  }

  private addresses?: AddressWatcher;
  /** Without an announcing watcher (a command's agent): one that only tells calls in progress, started with the first of them. */
  private callAddresses?: AbortController;

  private watchForCalls(): void {
    if (this.addresses || this.callAddresses) return;
    this.callAddresses = new AbortController();
    watchAddresses({
      ...(this.o.addressWatch ?? {}),
      signal: this.callAddresses.signal,
      onChange: (now) => this.phone.addressesChanged(now),
    });
  }
  /** Contacts already told about in a log line: not announced to, for want of a key. */
  private readonly notAnnounced = new Set<string>();

  /** A standing answer for `to` (one-mail calls), or undefined; a failure to make one is reported, the announce goes without. */
  private async standingFor(to: string, seconds?: number): Promise<StandingAnswer | undefined> {
    try {
      return await this.phone.standingFor(to, seconds);
    } catch (err) {
      this.o.onEvent?.({ type: 'error', error: err as Error });
      return undefined;
    }
  }

  /**
   * Announce this machine's addresses (agent/announce.ts), each with a
   * standing answer where the contact may call with one mail; queued and
   * sent by this agent's outbox.
   */
  async announce(opts: Omit<AnnounceOptions, 'standingFor' | 'queueOnly'> & { standingSeconds?: number } = {}): Promise<AnnounceResult> {
    const { standingSeconds, ...rest } = opts;
    const r = await announce(this.o.account, { ...rest, queueOnly: true, standingFor: (to) => this.standingFor(to, standingSeconds) });
    this.outbox.poke();
    return r;
  }

  /** Our addresses changed: tell the contacts that asked for announcements. */
  private async announceChange(now: DetectedAddress[]): Promise<void> {
    const acc = this.o.account;
    const entries = addressEntries(now);
    const all = (await acc.contacts.list()).filter((c) => c.announce && !c.blocked);
    // addresses go only encrypted: contacts without a key are skipped, and said so once each
    const wanting = all.filter((c) => c.fingerprint);
    const notAnnounced = all.filter((c) => !c.fingerprint && !this.notAnnounced.has(c.email)).map((c) => c.email);
    notAnnounced.forEach((e) => this.notAnnounced.add(e));
    const announcedTo: string[] = [];
    if (entries.length && wanting.length) {
      const r = await announce(acc, { to: wanting.map((c) => c.email), addresses: entries, queueOnly: true, standingFor: (to) => this.standingFor(to) }).catch((err) => {
        this.o.onEvent?.({ type: 'error', error: err as Error });
        return undefined;
      });
      for (const q of r?.queued ?? []) announcedTo.push(q.to);
      this.outbox.poke();
    }
    this.o.onEvent?.({ type: 'address-changed', addresses: entries.map((e) => e.ip), announcedTo, ...(notAnnounced.length ? { notAnnounced } : {}) });
  }

  private stopping?: Promise<void>;

  /** Cancels ringing calls, hangs up the others, flushes the outbox, stops watching. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  private async stopOnce(): Promise<void> {
    await this.groups.leaveAll();
    await this.phone.shutdown();
    this.callAddresses?.abort();
    await Promise.allSettled([...this.carrying]);
    await this.camera?.stop();
    if (this.o.account.config.ice.portMapping && this.o.account.config.ice.portMapping !== 'off') {
      // every router mapping this process made goes away with it
      await (await import('../address/portmap.js')).unmapAll();
    }
    if (this.remote) {
      this.remote.poke();
      this.remote.close();
      await this.sessionHosts?.shutdown();
      shutdownSessions();
      return;
    }
    await this.control?.close();
    this.ac.abort();
    await this.outbox.stop();
    await this.watching;
    await this.o.link?.hooks.down().catch(() => undefined);
    await this.sessionHosts?.shutdown();
    shutdownSessions();
  }
}
