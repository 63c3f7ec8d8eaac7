/**
 * `peerdial help TOPIC`: pages about things that are not one command. The
 * README quotes these texts verbatim (test/shell.test.ts checks it), so the
 * terminal and the README say the same.
 */

export const HELP_TOPICS: Record<string, { summary: string; text: string }> = {
  config: {
    summary: 'the config file: where it is, every key',
    text: `The config file is TOML: --config FILE, else $PEERDIAL_CONFIG, else
$XDG_CONFIG_HOME/peerdial/config.toml (~/.config/peerdial/config.toml).
\`peerdial init\` writes it (mode 0600). State (keys, contacts, ledger, outbox,
call log, the agent's socket) lives in state_dir/accounts/ADDRESS/.

[defaults]
  account        which account commands use when there are several
  ring_seconds   how long an offer rings (its expiry), 5-3600, default 120
  who_may_call   everybody | contacts | nobody (default contacts)
  answer         auto-answer | ring | deny: the default answer policy (ring)
  download_dir   where received files go (~/Downloads/peerdial)
  state_dir      ~/.local/state/peerdial
  poll_seconds   mailbox check interval without IDLE (60)
  idle_seconds   IDLE is re-issued this often, 10-1740 (1500)
  single_call    true: a second incoming call gets "busy"
[ice]            servers (STUN URLs), bind_address, port_range_begin/_end,
                 turn = ["turn:USER:PASS@HOST:PORT"]: relays you chose (UDP only;
                 none by default); turn_password_command | _env | _file (0600)
[forward]        allow = ["HOST:PORT", "HOST:*"]: a machine-wide bound on the
                 targets each contact may reach (contacts allow NAME forward=...)
[[accounts]]     email, name, folder (Peerdial), [accounts.imap], [accounts.smtp]:
                 host, port, tls (tls | starttls | none), user, ca_file and one of
                 password_command, password_env, password_prompt, password`,
  },
  protocol: {
    summary: 'what travels by mail, and how a call connects',
    text: `Each side mails its current address and a WebRTC offer or answer to the other
through its own mail account; then the two machines talk directly over UDP
(ICE, DTLS, SCTP data channels). Nothing sits between them.

A peerdial mail is an ordinary mail with the header Peerdial-Version: 1 and a
neutral subject; its payload (attachment peerdial.asc) is JSON signed by the
sender's OpenPGP key and encrypted to the recipient's once that key is known.
Kinds: announce, offer, answer, decline, cancel, hangup, message. An offer
carries an expiry (ring_seconds); an answer refers to its offer (In-Reply-To).
An offer of a group call (peerdial call alice bob carol) also names the
group: a random id and the members' mail addresses in order (at most 6, the
caller first); every pair connects directly, the earlier member offering.
Every mail carries the sender's key (header Peerdial-Key, in Autocrypt's
format but never a standard Autocrypt header, which other Autocrypt mail
programs on the address would take as theirs); the first one seen is
pinned, and later mail signed by another key is rejected.
Addresses and ICE credentials go only encrypted: to a contact without a
key, announce and call need --plain (clear text, readable by providers).

peerdial reads only mail with that header, moves verified peerdial mail into
its own folder, and leaves all other mail exactly as it was.`,
  },
  'exit-codes': {
    summary: 'what each exit status means',
    text: `0   ok
1   failed (the message says why and what to do next)
2   call not completed: declined, busy, cancelled, no answer in time
3   no agent runs for this account (peerdial status), or no service
    is installed (peerdial service status)
64  usage: a wrong option, argument or link
69  network or server unavailable (DNS, TCP, TLS, IMAP, SMTP for now)
70  a bug: please report it with the output
77  login refused by the mail server
78  configuration missing or invalid, or no password available`,
  },
  policy: {
    summary: 'who may call you, and what happens when they do',
    text: `Two settings decide what happens to an incoming call.

who_may_call ([defaults]): everybody, contacts (default) or nobody. A caller
who is not allowed, or is blocked (peerdial contacts block NAME), gets nothing
back: no mail, no packet to its addresses.

answer (the default in [defaults], or per contact: peerdial contacts add NAME
EMAIL --answer MODE):
  auto-answer  the agent answers at once and carries the call itself
               (files into download_dir, chat lines into its log)
  ring         the call rings: a log line, the bell, a desktop notification;
               take it with peerdial answer, refuse it with peerdial decline
  deny         refused silently, like a caller who is not allowed

Trust comes first: a key only learned from a first mail may at most ring, and
gets nothing for a file, pipe, forward or the camera; auto-answer needs a key
that was introduced (peerdial invite / join, contacts add NAME EMAIL --key
FINGERPRINT) or verified. Each contact may use only its capabilities
(peerdial contacts allow|deny NAME chat pipe file view media forward=HOST:PORT
file-max=SIZE); anything else is declined.

An offer that arrives after its expiry becomes a missed call in the log,
never a connection. With single_call = true a second call hears "busy".`,
  },
};

export function helpTopicNames(): string[] {
  return Object.keys(HELP_TOPICS);
}

/** The README form of a topic: a heading and the text in a code block. */
export function topicMarkdown(name: string): string {
  const t = HELP_TOPICS[name];
  if (!t) throw new Error(`no help topic ${name}`);
  return `\`peerdial help ${name}\`:\n\n\`\`\`\n${t.text}\n\`\`\`\n`;
}
