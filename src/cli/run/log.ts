/** The implementation of `peerdial log` (described in ../log.ts), loaded when it runs. */
import { openAccount } from '../../api/open.js';
import { describeStrangers } from '../../store/strangers.js';
import { printJson, say, table, type GlobalOptions } from '../output.js';

export async function log(g: GlobalOptions, o: Record<string, any>): Promise<void> {
  const acc = await openAccount(g);
  // calls only: rejected mail from strangers is one summary line at the end
  const list = (await acc.calls.list()).filter((e) => e.outcome !== 'rejected' && (!o.missed || e.outcome === 'missed'));
  if (g.json) return printJson(list);
  const strangers = await acc.strangers.read();
  if (!list.length) say('No calls yet.');
  else say(table([['WHEN', 'DIR', 'PEER', 'OUTCOME', 'DETAIL'], ...list.map((e) => [e.at, e.direction, e.peer, e.path ? `${e.outcome} (${e.path})` : e.outcome, e.detail ?? ''])]));
  if (strangers && !o.missed) say(describeStrangers(strangers));
}
