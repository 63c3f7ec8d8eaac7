/**
 * A group call on one machine: the pairs of the mesh this member is part of
 * (agent/group-plan.ts has the design and the pure rules). Each pair is an
 * ordinary call of the phone, whose offer names the group; this file opens
 * the pair's group channel, shows each line with its sender, sends a file
 * to every member over its pair, passes on notices of pairs left out, and
 * lets a member leave without ending the call for the others.
 */
import type { Channel } from '../session/types.js';
import type { GroupField } from '../wire/message.js';
import { inboxOf } from '../carriers/channel-inbox.js';
import { carrierChannelNamed, onCarrierChannel, receiveFiles, sendFiles, type SentFile } from '../carriers/index.js';
import { GROUP_CHANNEL, GROUP_FILE_CHANNEL, decodeGroup, encodeGroup } from '../carriers/group-frames.js';
import { describePath } from '../session/relay.js';
import { leftOutLine, pairPlan, type LeftOut } from './group-plan.js';
import type { ActiveCall } from './phone-types.js';

export type GroupEvent =
  /** A pair is up: `peer` and this member hear each other. */
  | { type: 'pair-connected'; peer: string; path: string }
  /** This member's offer to `peer` did not connect. */
  | { type: 'pair-failed'; peer: string; detail: string }
  /** A chat line of `from` (the member at the other end of a pair). */
  | { type: 'line'; from: string; text: string }
  /** `peer` left (hung up, or its connection went away); the others go on. */
  | { type: 'left'; peer: string }
  /** A pair of the group that is not connected, and why. */
  | ({ type: 'left-out'; line: string } & LeftOut)
  /** A file `from` sent to the group arrived here (or was refused). */
  | { type: 'file'; from: string; name: string; status: 'saved' | 'rejected'; path?: string; sha256: string; reason?: string };

export interface GroupOptions {
  group: GroupField;
  /** This member's address. */
  me: string;
  /** Places this member's offer to `peer` (an ordinary call whose offer names the group). */
  place(peer: string, group: GroupField, signal: AbortSignal): Promise<ActiveCall>;
  /** Whether this member has `member` as a contact that may be called (a key pinned, not blocked). */
  knows(member: string): Promise<boolean>;
  /** Where files sent to the group land, and how large each member's may be. */
  downloadDir: string;
  fileMaxBytes(peer: string): Promise<number>;
  onEvent?: (e: GroupEvent) => void;
}

interface Pair {
  call: ActiveCall;
  channel: Promise<Channel>;
}

export interface GroupFileResult {
  peer: string;
  sent?: SentFile;
  error?: string;
}

export class GroupCall {
  private readonly pairs = new Map<string, Pair>();
  /** Offers of this member still ringing, by peer: a notice that the pair is left out cancels it. */
  private readonly ringing = new Map<string, AbortController>();
  private readonly leftOutSeen = new Map<string, LeftOut>();
  private readonly listeners: ((e: GroupEvent) => void)[] = [];
  private leaving = false;
  private placing: Promise<void> = Promise.resolve();

  constructor(private readonly o: GroupOptions) {
    if (o.onEvent) this.listeners.push(o.onEvent);
  }

  get id(): string {
    return this.o.group.id;
  }

  get members(): readonly string[] {
    return this.o.group.members;
  }

  /** Resolves when every offer this member makes has connected or failed (after start()). */
  settled(): Promise<void> {
    return this.placing;
  }

  /** Hear what happens in the group from now on. */
  on(cb: (e: GroupEvent) => void): void {
    this.listeners.push(cb);
  }

  /** Members this one is connected to now. */
  connected(): string[] {
    return [...this.pairs.keys()];
  }

  /** Pairs of the group known to be left out (this member's and those others reported). */
  leftOut(): LeftOut[] {
    return [...this.leftOutSeen.values()];
  }

  /**
   * Works out this member's pairs: offers to the later members it knows
   * (every offer at once), reports the pairs it must leave out. Resolves
   * when every offer of this member has connected or failed.
   */
  start(): Promise<void> {
    this.placing = (async () => {
      const known = new Map<string, boolean>();
      for (const m of this.members) if (m !== this.o.me) known.set(m, await this.o.knows(m));
      const plan = pairPlan(this.o.me, this.members, (m) => known.get(m) === true);
      for (const l of plan.leftOut) this.noteLeftOut(l);
      await Promise.all(plan.offerTo.map((peer) => this.offer(peer)));
    })();
    return this.placing;
  }

  private async offer(peer: string): Promise<void> {
    if (this.leaving || this.pairs.has(peer)) return;
    const ac = new AbortController();
    this.ringing.set(peer, ac);
    try {
      const call = await this.o.place(peer, this.o.group, ac.signal);
      this.attach(call);
    } catch (err) {
      if (!this.leftOutSeen.has(pairKey(this.o.me, peer))) this.emit({ type: 'pair-failed', peer, detail: (err as Error).message });
    } finally {
      this.ringing.delete(peer);
    }
  }

  /** A pair's call of this group has connected (placed here, or answered here). */
  attach(call: ActiveCall): void {
    const peer = call.peer;
    if (this.leaving || this.pairs.has(peer) || !this.members.includes(peer)) {
      call.hangup();
      return;
    }
    const channel = call.direction === 'out' ? call.session.openChannel(GROUP_CHANNEL) : carrierChannelNamed(call, GROUP_CHANNEL);
    channel.catch(() => undefined);
    this.pairs.set(peer, { call, channel });
    onCarrierChannel(call, (ch) => {
      if (ch.label === GROUP_FILE_CHANNEL) void this.receive(peer, ch);
    });
    this.emit({ type: 'pair-connected', peer, path: describePath(call.pair) });
    void call.ended.then(() => {
      if (this.pairs.get(peer)?.call !== call) return;
      this.pairs.delete(peer);
      if (!this.leaving) this.emit({ type: 'left', peer });
    });
    void this.listen(peer, call, channel);
  }

