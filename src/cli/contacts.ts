import { Option, type Command } from 'commander';
import { openAccount } from '../api/open.js';
import { formatFingerprint, readPublicKey, fingerprintOf } from '../wire/identity.js';
import type { Contact } from '../store/contacts.js';
import { age, printJson, table, type GlobalOptions } from './output.js';
import { promises as fs } from 'node:fs';

function presenceLine(c: Contact): string {
  if (!c.presence) return 'no address yet';
  const ips = c.presence.addresses.map((a) => (a.ip.includes(':') ? `[${a.ip}]` : a.ip)).join(' ') || '(none)';
  const valid = c.presence.validUntil && Date.parse(c.presence.validUntil) > Date.now() ? 'valid' : 'stale';
  return `${ips} (${valid}, ${age(c.presence.updated)})`;
}

function keyState(c: Contact): string {
  if (c.blocked) return 'blocked';
  if (!c.fingerprint) return 'no key yet';
  return c.verified ? 'verified' : 'key pinned, not verified';
}

export function register(program: Command, globals: () => GlobalOptions): void {
  const contacts = program
    .command('contacts')
    .description('the address book: who may call you, their keys, aliases and last known address')
    .action(async () => {
      await listContacts(globals());
    });

  contacts
    .command('add <name> <email>')
    .description('add a contact (their key is learned from their first mail, or give --key)')
    .option('--alias <alias...>', 'aliases or short numbers (e.g. 12)')
    .option('--key <file>', 'their armored public key, if you have it already')
    .addOption(new Option('--answer <mode>', 'answer policy for this contact').choices(['auto-answer', 'ring', 'deny']))
    .action(async (name: string, email: string, o) => {
      const g = globals();
      const acc = await openAccount(g);
      let c = await acc.contacts.add({ name, email, aliases: o.alias ?? [] });
      if (o.key) {
        const key = await readPublicKey(await fs.readFile(o.key, 'utf8'));
        c = await acc.contacts.pinKey(c.email, key.armor(), fingerprintOf(key), 'manual');
      }
      if (o.answer) c = await acc.contacts.update(c.email, (x) => (x.answer = o.answer));
      if (g.json) return printJson(c);
      console.log(`Added ${c.name} <${c.email}>${c.aliases.length ? ` (aliases: ${c.aliases.join(', ')})` : ''}.`);
      if (!c.fingerprint) console.log(`No key of ${c.name} yet: your addresses go to them only encrypted. Exchange keys (peerdial invite, or contacts add --key FILE), or send in clear text with: peerdial announce ${c.name} --plain`);
    });

  contacts.command('list').description('list contacts with key state and last known address').action(async () => listContacts(globals()));

  contacts
    .command('show <who>')
    .description('everything about one contact')
    .action(async (who: string) => {
      const g = globals();
      const acc = await openAccount(g);
      const c = await acc.contacts.require(who);
      if (g.json) return printJson(c);
      console.log(table([
        ['name', c.name],
        ['address', c.email],
        ['aliases', c.aliases.join(', ') || '-'],
        ['key', c.fingerprint ? formatFingerprint(c.fingerprint) : 'none yet (learned from their first mail)'],
        ['state', keyState(c)],
        ['answer', c.answer ?? `default (${acc.config.answer})`],
        ['announce', c.announce ? 'yes' : 'no'],
        ['presence', presenceLine(c)],
      ]));
    });

  contacts
    .command('remove <who>')
    .description('remove a contact (and forget their pinned key)')
    .action(async (who: string) => {
      const acc = await openAccount(globals());
      const c = await acc.contacts.remove(who);
      console.log(`Removed ${c.name} <${c.email}>.`);
    });

  contacts
    .command('verify <who>')
    .description('show both fingerprints for an out-of-band check; --confirm marks the contact verified')
    .option('--confirm', 'you compared the fingerprints with them (in person, by phone) and they match')
    .action(async (who: string, o) => {
      const g = globals();
      const acc = await openAccount(g);
      let c = await acc.contacts.require(who);
      const mine = formatFingerprint(acc.identity.fingerprint);
      const theirs = c.fingerprint ? formatFingerprint(c.fingerprint) : undefined;
      if (o.confirm) {
        if (!theirs) {
          console.error(`No key for ${c.name} yet: it arrives with their first mail. Ask them to run: peerdial announce ${acc.email}`);
          process.exitCode = 1;
          return;
        }
        c = await acc.contacts.update(c.email, (x) => (x.verified = true));
      }
      if (g.json) return printJson({ you: acc.identity.fingerprint, them: c.fingerprint ?? null, verified: c.verified });
      console.log(`You (${acc.email}):\n  ${mine}`);
      console.log(`${c.name} (${c.email}):\n  ${theirs ?? 'no key yet'}`);
      console.log(c.verified ? 'Verified.' : 'Compare both with them by phone or in person, then run: peerdial contacts verify ' + c.name + ' --confirm');
    });

  for (const [cmd, blocked] of [['block', true], ['unblock', false]] as const) {
    contacts
      .command(`${cmd} <who>`)
      .description(blocked ? 'refuse every call and mail from this contact' : 'accept this contact again')
      .action(async (who: string) => {
        const acc = await openAccount(globals());
        const c = await acc.contacts.require(who);
        await acc.contacts.update(c.email, (x) => (x.blocked = blocked));
        console.log(`${c.name} <${c.email}> is ${blocked ? 'blocked' : 'no longer blocked'}.`);
      });
  }
}

async function listContacts(g: GlobalOptions): Promise<void> {
  const acc = await openAccount(g);
  const list = await acc.contacts.list();
  if (g.json) return printJson(list);
  if (!list.length) {
    console.log('No contacts yet. Add one with: peerdial contacts add NAME EMAIL');
    return;
  }
  console.log(table([
    ['NAME', 'ADDRESS', 'ALIASES', 'KEY', 'LAST KNOWN ADDRESS'],
    ...list.map((c) => [c.name, c.email, c.aliases.join(',') || '-', keyState(c), presenceLine(c)]),
  ]));
}
