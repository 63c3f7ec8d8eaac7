import { Option, type Command } from 'commander';
import { openAccount } from '../api/open.js';
import { createInvite, joinInvite } from '../api/invite.js';
import { formatFingerprint } from '../wire/identity.js';
import { printJson, status, type GlobalOptions } from './output.js';

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('invite')
    .description('make a one-time invite (code, peerdial: link, QR code): whoever joins with it becomes an introduced contact')
    .option('--expires <seconds>', 'how long the invite is good', '86400')
    .option('--name <name>', 'the name the joiner gets in your contacts')
    .addOption(new Option('--answer <mode>', 'answer policy for the joiner').choices(['auto-answer', 'ring', 'deny']))
    .option('--no-qr', 'no QR code in the terminal')
    .action(async (o) => {
      const g = globals();
      const acc = await openAccount(g);
      const inv = await createInvite(acc, { ttlSeconds: Number(o.expires), ...(o.name ? { name: o.name } : {}), ...(o.answer ? { answer: o.answer } : {}) });
      if (g.json) return printJson(inv);
      console.log(`Invite from ${acc.email}, good once, until ${inv.expires}.`);
      console.log(`Your key: ${formatFingerprint(acc.identity.fingerprint)}`);
      console.log('\nCode (they run: peerdial join CODE):');
      console.log(`  ${inv.code}`);
      console.log('\nLink (holds your key too, so their first mail is encrypted):');
      console.log(`  ${inv.uri}`);
      if (o.qr !== false) {
        console.log('');
        const QRCode = (await import('qrcode')).default;
        console.log(await QRCode.toString(inv.uri, { type: 'terminal', small: true, errorCorrectionLevel: 'L' }));
      }
      console.log('Give it only to them, in person or over a channel you trust. When their introduction arrives');
      console.log('(your agent, or peerdial inbox) they are added as an introduced contact and get a confirmation.');
    });

  program
    .command('join <code>')
    .description('join an invite: adds the inviter as an introduced contact and mails them your key')
    .option('--name <name>', 'the name the inviter gets in your contacts')
    .addOption(new Option('--answer <mode>', 'answer policy for the inviter').choices(['auto-answer', 'ring', 'deny']))
    .option('--queue-only', 'only queue the introduction; a running agent or `peerdial outbox flush` sends it')
    .action(async (code: string, o) => {
      const g = globals();
      const acc = await openAccount(g);
      status(g, 'joining...');
      const r = await joinInvite(acc, code, { ...(o.name ? { name: o.name } : {}), ...(o.answer ? { answer: o.answer } : {}), queueOnly: Boolean(o.queueOnly) });
      if (g.json) return printJson(r);
      console.log(`Added ${r.contact.name} <${r.contact.email}> as introduced (key ${formatFingerprint(r.contact.fingerprint!)}).`);
      if (r.replaced) console.log(`Replaced the key learned before: ${formatFingerprint(r.replaced.fingerprint)} (${r.replaced.trust ?? 'unknown'}).`);
      console.log(`Introduction ${r.drain && r.drain.sent ? 'sent' : 'queued'}${r.encrypted ? ' (encrypted)' : ' (signed; the short code carries no key to encrypt to)'}; their confirmation arrives with your next peerdial inbox or agent.`);
      if (r.drain && r.drain.deferred) console.log('It could not be sent yet and stays in the outbox; see: peerdial outbox');
    });
}
