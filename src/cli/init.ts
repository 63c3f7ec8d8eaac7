import { Option, type Command } from 'commander';
import type { GlobalOptions } from './output.js';

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('init')
    .description('set up a mail account: write the config, create your identity key, test both logins')
    .requiredOption('--email <address>', 'your mail address')
    .option('--name <name>', 'your display name')
    .option('--user <login>', 'login name for IMAP and SMTP (default: the address)')
    .option('--password-command <cmd>', 'command that prints the password (like msmtp passwordeval), e.g. "pass show mail"')
    .option('--password-env <VAR>', 'environment variable holding the password')
    .option('--password-prompt', 'ask for the password each time (interactive use only)')
    .addOption(new Option('--auth <kind>', 'how to log in (default: password)').choices(['password', 'oauth2']))
    .option('--token-command <cmd>', 'with --auth oauth2: command that prints an access token')
    .addOption(new Option('--oauth2-provider <name>', 'with --auth oauth2: built-in token refresh (then run peerdial login)').choices(['google', 'microsoft', 'custom']))
    .option('--oauth2-client-id <id>', 'OAuth2 client id (your registered app)')
    .option('--oauth2-client-secret <secret>', 'OAuth2 client secret, for providers that want one for installed apps')
    .option('--oauth2-token-url <url>', 'token endpoint (custom provider)')
    .option('--oauth2-device-url <url>', 'device authorization endpoint (custom provider)')
    .option('--oauth2-scope <scope>', 'scope to ask for (default: the provider\'s mail scope)')
    .option('--imap-host <host>', 'IMAP server (default: from the provider table)')
    .option('--imap-port <port>', 'IMAP port (993 with tls, 143 with starttls)')
    .addOption(new Option('--imap-tls <mode>', 'how IMAP is secured').choices(['tls', 'starttls', 'none']))
    .option('--smtp-host <host>', 'SMTP submission server (default: from the provider table)')
    .option('--smtp-port <port>', 'SMTP port (465 with tls, 587 with starttls)')
    .addOption(new Option('--smtp-tls <mode>', 'how SMTP is secured').choices(['tls', 'starttls', 'none']))
    .option('--ca-file <pem>', 'extra CA certificate to trust (self-hosted servers)')
    .option('--folder <name>', 'IMAP folder for peerdial mail', 'Peerdial')
    .option('--state-dir <dir>', 'where keys, contacts and the outbox live')
    .addOption(new Option('--who-may-call <who>', 'who may call you (default: contacts)').choices(['everybody', 'contacts', 'nobody']))
    .addOption(new Option('--answer <mode>', 'default answer policy (default: ring)').choices(['auto-answer', 'ring', 'deny']))
    .option('--ring-seconds <n>', 'how long an offer rings before it expires')
    .option('--stun <urls>', 'comma-separated STUN servers, or "none"')
    .option('--turn <url>', 'a TURN relay you run or chose, turn:USER:PASS@HOST:PORT (UDP only; repeat for more); none by default', (v: string, acc: string[] = []) => [...acc, v])
    .option('--turn-password-command <cmd>', 'command that prints the TURN password (for --turn turn:USER@HOST:PORT)')
    .option('--turn-password-env <VAR>', 'environment variable holding the TURN password')
    .option('--turn-password-file <file>', 'file (mode 0600) whose first line is the TURN password')
    .option('--bind-address <ip>', 'bind ICE to this local address')
    .option('--download-dir <dir>', 'where received files are saved')
    .option('--sieve [port]', 'add a server-side rule (ManageSieve, default port 4190) that files peerdial mail into its folder at delivery, away from other mail clients; your own filters are kept')
    .option('--no-sieve', 'do not ask about the server-side rule')
    .option('--skip-check', 'save even when a login test fails')
    .option('--force', 'replace an existing account with the same address')
    .option('-y, --yes', 'take servers found in DNS (SRV records, autoconfig document) without asking; check them first')
    .addHelpText('after', `
Known providers (gmail.com, posteo.de, fastmail.com, ...) need only --email and a password source;
for other domains the servers are looked up in DNS SRV records, then in the autoconfig document,
and shown for you to confirm before the password is sent (without a terminal: check them, then --yes).
Examples:
  peerdial init --email alice@posteo.de --password-command "pass show posteo"
  peerdial init --email me@outlook.com --auth oauth2 --oauth2-provider microsoft --oauth2-client-id ID   (then: peerdial login)
  peerdial init --email me@example.org --imap-host mail.example.org --smtp-host mail.example.org --smtp-port 587 --smtp-tls starttls --password-env MAILPW`)
    .action(async (o) => (await import('./run/init.js')).init(globals(), o));
}
