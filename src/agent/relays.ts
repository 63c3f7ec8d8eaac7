/**
 * The TURN relays of the user's config (`[ice] turn`) for the phone's
 * calls: their passwords are fetched once (command, environment variable or
 * 0600 file, like the mail password) at the first call that needs them, and
 * each call's ICE settings get them. No relay is configured, none is used.
 */
import { resolveTurnServers } from '../config/turn.js';
import type { IceSettings } from '../config/types.js';
import type { IceConfig, TurnRelay } from '../session/types.js';
import { PeerdialError } from '../errors.js';

export class Relays {
  #got: Promise<TurnRelay[]> | undefined;

  constructor(
    private readonly ice: IceSettings,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** The relays with their passwords; a failed fetch is tried again at the next call. */
  get(): Promise<TurnRelay[]> {
    this.#got ??= resolveTurnServers(this.ice, this.env)
      .then((list) => list.map(({ host, port, username, password }) => ({ host, port, username, password })))
      .catch((err: unknown) => {
        this.#got = undefined;
        throw err;
      });
    return this.#got;
  }
}

/** The relays for one attempt, when the config has any. */
export function relaysFor(ice: IceSettings): Relays | undefined {
  return ice.turn?.length ? new Relays(ice) : undefined;
}

/**
 * `ice` with the configured relays added. When their password cannot be
 * had, the call goes on without a relay (a direct path may still work) and
 * `onError` says why.
 */
export async function withRelays(ice: IceConfig, relays: Relays | undefined, onError: (err: Error) => void): Promise<IceConfig> {
  if (!relays) return ice;
  try {
    const turn = await relays.get();
    return turn.length ? { ...ice, turn } : ice;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    onError(new PeerdialError('SECRET_UNAVAILABLE', `no TURN relay for this call (${why}); going on without`, { cause: err }));
    return ice;
  }
}
