/**
 * What an Agent is given (AgentOptions) and what it reports (AgentEvent),
 * and the ICE settings its calls take from the config.
 */
import type { Account } from './account.js';
import type { MailboxEvent } from './mailbox.js';
import type { ActiveCall, PhoneEvent } from './phone-types.js';
import type { Timers } from '../util/timers.js';
import type { IceConfig } from '../session/types.js';
import type { SourceOptions } from '../media/index.js';
import type { ControlClient, ControlRequests } from './control.js';
import type { AddressWatchOptions } from '../address/watch.js';
import type { Link } from '../link/hooks.js';
import type { GroupCall } from './group-desk.js';

export function iceFromConfig(account: Account): IceConfig {
  const ice = account.config.ice;
  // libjuice uses only the first STUN server; later STUN entries (kept in the
  // config for `peerdial address` / doctor's NAT guess) are left out.
  const firstStun = ice.servers.find((u) => /^stuns?:/i.test(u));
  const servers = ice.servers.filter((u) => u === firstStun || !/^stuns?:/i.test(u));
  return {
    iceServers: servers,
    ...(ice.bindAddress ? { bindAddress: ice.bindAddress } : {}),
    ...(ice.portRangeBegin ? { portRangeBegin: ice.portRangeBegin } : {}),
    ...(ice.portRangeEnd ? { portRangeEnd: ice.portRangeEnd } : {}),
  };
}

export type AgentEvent =
  | PhoneEvent
  | MailboxEvent
  | { type: 'carried'; callId: string; what: string; detail: string }
  /** Something happened in a group call (agent/group.ts), in one line. */
  | { type: 'group'; groupId: string; detail: string }
  | { type: 'address-changed'; addresses: string[]; announcedTo: string[]; notAnnounced?: string[] }
  /** A command beside the agent asked it something over the control socket. */
  | { type: 'control-request'; name: string }
  /** A session process died while it carried calls; they ended, the agent goes on. */
  | { type: 'session-process-crashed'; pid: number; signal: string | null; code: number | null; sessions: number; reason: string };

export interface AgentOptions {
  account: Account;
  onEvent?: (e: AgentEvent) => void;
  /** Replace the built-in handling of a connected incoming call (tests, `peerdial listen`). */
  onIncoming?: (call: ActiveCall) => Promise<void> | void;
  timers?: Timers;
  forceAnswer?: boolean;
  refuseIncoming?: boolean;
  /**
   * Machine-wide bound on `forward` targets ("HOST:PORT" or "HOST:*"), on top of each
   * contact's own allow-list (`contacts allow NAME forward=HOST:PORT`). Default: the config's.
   */
  forwardAllow?: string[];
  connectTimeoutMs?: number;
  calleeConnectTimeoutMs?: number;
  /**
   * 'serve': this is THE agent of the account; it opens the control socket.
   * A ControlClient: a running agent owns the mailbox and the outbox; this
   * one only places calls through it.
   */
  control?: 'serve' | ControlClient;
  /**
   * Watch this machine's addresses and announce changes to the contacts that
   * want announcements (`peerdial agent` does; tests pass their own source).
   */
  addressWatch?: Pick<AddressWatchOptions, 'read' | 'monitor' | 'debounceMs' | 'fallbackMs'>;
  /**
   * Camera node: `view` calls from allowed callers get this source's picture
   * and sound. One encoder, shared by every viewer, runs only while somebody
   * watches.
   */
  camera?: SourceOptions;
  /**
   * Link hooks (src/link/hooks.ts): the agent brings the link down when it
   * stops; with `pollMinutes` it polls (link up, check once, down) instead of watching.
   */
  link?: { hooks: Link; pollMinutes?: number };
  /**
   * Where the calls' sessions run: 'isolated' (a supervised child process per
   * call, src/session/remote.ts: a native crash ends that call, not the agent)
   * or 'in-process'. Default: isolated for the agent of the account
   * (`control: 'serve'`), in-process otherwise.
   */
  sessions?: 'isolated' | 'in-process';
  /** A group call was started or joined by this agent (agent/group-desk.ts): subscribe to it now. */
  onGroup?: (g: GroupCall) => void;
  /** The web page (src/web/) carries this connected incoming call (a chat while it is open); undefined: the usual handling. */
  carryElsewhere?: (call: ActiveCall) => Promise<void> | undefined;
  /** More named requests for the control socket (`peerdial web` asks the agent for its page). */
  moreRequests?: ControlRequests;
}
