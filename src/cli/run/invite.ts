/** The implementation of the commands described in ../invite.ts, loaded when one runs. */
import { openAccount } from '../../api/open.js';
import { createDeltaChatInviteLink, createInvite, joinInvite } from '../../api/invite.js';
import { formatFingerprint } from '../../wire/identity.js';
import { printJson, status, type GlobalOptions } from '../output.js';

export async function invite(g: GlobalOptions, o: Record<string, any>): Promise<void> {
  const acc = await openAccount(g);
  if (o.deltaChat) return deltaChatInvite(g, acc, o);
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
}

async function deltaChatInvite(g: GlobalOptions, acc: Awaited<ReturnType<typeof openAccount>>, o: Record<string, any>): Promise<void> {
  const inv = await createDeltaChatInviteLink(acc, { ttlSeconds: Number(o.expires), ...(o.name ? { name: o.name } : {}), ...(o.answer ? { answer: o.answer } : {}) });
  if (g.json) return printJson(inv);
  console.log(`Delta Chat invite from ${acc.email}, good once, until ${inv.expires}.`);
  console.log(`Your key: ${formatFingerprint(acc.identity.fingerprint)}`);
  console.log('\nLink (they scan the QR code in Delta Chat, or paste the link there):');
  console.log(`  ${inv.link}`);
  if (o.qr !== false) {
    console.log('');
    const QRCode = (await import('qrcode')).default;
    console.log(await QRCode.toString(inv.link, { type: 'terminal', small: true, errorCorrectionLevel: 'L' }));
  }
  console.log('Your agent (or peerdial inbox) answers their Delta Chat; at the end they are a verified contact');
  console.log('here and you are verified in their Delta Chat.');
}

export async function join(g: GlobalOptions, code: string, o: Record<string, any>): Promise<void> {
  const acc = await openAccount(g);
  status(g, 'joining...');
  const r = await joinInvite(acc, code, { ...(o.name ? { name: o.name } : {}), ...(o.answer ? { answer: o.answer } : {}), queueOnly: Boolean(o.queueOnly) });
  if (g.json) return printJson(r);
  if (r.deltaChat) {
    console.log(`Added ${r.contact.name} <${r.contact.email}> (Delta Chat, key ${formatFingerprint(r.contact.fingerprint!)} awaited).`);
    console.log(`SecureJoin request ${r.drain && r.drain.sent ? 'sent' : 'queued'}; their Delta Chat answers, your agent (or peerdial inbox) goes on; the contact is verified at the end.`);
    return;
  }
  console.log(`Added ${r.contact.name} <${r.contact.email}> as introduced (key ${formatFingerprint(r.contact.fingerprint!)}).`);
  if (r.replaced) console.log(`Replaced the key learned before: ${formatFingerprint(r.replaced.fingerprint)} (${r.replaced.trust ?? 'unknown'}).`);
  console.log(`Introduction ${r.drain && r.drain.sent ? 'sent' : 'queued'}${r.encrypted ? ' (encrypted)' : ' (signed; the short code carries no key to encrypt to)'}; their confirmation arrives with your next peerdial inbox or agent.`);
  if (r.drain && r.drain.deferred) console.log('It could not be sent yet and stays in the outbox; see: peerdial outbox');
}
