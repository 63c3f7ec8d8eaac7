/** The implementation of the commands described in ../messages.ts, loaded when one runs. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { openAccount } from '../../api/open.js';
import { leaveMessage } from '../../api/messages.js';
import { checkInbox } from '../../api/mail.js';
import { agentOrAlone, connectControl } from '../../agent/control.js';
import { DESK } from '../../agent/desk.js';
import { age, printJson, safe, say, status, type GlobalOptions } from '../output.js';

export async function message(g: GlobalOptions, who: string, words: string[], o: Record<string, any>): Promise<void> {
  const acc = await openAccount(g);
  const text = words.join(' ').trim();
  const r = await leaveMessage(acc, who, { ...(text ? { text } : {}), ...(o.audio ? { audioFile: o.audio } : {}) });
  if (g.json) return printJson(r);
  say(r.sent ? `message sent to ${r.to}` : `message queued for ${r.to} (${(await connectControl(acc.stateDir)) ? 'the running agent sends it' : 'see: peerdial outbox'})`);
}

export async function messages(g: GlobalOptions, o: Record<string, any>): Promise<void> {
  const acc = await openAccount(g);
  if (o.check) {
    status(g, `checking ${acc.email}...`);
    // beside a running agent, the agent checks: one process consumes the mailbox
    await agentOrAlone(acc.stateDir, (agent) => agent.request(DESK.check), () => checkInbox(acc));
  }
  const list = await acc.messages.list();
  if (o.save) await fs.mkdir(o.save, { recursive: true });
  const saved: Record<string, string> = {};
  for (const m of list) {
    const file = acc.messages.attachmentPath(m);
    if (o.save && file) {
      const dest = path.join(o.save, `${m.id}${path.extname(file)}`);
      await fs.copyFile(file, dest);
      saved[m.id] = dest;
    }
    await acc.messages.markRead(m.id);
  }
  if (g.json) return printJson(list.map((m) => ({ ...m, ...(acc.messages.attachmentPath(m) ? { path: acc.messages.attachmentPath(m) } : {}), ...(saved[m.id] ? { savedTo: saved[m.id] } : {}) })));
  if (!list.length) return say('No messages.');
  for (const m of list) {
    const voice = m.attachment ? `  [voice message, ${m.attachment.bytes} bytes: ${saved[m.id] ?? acc.messages.attachmentPath(m)}]` : '';
    say(`${m.read ? ' ' : '*'} ${age(m.sent)}  ${safe(m.from)}: ${safe(m.text ?? '', 4000)}${voice}`);
  }
}
