/** `peerdial doctor`: every check with its verdict and what to do. */
import type { Command } from 'commander';
import type { GlobalOptions } from './output.js';

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('doctor')
    .description('check config, IMAP login and IDLE (timed with a mail to yourself), SMTP, STUN, NAT, the TURN relay, port mapping and IPv6, each with a hint')
    .option('--timeout <seconds>', 'time allowed for each network step', '20')
    .option('--gateway <ip>', 'the router to ask for a test port mapping (default: the IPv4 default gateway)')
    .option('--map-method <method>', 'how to ask it: auto, natpmp, upnp, or off (no port-mapping check)', 'auto')
    .option('--watch-seconds <n>', 'how long the test mail for the mail-kept check is left alone (another client deleting it shows in this time)', '10')
    .addHelpText('after', `
The IDLE timing sends one peerdial mail to yourself and files it into peerdial's
folder, as the agent does with its own mail; nothing else in the mailbox is touched.
The mail-kept check sends another one and leaves it alone for --watch-seconds: if it
vanishes, another mail program deletes peerdial mail (see "Using peerdial beside
Delta Chat" in the README); it is removed afterwards.
Exit status 1 when a check fails.`)
    .action(async (o: { timeout: string; gateway?: string; mapMethod: string; watchSeconds: string }) => (await import('./run/doctor.js')).doctor(globals(), o));
}
