/**
 * One-mail calls: where standing answers (wire/standing.ts) are made, kept
 * and used, each through its machine (agent/standing.ts).
 *
 * - The callee's StandingKeeper: the standing answers this agent announced,
 *   one per contact, with what it keeps for each (a UDP port, a DTLS
 *   certificate, ICE credentials). An offer naming one is honoured once,
 *   before it expires, for an introduced or verified contact; then the
 *   callee answers on that identity and mails no answer. Kept in memory: an
 *   agent that restarts knows none, and an offer naming one is answered by
 *   mail (STANDING_ANSWER_UNKNOWN).
 * - The caller's takeStanding: the standing answer held from a contact
 *   (store/standing.ts, shared by the agent and `peerdial call`), used for
 *   one call.
 *
 * Every refusal is a PeerdialError with a STANDING_ANSWER_* code; the call
 * then goes with two mails.
 */
import { randomBytes } from 'node:crypto';
import { PeerdialError } from '../errors.js';
import type { StandingAnswer } from '../wire/standing.js';
import type { StandingStore } from '../store/standing.js';
import type { TrustLevel } from '../store/contacts.js';
import type { StandingIdentity } from '../session/standing-sdp.js';
import { newStanding, refusalError, type StandingMachine, type StandingOutput } from './standing.js';

/** How long a standing answer is good for unless the announce says otherwise. */
export const STANDING_SECONDS = 3600;

export type StandingUse<T> = { ok: true; standing: StandingAnswer; kept: T } | { ok: false; error: PeerdialError };


/** A standing answer from `self` for `contact`, on this identity, valid `seconds` from `now`. */
export function makeStanding(self: string, contact: string, identity: StandingIdentity, now: Date, seconds: number = STANDING_SECONDS): StandingAnswer {
  return {
    v: 1,
    id: randomBytes(18).toString('base64url'),
    from: self.toLowerCase(),
    to: contact.toLowerCase(),
    created: now.toISOString(),
    expires: new Date(now.getTime() + seconds * 1000).toISOString(),
    iceUfrag: identity.iceUfrag,
    icePwd: identity.icePwd,
    fingerprint: identity.fingerprint,
    candidates: [...identity.candidates],
  };
}

function outcome(out: StandingOutput[]): { use: true } | { use: false; error: PeerdialError } {
  for (const o of out) {
    if ('refuse' in o) return { use: false, error: refusalError(o.refuse) };
    if ('use' in o) return { use: true };
  }
  return { use: false, error: new PeerdialError('STANDING_ANSWER_UNKNOWN', 'the standing answer cannot be used') };
}

interface Issued<T> {
  standing: StandingAnswer;
  kept: T;
  m: StandingMachine;
}

/** The callee's standing answers, by id, with what is kept for each (`T`: port, certificate). */
export class StandingKeeper<T> {
  private readonly issued = new Map<string, Issued<T>>();

  /** `release` frees what was kept for a standing answer that will serve no call (expired, withdrawn). */
  constructor(private readonly release: (kept: T, standing: StandingAnswer) => void) {}

  private carryOut(i: Issued<T>, out: StandingOutput[]): void {
    if (out.some((o) => 'to' in o && o.to === 'keeper')) {
      this.issued.delete(i.standing.id);
      this.release(i.kept, i.standing);
    }
    // a used one stays until it expires, so that an offer naming it again is refused as used
  }

  /** A standing answer was made for its contact (`standing.to`): the contact's earlier one is withdrawn. */
  issue(standing: StandingAnswer, kept: T): void {
    for (const i of [...this.issued.values()]) {
      if (i.standing.to === standing.to) this.carryOut(i, i.m.handle({ type: 'agent-withdraw', reason: 'a newer standing answer was made' }));
    }
    const m = newStanding({ id: standing.id, contact: standing.to, expires: Date.parse(standing.expires) });
    this.issued.set(standing.id, { standing, kept, m });
  }

  /** The contact's current standing answer, if any (to announce again). */
  current(contact: string): StandingAnswer | undefined {
    for (const i of this.issued.values()) if (i.standing.to === contact.toLowerCase() && i.m.state === 'fresh') return i.standing;
    return undefined;
  }

  /**
   * An offer from `from` names standing answer `id`: honour it (once) or
   * refuse it. What was kept goes to the caller of this method with it.
   */
  honour(id: string, from: string, trust: TrustLevel, now: Date): StandingUse<T> {
    const i = this.issued.get(id);
    if (!i) return { ok: false, error: new PeerdialError('STANDING_ANSWER_UNKNOWN', `no standing answer ${id} is kept here (withdrawn, used, or made before this agent started)`, { hint: 'Nothing to do: this call goes with two mails.' }) };
    const out = i.m.handle({ type: 'peer-offer', from: from.toLowerCase(), trust, now: now.getTime() });
    const r = outcome(out);
    this.carryOut(i, out);
    return r.use ? { ok: true, standing: i.standing, kept: i.kept } : { ok: false, error: r.error };
  }

  /** Expire what is due at `now`; returns how many were released. */
  sweep(now: Date): number {
    let n = 0;
    for (const i of [...this.issued.values()]) {
      if (Date.parse(i.standing.expires) <= now.getTime()) {
        this.carryOut(i, i.m.handle({ type: 'clock-expired' }));
        // used: its session took what was kept; only the record goes
        this.issued.delete(i.standing.id);
        n++;
      }
    }
    return n;
  }

  /** Withdraw every standing answer (the agent stops, or its addresses changed). */
  withdrawAll(reason: string): void {
    for (const i of [...this.issued.values()]) this.carryOut(i, i.m.handle({ type: 'agent-withdraw', reason }));
  }

  get size(): number {
    return this.issued.size;
  }
}

/**
 * The caller takes the standing answer held from `contact` for one call.
 * Refused (with the code saying why) when there is none, it served a call
 * already, it expired, or the contact is not introduced or verified.
 */
export async function takeStanding(store: StandingStore, contact: string, trust: TrustLevel, now: Date): Promise<StandingUse<undefined>> {
  return store.update(contact, (held) => {
    if (!held) {
      return { result: { ok: false as const, error: new PeerdialError('STANDING_ANSWER_UNKNOWN', `no standing answer from ${contact} is held here`, { hint: 'Nothing to do: this call goes with two mails; a standing answer comes with their next announce.' }) } };
    }
    const m = newStanding({ id: held.standing.id, contact: held.standing.from, expires: Date.parse(held.standing.expires) }, held.state);
    const r = outcome(m.handle({ type: 'user-call', contact: contact.toLowerCase(), trust, now: now.getTime() }));
    const result: StandingUse<undefined> = r.use ? { ok: true, standing: held.standing, kept: undefined } : { ok: false, error: r.error };
    return { state: m.state, result };
  });
}
