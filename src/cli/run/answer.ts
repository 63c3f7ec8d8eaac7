/** `peerdial ringing`, `answer`, `decline`: talk to the running agent (descriptors in ../answer.ts). */
import { PeerdialError } from '../../errors.js';
import { openAccount } from '../../api/open.js';
import { connectControl, type ControlClient } from '../../agent/control.js';
import { printJson, safe, say, type GlobalOptions } from '../output.js';

async function agentOf(g: GlobalOptions): Promise<ControlClient> {
  const acc = await openAccount(g);
  const c = await connectControl(acc.stateDir);
  if (!c) {
    throw new PeerdialError('USAGE', `No agent is running for ${acc.email}, so nothing can ring.`, {
      hint: 'Start it: peerdial agent   (or take one call here with: peerdial listen)',
    });
  }
  return c;
}

export async function ringing(g: GlobalOptions): Promise<void> {
  const c = await agentOf(g);
  try {
    const list = (await c.request('ringing')) as { callId: string; peer: string; purpose: string; trust?: string }[];
    if (g.json) return printJson(list);
    if (!list.length) return say('Nothing is ringing.');
    for (const r of list) say(`${safe(r.callId)}  ${safe(r.peer)}  (${safe(r.purpose)})${r.trust === 'learned' ? '  [new key, learned from their mail: not introduced]' : ''}`);
  } finally {
    c.close();
  }
}

export async function answer(g: GlobalOptions, callId?: string): Promise<void> {
  const c = await agentOf(g);
  try {
    await c.request('answer', callId ? { callId } : {});
    console.log('answered');
  } finally {
    c.close();
  }
}

export async function decline(g: GlobalOptions, callId: string | undefined, o: { text?: string }): Promise<void> {
  const c = await agentOf(g);
  try {
    await c.request('decline', { ...(callId ? { callId } : {}), ...(o.text ? { text: o.text } : {}) });
    console.log('declined');
  } finally {
    c.close();
  }
}
