/**
 * `peerdial call alice bob carol`: a group call in the terminal (agent/group.ts).
 * Every line typed goes to every member connected; `/send FILE` sends a
 * file to each of them over its own pair; lines arrive with their sender's
 * name. Ctrl-D or Ctrl-C leaves; the others stay connected to each other.
 */
import { createInterface } from 'node:readline';
import { PeerdialError } from '../../errors.js';
import type { Agent } from '../../agent/agent.js';
import type { GroupCall, GroupEvent } from '../../agent/group.js';
import { checkFilesToSend } from './call.js';
import { groupMembers } from '../../agent/group-plan.js';
import { LIMITS } from '../../wire/limits.js';
import { startCommandAgent } from './session-ui.js';
import { safe, say, status, type GlobalOptions } from '../output.js';

/** Options of `peerdial call` that a group call does not take. */
const NOT_FOR_GROUPS = ['pipe', 'forward', 'view', 'record', 'video', 'audio', 'source', 'sourceAudio', 'seconds', 'message'] as const;

export async function groupCall(g: GlobalOptions, who: string[], o: Record<string, any>): Promise<void> {
  const bad = NOT_FOR_GROUPS.filter((k) => o[k] !== undefined && o[k] !== false);
  if (bad.length) throw new PeerdialError('USAGE', `a group call is a chat (and files with /send): --${bad.map(kebab).join(', --')} goes with a call to one person.`);
  // refused before anything starts: no login, no offer (the agent's groupCall checks it again, with the addresses)
  if (new Set(who).size + 1 > LIMITS.groupMembers) groupMembers('', who);
  const agent = await startCommandAgent(g);
  try {
    const names = await nameBook(agent);
    const group = await agent.groups.start(who, {
      ...(o.ringSeconds ? { ringSeconds: Number(o.ringSeconds) } : {}),
      ...(o.plain ? { plain: true } : {}),
    });
    await chat(g, group, names);
  } finally {
    await agent.stop();
  }
}

/** A member's contact name, or the address. */
async function nameBook(agent: Agent): Promise<(email: string) => string> {
  const contacts = await agent.account.contacts.list();
  return (email) => contacts.find((c) => c.email === email)?.name ?? email;
}

function describe(e: GroupEvent, name: (email: string) => string): string | undefined {
  switch (e.type) {
    case 'pair-connected':
      return `${name(e.peer)} joined (${e.path})`;
    case 'pair-failed':
      return `${name(e.peer)} is not in the call: ${e.detail}`;
    case 'left':
      return `${name(e.peer)} left; the others stay connected`;
    case 'left-out':
      return `no connection between ${name(e.offerer)} and ${name(e.answerer)}: ${e.why}; they do not hear each other`;
    case 'file':
      return e.status === 'saved' ? `${name(e.from)} sent ${e.name}: saved as ${e.path ?? e.name} (SHA-256 ${e.sha256})` : `${name(e.from)} sent ${e.name}: refused (${e.reason ?? 'not accepted'})`;
    default:
      return undefined;
  }
}

async function chat(g: GlobalOptions, group: GroupCall, name: (email: string) => string): Promise<void> {
  status(g, `calling ${group.members.slice(1).map(name).map((n) => safe(n)).join(', ')} (a group of ${group.members.length}: every pair connects directly)...`);
  status(g, 'type a line and press Enter; /send FILE sends a file to everybody; Ctrl-D or Ctrl-C leaves');
  let leave!: () => void;
  const left = new Promise<void>((r) => (leave = r));
  let settled = false;
  group.on((e) => {
    if (e.type === 'line') say(`${safe(name(e.from))}: ${safe(e.text, 16 * 1024)}`);
    const line = describe(e, name);
    if (line) status(g, line);
    if (e.type === 'left' && settled && group.connected().length === 0) {
      status(g, 'everybody has left');
      leave();
    }
  });
  void group.settled().then(() => {
    settled = true;
    if (group.connected().length === 0) {
      status(g, 'nobody is connected');
      leave();
    }
  });
  const onSigint = () => leave();
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigint);
  const rl = createInterface({ input: process.stdin, terminal: false });
  rl.on('close', () => leave());
  const typing = (async () => {
    for await (const line of rl) {
      const text = line.replace(/\r?\n$/, '');
      const file = /^\/send\s+(.+)$/.exec(text)?.[1]?.trim();
      if (file) {
        try {
          await checkFilesToSend([file]);
        } catch (err) {
          status(g, (err as Error).message);
          continue;
        }
        for (const r of await group.sendFile(file)) {
          status(g, r.sent?.status === 'sent' ? `${file} sent to ${name(r.peer)} (SHA-256 ${r.sent.sha256})` : `${file} not sent to ${name(r.peer)}: ${r.error ?? r.sent?.reason ?? 'refused'}`);
        }
        continue;
      }
      if (group.connected().length === 0) status(g, 'nobody is connected yet; the line was not sent');
      else await group.say(text);
    }
  })();
  await left;
  process.off('SIGINT', onSigint);
  process.off('SIGTERM', onSigint);
  rl.close();
  await typing.catch(() => undefined);
  await group.leave();
  status(g, 'left the group');
}

function kebab(k: string): string {
  return k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
