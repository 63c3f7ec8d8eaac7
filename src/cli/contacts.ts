import { Option, type Command } from 'commander';
import type { GlobalOptions } from './output.js';
import { CAPABILITY_SYNTAX } from './capability-syntax.js';

/** What `contacts allow` / `contacts deny` take. */

const run = () => import('./run/contacts.js');
const list = () => import('./run/contacts-list.js');

export function register(program: Command, globals: () => GlobalOptions): void {
  const contacts = program
    .command('contacts')
    .description('the address book: who may call you, their keys, aliases and last known address')
    .action(async () => (await list()).listContacts(globals()));

  contacts
    .command('add <name> <email>')
    .description('add a contact (introduced with --key; else their key is only learned from their first mail)')
    .option('--alias <alias...>', 'aliases or short numbers (e.g. 12)')
    .option('--key <fingerprint|file>', 'their key fingerprint as they read it to you (or a file with their armored key): introduced')
    .addOption(new Option('--answer <mode>', 'answer policy for this contact').choices(['auto-answer', 'ring', 'deny']))
    .action(async (name: string, email: string, o) => (await run()).add(globals(), name, email, o));

  contacts.command('list').description('list contacts with key state and last known address').action(async () => (await list()).listContacts(globals()));

  contacts
    .command('show <who>')
    .description('everything about one contact')
    .action(async (who: string) => (await run()).show(globals(), who));

  contacts
    .command('remove <who>')
    .description('remove a contact (and forget their pinned key)')
    .action(async (who: string) => (await run()).remove(globals(), who));

  contacts
    .command('verify <who>')
    .description('show both fingerprints for an out-of-band check; --confirm marks the contact verified')
    .option('--confirm', 'you compared the fingerprints with them (in person, by phone) and they match')
    .action(async (who: string, o) => (await run()).verify(globals(), who, o));

  contacts
    .command('key <who> <fingerprint-or-file>')
    .description("introduce a contact's key out of band (replaces a key that was only learned, and says so)")
    .option('--replace', 'also replace an introduced or verified key (they really have a new one)')
    .action(async (who: string, value: string, o) => (await run()).key(globals(), who, value, o));

  contacts
    .command('import-vcard <file>')
    .description("add the contacts of a vCard file (.vcf) with the keys it carries: introduced (from a vCard); a Delta Chat user's card makes a Delta Chat contact")
    .option('--name <name>', 'the contact name (a vCard of one contact; default: from its name or address)')
    .option('--delta-chat', 'they use Delta Chat: call them in its dialect (found by itself for a card Delta Chat made)')
    .option('--replace', 'also replace an introduced or verified key (they really have a new one)')
    .addOption(new Option('--answer <mode>', 'answer policy for them').choices(['auto-answer', 'ring', 'deny']))
    .action(async (file: string, o) => (await run()).importVcardFile(globals(), file, o));

  contacts
    .command('export-vcard [who...]')
    .description('print your own vCard with your key (for Delta Chat: "Import contact"), or the named contacts\' cards')
    .option('-o, --output <file>', 'write it to this file instead')
    .action(async (who: string[], o) => (await run()).exportVcardFile(globals(), who, o));

  for (const [cmd, allow] of [['allow', true], ['deny', false]] as const) {
    contacts
      .command(`${cmd} <who> <capabilities...>`)
      .description(`${allow ? 'let' : 'stop'} a contact use: ${CAPABILITY_SYNTAX}`)
      .action(async (who: string, words: string[]) => (await run()).capabilities(globals(), who, words, allow));
  }

  for (const [cmd, blocked] of [['block', true], ['unblock', false]] as const) {
    contacts
      .command(`${cmd} <who>`)
      .description(blocked ? 'refuse every call and mail from this contact' : 'accept this contact again')
      .action(async (who: string) => (await run()).block(globals(), who, blocked));
  }
}
