/**
 * Standing answers this account holds from its contacts (wire/standing.ts):
 * the latest one from each contact, with how far its life has gone
 * (agent/standing.ts decides; this file only keeps it). The agent that
 * reads an announce keeps its standing answer here; the process that
 * places the call (the agent, or a `peerdial call` beside it) takes it, so
 * the file is locked across processes and a standing answer serves one
 * call however many processes try. One private JSON file, written
 * atomically.
 */
import path from 'node:path';
import type { StandingAnswer } from '../wire/standing.js';
import { StoreLock, readJson, writeJsonAtomic } from './files.js';

export type HeldState = 'fresh' | 'used' | 'expired' | 'withdrawn';

export interface HeldStanding {
  standing: StandingAnswer;
  state: HeldState;
  /** When it was kept (the announce was read), ISO 8601 UTC. */
  received: string;
}

interface StandingFile {
  version: 1;
  /** By the contact it came from (lower-case address). */
  held: Record<string, HeldStanding>;
}

export class StandingStore {
  private readonly file: string;
  private readonly lock: StoreLock;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'standing.json');
    this.lock = new StoreLock(this.file);
  }

  private load(): Promise<StandingFile> {
    return readJson<StandingFile>(this.file, { version: 1, held: {} });
  }

  /**
   * Keep the standing answer of a verified announce: it replaces whatever
   * this contact's earlier one was. One with an id already held is not taken
   * again (a replayed announce does not make a used answer fresh).
   */
  async keep(standing: StandingAnswer, now: Date): Promise<boolean> {
    return this.lock.run(async () => {
      const d = await this.load();
      const before = d.held[standing.from];
      if (before && before.standing.id === standing.id) return false;
      d.held[standing.from] = { standing, state: 'fresh', received: now.toISOString() };
      await writeJsonAtomic(this.file, d);
      return true;
    });
  }

  /** What is held from this contact, untouched. */
  async peek(contact: string): Promise<HeldStanding | undefined> {
    return (await this.load()).held[contact.toLowerCase()];
  }

  /**
   * Read, decide and write back under the lock: `decide` gets what is held
   * from this contact (or undefined) and returns its new state (or
   * undefined to leave it), and a result for the caller.
   */
  async update<R>(contact: string, decide: (held: HeldStanding | undefined) => { state?: HeldState; result: R }): Promise<R> {
    return this.lock.run(async () => {
      const d = await this.load();
      const key = contact.toLowerCase();
      const held = d.held[key];
      const { state, result } = decide(held);
      if (held && state && state !== held.state) {
        held.state = state;
        await writeJsonAtomic(this.file, d);
      }
      return result;
    });
  }
}
