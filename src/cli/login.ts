/** `peerdial login [ACCOUNT]`: OAuth2 device-code login (Gmail, Microsoft, or a custom provider). */
import type { Command } from 'commander';
import { printJson, status, type GlobalOptions } from './output.js';

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('login')
    .argument('[account]', 'the account (its address); default: --account, the default account, or the only one')
    .description('log in to an OAuth2 mail account (device code: open a URL, enter a code); stores the refresh token privately')
    .addHelpText('after', `
Needs auth = "oauth2" with oauth2_provider (google, microsoft or custom) and
oauth2_client_id for the account's [accounts.imap] / [accounts.smtp] in the config.
The refresh token is kept in the account's state dir (oauth2-tokens.json, mode 0600);
access tokens are fetched from it when needed. Run it again when a login expires.
Example:
  peerdial login me@outlook.com`)
    .action(async (account: string | undefined) => {
      const g = globals();
      const acc = account ?? g.account;
      const { login } = await import('../api/login.js');
      const r = await login({
        ...(g.config ? { config: g.config } : {}),
        ...(acc ? { account: acc } : {}),
        onPrompt: (p) => {
          // the code must reach the user even with --json or --quiet
          process.stderr.write(
            `To log in (${p.servers.join(' and ')}), open ${p.verificationUri}\n` +
              `and enter the code: ${p.userCode}\n` +
              (p.verificationUriComplete ? `(or open ${p.verificationUriComplete})\n` : '') +
              `Waiting up to ${Math.round(p.expiresIn / 60)} min...\n`,
          );
        },
      });
      if (g.json) return printJson(r);
      for (const l of r.logins) status(g, `${l.servers.join(' and ')}: logged in as ${l.user}`);
      console.log(`Logged in; the refresh token is stored in ${r.tokenFile}`);
    });
}
