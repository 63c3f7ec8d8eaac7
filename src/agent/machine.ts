/**
 * A tiny helper for the call state machines: a table of
 * (state, event) -> (next state, outputs). The machines are pure: they
 * keep no timers and touch no socket or mail; the runtime feeds them
 * typed events and carries out the outputs they return.
 */
export interface Transition<S extends string, O> {
  to: S;
  out?: O[];
}

export type Table<S extends string, E extends { type: string }, O> = {
  [K in S]?: { [T in E['type']]?: (e: Extract<E, { type: T }>) => Transition<S, O> };
};

export class Machine<S extends string, E extends { type: string }, O> {
  private current: S;
  readonly history: S[];

  constructor(initial: S, private readonly table: Table<S, E, O>, private readonly terminal: readonly S[]) {
    this.current = initial;
    this.history = [initial];
  }

  get state(): S {
    return this.current;
  }

  get done(): boolean {
    return this.terminal.includes(this.current);
  }

  /** Feeds one event; returns the outputs. An event the state does not expect is ignored (returns []). */
  handle(e: E): O[] {
    const row = this.table[this.current];
    const fn = row?.[e.type as E['type']] as ((e: E) => Transition<S, O>) | undefined;
    if (!fn) return [];
    const t = fn(e);
    if (t.to !== this.current) {
      this.current = t.to;
      this.history.push(t.to);
    }
    return t.out ?? [];
  }
}
