/**
 * The layout of src/ (../shared/DESIGN.md, "Architecture"): data flows one
 * way, cli -> api -> agent -> {wire, mail, address, session, store}, with
 * small leaf utilities (util/) under them. test/unit/layout.test.ts runs
 * these rules on src/ and wants no violation.
 *
 * dependency-cruiser's own CLI refuses Node 20, so the test calls its API;
 * on Node 22 or later `npx depcruise --config .dependency-cruiser.cjs src`
 * runs the same rules.
 */

/** Folders that sit above the given one: it imports none of them. */
const above = (...folders) => `^src/(${folders.join('|')})/`;

/** Node built-ins that open sockets, files, processes or threads. */
const IO_BUILTINS = '^(node:)?(fs|fs/promises|net|dgram|http|https|http2|tls|child_process|worker_threads|cluster)$';
/** The same but node:net, whose isIP wire/ uses (a pure check). */
const IO_BUILTINS_BUT_NET = '^(node:)?(fs|fs/promises|dgram|http|https|http2|tls|child_process|worker_threads|cluster)$';

/** node-datachannel and its native package, resolved or not. */
const NODE_DATACHANNEL = '(^|/)(node-datachannel|@node-datachannel/[^/]+)(/|$)';

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No file of src/ reaches itself through its imports (type-only imports count: they tie the files as much).',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-circular-folders',
      comment: 'No folder of src/ reaches itself through the imports of its files: data flows one way.',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'wire-is-pure',
      comment: 'wire/ is the address-mail format, pure functions only: it imports no edge, no session, no machine, no store.',
      severity: 'error',
      from: { path: '^src/wire/' },
      to: { path: above('mail', 'session', 'agent', 'store', 'config', 'api', 'cli', 'carriers', 'media', 'link', 'wake', 'demo', 'doctor', 'service', 'uri', 'util') },
    },
    {
      name: 'wire-does-no-io',
      comment: 'wire/ opens no socket, file or process and talks to no mail server or peer.',
      severity: 'error',
      from: { path: '^src/wire/' },
      to: { path: [IO_BUILTINS_BUT_NET, '(^|/)(imapflow|smtp-server|hoodiecrow-imap|proper-lockfile)(/|$)', 'nodemailer/lib/(smtp|mailer)', NODE_DATACHANNEL] },
    },
    {
      name: 'machines-are-pure',
      comment: 'The call machines are driven by typed events and a clock they are given: no socket, no mail client, no clock of their own.',
      severity: 'error',
      from: { path: '^src/agent/(caller|callee|machine)\\.ts$' },
      to: { path: [IO_BUILTINS, '^(node:)?timers(/promises)?$', '(^|/)(imapflow|nodemailer)(/|$)', NODE_DATACHANNEL, above('mail', 'session', 'address', 'store', 'api', 'cli', 'carriers', 'media', 'link', 'wake')] },
    },
    {
      name: 'node-datachannel-only-in-session',
      comment: 'node-datachannel sits behind session/; everything else uses plain types.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/session/' },
      to: { path: NODE_DATACHANNEL },
    },
    {
      name: 'imap-client-only-in-mail',
      comment: 'imapflow is the mail edge: only mail/ calls it (others may name its types).',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/mail/' },
      to: { path: '(^|/)imapflow(/|$)', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'smtp-client-only-in-mail',
      comment: "nodemailer's transports are the mail edge: only mail/ sends (wire/ uses its pure composer and address parser).",
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(mail|wire)/' },
      to: { path: '(^|/)nodemailer(/|$)', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'mail-is-an-edge',
      comment: 'mail/ talks to the mail system; it does not reach up into the agent or across into sessions.',
      severity: 'error',
      from: { path: '^src/mail/' },
      to: { path: above('agent', 'api', 'cli', 'session', 'carriers', 'media', 'link', 'wake', 'demo', 'doctor') },
    },
    {
      name: 'session-is-below-the-agent',
      comment: 'session/ runs connections it is handed; it knows nothing of the agent, mail or the store.',
      severity: 'error',
      from: { path: '^src/session/' },
      to: { path: above('agent', 'api', 'cli', 'mail', 'store', 'carriers', 'link', 'wake', 'demo', 'doctor') },
    },
    {
      name: 'store-is-below-the-agent',
      comment: 'store/ keeps files; it imports nothing that acts.',
      severity: 'error',
      from: { path: '^src/store/' },
      to: { path: above('agent', 'api', 'cli', 'mail', 'session', 'address', 'config', 'carriers', 'media', 'link', 'wake', 'demo', 'doctor') },
    },
    {
      name: 'link-is-below-the-agent',
      comment: 'link/ runs the commands that bring a link up and down; the agent uses it, not the other way round.',
      severity: 'error',
      from: { path: '^src/link/' },
      to: { path: above('agent', 'api', 'cli', 'mail', 'session') },
    },
    {
      name: 'util-is-a-leaf',
      comment: 'util/ holds small helpers many folders need (timers, sleep); it imports nothing of peerdial but a limit.',
      severity: 'error',
      from: { path: '^src/util/' },
      to: { path: '^src/', pathNot: ['^src/util/', '^src/wire/limits\\.ts$', '^src/errors\\.ts$'] },
    },
    {
      name: 'api-is-above-the-agent',
      comment: 'api/ is the programmatic face over the agent: nothing under it imports it.',
      severity: 'error',
      from: { path: above('agent', 'wire', 'mail', 'address', 'session', 'store', 'config', 'carriers', 'media', 'link', 'util') },
      to: { path: '^src/api/' },
    },
    {
      name: 'web-is-above-the-agent',
      comment: 'web/ is the local web page\'s server, an edge over the agent like the CLI: the agent hands it calls through options, never imports it.',
      severity: 'error',
      from: { path: above('agent', 'wire', 'mail', 'address', 'session', 'store', 'config', 'carriers', 'media', 'link', 'util', 'api') },
      to: { path: '^src/web/' },
    },
    {
      name: 'nothing-imports-the-cli',
      comment: 'cli/ is the top: only its own files import it.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // type-only imports are dependencies too: a cycle through them still ties two files
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    moduleSystems: ['es6'],
  },
};
