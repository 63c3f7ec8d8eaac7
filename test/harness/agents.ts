/** Agents of test peers, with every event they report recorded for the scenario's assertions. */
import { Agent, type AgentEvent, type AgentOptions } from '../../src/agent/agent.js';
import { waitFor, type Peer } from './peers.js';

export interface RecordedAgent {
  agent: Agent;
  events: AgentEvent[];
}

/** Starts `peer`'s agent and waits until it idles on its mailbox. */
export async function agentOf(peer: Peer, extra: Partial<AgentOptions> = {}): Promise<RecordedAgent> {
  const events: AgentEvent[] = [];
  const agent = new Agent({ account: await peer.open(), onEvent: (e) => events.push(e), ...extra });
  agent.start();
  await waitFor(`${peer.name}'s agent idling`, () => events.some((e) => e.type === 'idle'));
  return { agent, events };
}

/** The state sequence of every call that ended, in the given direction, oldest first. */
export function endedStates(events: AgentEvent[], direction: 'in' | 'out'): string[][] {
  return events.filter((e): e is Extract<AgentEvent, { type: 'ended' }> => e.type === 'ended' && e.direction === direction).map((e) => e.states);
}
