import type { Command } from 'commander';
import { PeerdialError } from '../errors.js';
import { openAccount } from '../api/open.js';
import { connectControl, type ControlClient } from '../agent/control.js';
import { printJson, safe, say, type GlobalOptions } from './output.js';

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

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('ringing')
    .description('incoming calls ringing at the running agent')
    .action(async () => {
      const g = globals();
      const c = await agentOf(g);
      try {
        const list = (await c.request('ringing')) as { callId: string; peer: string; purpose: string }[];
        if (g.json) return printJson(list);
        if (!list.length) return say('Nothing is ringing.');
        for (const r of list) say(`${safe(r.callId)}  ${safe(r.peer)}  (${safe(r.purpose)})`);
      } finally {
        c.close();
      }
    });

  program
    .command('answer [callId]')
    .description('answer a ringing call (default: the newest); the agent carries it')
    .action(async (callId?: string) => {
      const c = await agentOf(globals());
      try {
        await c.request('answer', callId ? { callId } : {});
        console.log('answered');
      } finally {
        c.close();
      }
    });

  program
    .command('decline [callId]')
    .description('decline a ringing call (default: the newest); the caller is told by mail')
    .option('--text <reason>', 'a short reason the caller sees')
    .action(async (callId: string | undefined, o) => {
      const c = await agentOf(globals());
      try {
        await c.request('decline', { ...(callId ? { callId } : {}), ...(o.text ? { text: o.text } : {}) });
        console.log('declined');
      } finally {
        c.close();
      }
    });
}
