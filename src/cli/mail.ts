import type { Command } from 'commander';
import { openAccount } from '../api/open.js';
import { announce, checkInbox, flushOutbox, type InboxItem } from '../api/mail.js';
import { age, printJson, status, table, type GlobalOptions } from './output.js';

function describeItem(i: InboxItem): string {
  if (i.ok) {
    const ips = (i.addresses ?? []).map((a) => `${a.ip}${a.port ? `:${a.port}` : ''} (${a.scope})`).join(', ') || 'no address';
    return `${i.from}  ${i.kind}  ${ips}  sent ${age(i.created)}${i.learnedKey ? '  [key learned]' : ''}${i.encrypted ? '' : '  [not encrypted]'}`;
  }
  return `${i.from ?? '(unknown sender)'}  REJECTED: ${i.reason}: ${i.detail}  (left in ${i.folder}, untouched)`;
}

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('announce [contacts...]')
    .description("mail this machine's current addresses to contacts (default: all who get announcements)")
    .option('--valid <seconds>', 'how long the address is valid', '86400')
    .option('--queue-only', 'only queue; a running agent or `peerdial outbox flush` sends it')
    .option('--plain', 'to contacts without a key: send the addresses in clear text anyway (readable by both mail providers)')
    .action(async (who: string[], o) => {
      const g = globals();
      const acc = await openAccount(g);
      status(g, 'announcing...');
      const r = await announce(acc, { to: who, validSeconds: Number(o.valid), queueOnly: Boolean(o.queueOnly), plain: Boolean(o.plain) });
      if (g.json) return printJson(r);
      const ips = r.addresses.map((a) => a.ip).join(', ') || '(none)';
      for (const q of r.queued) console.log(`announced ${ips} to ${q.to}`);
      if (r.skipped.length) status(g, `not announced to ${r.skipped.join(', ')}: no key of theirs here (exchange keys: peerdial invite, or peerdial contacts add NAME EMAIL --key FILE; or --plain)`);
      if (r.drain && r.drain.deferred) console.log(`${r.drain.deferred} mail(s) could not be sent yet and stay in the outbox; see: peerdial outbox`);
    });

  program
    .command('inbox')
    .description('fetch, verify and list peerdial mail that arrived (other mail is left untouched)')
    .action(async () => {
      const g = globals();
      const acc = await openAccount(g);
      status(g, `checking ${acc.email}...`);
      const { items, result } = await checkInbox(acc);
      if (g.json) return printJson({ items, result });
      if (!items.length) console.log(`Nothing new (${result.scanned} new mail(s) looked at by header, none of them peerdial's).`);
      for (const i of items) console.log(describeItem(i));
    });

  const outbox = program
    .command('outbox')
    .description('mail waiting to be sent')
    .action(async () => {
      const g = globals();
      const acc = await openAccount(g);
      const list = await acc.outbox.list();
      if (g.json) return printJson(list);
      if (!list.length) return console.log('The outbox is empty.');
      console.log(table([['ID', 'TO', 'KIND', 'STATE', 'TRIES', 'LAST ERROR'], ...list.map((e) => [e.id, e.to.join(','), e.kind, e.state, String(e.attempts), e.lastError ?? '-'])]));
    });
  outbox
    .command('flush')
    .description('send everything queued now, ignoring backoff')
    .action(async () => {
      const g = globals();
      const acc = await openAccount(g);
      const r = await flushOutbox(acc, { force: true });
      if (g.json) return printJson(r);
      console.log(`sent ${r.sent}, still queued ${r.deferred}, refused ${r.failed}`);
      if (r.deferred || r.failed) process.exitCode = 1;
    });

  program
    .command('log')
    .description('the call log, newest last (missed calls included)')
    .option('--missed', 'only missed calls')
    .action(async (o) => {
      const g = globals();
      const acc = await openAccount(g);
      const list = (await acc.calls.list()).filter((e) => !o.missed || e.outcome === 'missed');
      if (g.json) return printJson(list);
      if (!list.length) return console.log('No calls yet.');
      console.log(table([['WHEN', 'DIR', 'PEER', 'OUTCOME', 'DETAIL'], ...list.map((e) => [e.at, e.direction, e.peer, e.outcome, e.detail ?? ''])]));
    });
}
