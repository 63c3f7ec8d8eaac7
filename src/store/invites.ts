/**
 * Invites this account handed out (the one-time secrets, until used or
 * expired) and the invites it joined (until the inviter's confirmation
 * arrives). One private JSON file in the account's state dir, written
 * atomically.
 */
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AnswerMode } from './contacts.js';
import { Mutex, readJson, writeJsonAtomic } from './files.js';

export interface PendingInvite {
  secret: string;
  created: string;
  expires: string;
  /** Name for the contact the joiner becomes (else taken from the address). */
  name?: string;
  answer?: AnswerMode;
  /**
   * A Delta Chat invite (`peerdial invite --delta-chat`): the link's
   * invite number; `secret` is its AUTH token. Used up by the joiner's
   * `vc-request-with-auth`, like any invite.
   */
  deltaChat?: { invitenumber: string };
}

export interface PendingJoin {
  inviter: string;
  fingerprint: string;
  secret: string;
  created: string;
  expires: string;
  /** Joining a Delta Chat invite (`secret` is its AUTH token): the SecureJoin step we wait for next. */
  deltaChat?: { invitenumber: string; awaiting: 'vc-auth-required' | 'vc-contact-confirm' };
}

interface InvitesFile {
  version: 1;
  invites: PendingInvite[];
  joins: PendingJoin[];
}

/** How long an invite stays good unless told otherwise. */
export const DEFAULT_INVITE_SECONDS = 24 * 3600;

export class InviteStore {
  private readonly file: string;
  private readonly mutex = new Mutex();

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'invites.json');
  }

  private async load(): Promise<InvitesFile> {
    const d = await readJson<InvitesFile>(this.file, { version: 1, invites: [], joins: [] });
    d.invites ??= [];
    d.joins ??= [];
    return d;
  }

  private change<T>(now: Date, fn: (d: InvitesFile) => T): Promise<T> {
    return this.mutex.run(async () => {
      const d = await this.load();
      const t = now.getTime();
      d.invites = d.invites.filter((i) => Date.parse(i.expires) > t);
      d.joins = d.joins.filter((j) => Date.parse(j.expires) > t);
      const r = fn(d);
      await writeJsonAtomic(this.file, d);
      return r;
    });
  }

  /** A fresh one-time secret, good for `ttlSeconds`. */
  create(input: { now: Date; ttlSeconds?: number; name?: string; answer?: AnswerMode; deltaChat?: boolean }): Promise<PendingInvite> {
    const invite: PendingInvite = {
      secret: randomBytes(16).toString('base64url'),
      ...(input.deltaChat ? { deltaChat: { invitenumber: randomBytes(16).toString('base64url') } } : {}),
      created: input.now.toISOString(),
      expires: new Date(input.now.getTime() + (input.ttlSeconds ?? DEFAULT_INVITE_SECONDS) * 1000).toISOString(),
      ...(input.name ? { name: input.name } : {}),
      ...(input.answer ? { answer: input.answer } : {}),
    };
    return this.change(input.now, (d) => {
      d.invites.push(invite);
      return invite;
    });
  }

  /** Invites not yet used nor expired. */
  async pending(now: Date): Promise<PendingInvite[]> {
    return (await this.load()).invites.filter((i) => Date.parse(i.expires) > now.getTime());
  }

  /** Uses up an invite's secret; false when it was gone already (used, expired). */
  consume(secret: string, now: Date): Promise<boolean> {
    return this.change(now, (d) => {
      const before = d.invites.length;
      d.invites = d.invites.filter((i) => i.secret !== secret);
      return d.invites.length < before;
    });
  }

  /** Changes a pending join (the next SecureJoin step awaited); false when it is gone. */
  updateJoin(inviter: string, now: Date, change: (j: PendingJoin) => void): Promise<boolean> {
    return this.change(now, (d) => {
      const j = d.joins.find((x) => x.inviter === inviter);
      if (j) change(j);
      return j !== undefined;
    });
  }

  addJoin(join: PendingJoin, now: Date): Promise<void> {
    return this.change(now, (d) => {
      d.joins = d.joins.filter((j) => j.inviter !== join.inviter);
      d.joins.push(join);
    });
  }

  /** Joins still waiting for the inviter's answer. */
  async joinsPending(now: Date): Promise<PendingJoin[]> {
    return (await this.load()).joins.filter((j) => Date.parse(j.expires) > now.getTime());
  }

  async joinFor(inviter: string, now: Date): Promise<PendingJoin | undefined> {
    return (await this.load()).joins.find((j) => j.inviter === inviter && Date.parse(j.expires) > now.getTime());
  }

  dropJoin(inviter: string, now: Date): Promise<void> {
    return this.change(now, (d) => {
      d.joins = d.joins.filter((j) => j.inviter !== inviter);
    });
  }
}
