/**
 * The doctor's TURN check: each relay of `[ice] turn` is asked for an
 * allocation over UDP with the configured credentials (the password from
 * the URL, a command, an environment variable or a 0600 file), and the
 * allocation is released again. UDP is the only transport checked because
 * it is the only one calls can use (libjuice: no TURN over TCP/TLS, no
 * ICE-TCP).
 */
import type { Config } from '../config/config.js';
import { resolveTurnServers, turnUrls } from '../config/turn.js';
import { turnAllocate } from '../address/turn.js';
import { PeerdialError } from '../errors.js';

/** checks.ts's report(), as this check uses it. */
type Report = (id: 'turn', verdict: 'ok' | 'fail' | 'not-checked', detail: string, extra?: { hint?: string; ms?: number }) => unknown;

const TRANSPORTS = 'transports: UDP works; TCP and TLS are not checked: peerdial (libjuice) relays over UDP only';

function text(err: unknown): { detail: string; hint?: string } {
  if (err instanceof PeerdialError) return { detail: `${err.message} [${err.code}]`, ...(err.hint ? { hint: err.hint } : {}) };
  return { detail: err instanceof Error ? err.message : String(err) };
}

export async function checkTurn(cfg: Config, report: Report, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<void> {
  if (!cfg.ice.turn?.length) {
    report('turn', 'not-checked', 'no TURN relay configured ([ice] turn): calls between two sites that cannot reach each other directly fail', {
      hint: 'If you run or trust a TURN server (over UDP): [ice] turn = ["turn:USER:PASSWORD@HOST:3478"].',
    });
    return;
  }
  let servers;
  try {
    turnUrls(cfg.ice);
    servers = await resolveTurnServers(cfg.ice);
  } catch (err) {
    const d = text(err);
    report('turn', 'fail', d.detail, d.hint ? { hint: d.hint } : {});
    return;
  }
  for (const s of servers) {
    const t = Date.now();
    try {
      const a = await turnAllocate(s, { timeoutMs: opts.timeoutMs, ...(cfg.ice.bindAddress ? { localAddress: cfg.ice.bindAddress } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
      const seen = a.mapped ? `, sees this machine at ${a.mapped.address}:${a.mapped.port}` : '';
      report('turn', 'ok', `${s.display}: allocation over UDP succeeded (realm ${a.realm}): relayed address ${a.relayed.address}:${a.relayed.port}${seen}${a.released ? ', released again' : ''}; ${TRANSPORTS}`, { ms: Date.now() - t });
    } catch (err) {
      const d = text(err);
      report('turn', 'fail', `${s.display}: ${d.detail}`, { ...(d.hint ? { hint: d.hint } : {}), ms: Date.now() - t });
    }
  }
}
