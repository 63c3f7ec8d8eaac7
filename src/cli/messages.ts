import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { openAccount } from '../api/open.js';
import { leaveMessage } from '../api/messages.js';
import { checkInbox } from '../api/mail.js';
import { agentOrAlone, connectControl } from '../agent/control.js';
import { DESK } from '../agent/desk.js';
import { age, printJson, safe, say, status, type GlobalOptions } from './output.js';

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('message <who> [text...]')
    .description('leave a text or voice message by mail (signed, encrypted once keys are known)')
    .option('--audio <file>', 'a recorded voice message (.opus .ogg .m4a .mp3 .wav .webm)')
    .action(async (who: string, words: string[], o) => {
      const g = globals();
      const acc = await openAccount(g);
      const text = words.join(' ').trim();
      const r = await leaveMessage(acc, who, { ...(text ? { text } : {}), ...(o.audio ? { audioFile: o.audio } : {}) });
      if (g.json) return printJson(r);
      say(r.sent ? `message sent to ${r.to}` : `message queued for ${r.to} (${(await connectControl(acc.stateDir)) ? 'the running agent sends it' : 'see: peerdial outbox'})`);
    });

  program
    .command('messages')
    .description('messages and voicemail that came by mail, oldest first')
    .option('--save <dir>', 'copy voice messages into this folder')
    .option('--no-check', 'do not check the mailbox first (when no agent runs)')
    .action(async (o) => {
      const g = globals();
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
    });
}