  private async listen(peer: string, call: ActiveCall, opening: Promise<Channel>): Promise<void> {
    let channel: Channel;
    try {
      channel = await opening;
    } catch {
      call.hangup();
      return;
    }
    // every member hears of every pair left out, whenever it joins
    for (const l of this.leftOutSeen.values()) await channel.send(encodeGroup({ t: 'left-out', ...l })).catch(() => undefined);
    const inbox = inboxOf(channel);
    for (;;) {
      const raw = await inbox.next().catch(() => null);
      if (raw === null) break;
      const m = decodeGroup(raw);
      if ('type' in m) continue;
      if (m.t === 'bye') break;
      if (m.t === 'chat') this.emit({ type: 'line', from: peer, text: m.text });
      else this.noteLeftOut({ offerer: m.offerer, answerer: m.answerer, why: m.why });
    }
    // the member at the other end left: this pair ends, the rest of the group goes on
    call.hangup();
  }

  /** A pair left out, learned here or from another member: told once, passed on to every pair. */
  private noteLeftOut(l: LeftOut): void {
    if (!this.members.includes(l.offerer) || !this.members.includes(l.answerer)) return;
    const key = pairKey(l.offerer, l.answerer);
    if (this.leftOutSeen.has(key)) return;
    this.leftOutSeen.set(key, l);
    // an offer of this member to somebody who does not know it would only ring out
    if (l.offerer === this.o.me) this.ringing.get(l.answerer)?.abort();
    this.emit({ type: 'left-out', ...l, line: leftOutLine(l) });
    for (const pair of this.pairs.values()) void pair.channel.then((ch) => ch.send(encodeGroup({ t: 'left-out', ...l }))).catch(() => undefined);
  }

  /** Says a line to every member connected now; resolves with those it went to. */
  async say(text: string): Promise<string[]> {
    const reached: string[] = [];
    await Promise.all(
      [...this.pairs.entries()].map(async ([peer, pair]) => {
        try {
          const ch = await pair.channel;
          await ch.send(encodeGroup({ t: 'chat', text: text.replace(/\r?\n$/, '') }));
          reached.push(peer);
        } catch {
          // that pair is going away; its 'left' follows
        }
      }),
    );
    return reached.sort((a, b) => this.members.indexOf(a) - this.members.indexOf(b));
  }

  /** Sends a file to every member connected now, each over its own pair, all at once. */
  async sendFile(file: string): Promise<GroupFileResult[]> {
    return Promise.all(
      [...this.pairs.entries()].map(async ([peer, pair]): Promise<GroupFileResult> => {
        let ch: Channel | undefined;
        try {
          ch = await pair.call.session.openChannel(GROUP_FILE_CHANNEL);
          const [sent] = await sendFiles(ch, [file]);
          return { peer, sent: sent! };
        } catch (err) {
          return { peer, error: (err as Error).message };
        } finally {
          ch?.close();
        }
      }),
    );
  }

  private async receive(peer: string, ch: Channel): Promise<void> {
    // read from the start, before anything awaits: the sender's offer may already be here
    inboxOf(ch);
    try {
      const max = await this.o.fileMaxBytes(peer);
      const got = await receiveFiles(ch, { dir: this.o.downloadDir, accept: (f) => f.size <= max });
      for (const f of got) {
        this.emit({
          type: 'file',
          from: peer,
          name: f.name,
          status: f.status,
          sha256: f.sha256,
          ...(f.path ? { path: f.path } : {}),
          ...(f.reason ? { reason: f.reason } : {}),
        });
      }
    } catch {
      // a transfer that failed is the sender's to report; the group goes on
    }
  }

  /** Leaves the group: a bye on every pair, every pair hung up; the others stay connected to each other. */
  async leave(): Promise<void> {
    this.leaving = true;
    for (const ac of this.ringing.values()) ac.abort();
    const pairs = [...this.pairs.values()];
    await Promise.all(
      pairs.map(async (p) => {
        const ch = await Promise.race([p.channel.catch(() => undefined), p.call.ended.then(() => undefined)]);
        if (ch?.isOpen) await ch.send(encodeGroup({ t: 'bye' })).catch(() => undefined);
        p.call.hangup();
        await p.call.ended;
      }),
    );
    await this.placing.catch(() => undefined);
    this.pairs.clear();
  }

  private emit(e: GroupEvent): void {
    for (const cb of this.listeners) {
      try {
        cb(e);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

function pairKey(a: string, b: string): string {
  return [a, b].sort().join(' ');
}

/** One line for a log of what happened in a group (names are mail addresses; lines are already safe to print). */
export function groupLine(e: GroupEvent): string {
  switch (e.type) {
    case 'pair-connected':
      return `connected to ${e.peer} (${e.path})`;
    case 'pair-failed':
      return `no connection to ${e.peer}: ${e.detail}`;
    case 'line':
      return `${e.from}: ${e.text}`;
    case 'left':
      return `${e.peer} left the group`;
    case 'left-out':
      return e.line;
    case 'file':
      return e.status === 'saved' ? `${e.from} sent ${e.name}: saved ${e.path ?? ''}` : `${e.from} sent ${e.name}: refused (${e.reason ?? 'not accepted'})`;
  }
}
