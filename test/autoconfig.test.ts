/**
 * Account autoconfig beyond the bundled table: RFC 6186 SRV records from a
 * tiny DNS server on 127.0.0.1 (node:dns Resolver pointed at it), and the
 * Thunderbird-style autoconfig document from an HTTP server on 127.0.0.1
 * (injected base URL). Nothing here asks a real DNS server or web host.
 * Last, `init` finds a real mail stack through SRV records alone.
 */
import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XML_LIMITS, discover, discoverSrv, parseAutoconfig, parseXml, type SrvResolver } from '../src/config/autoconfig.js';
import { init, serversToConfirm } from '../src/api/init.js';
import { isPeerdialError } from '../src/errors.js';
import { loadConfig } from '../src/config/config.js';
import { ensureMailServers } from './harness/system.js';
import { startMailStack, type MailStack } from './harness/mail-stack.js';
import { tempDir } from './harness/peers.js';

// ------------------------------------------------------------ a tiny DNS server (SRV only)

type Srv = { priority: number; weight: number; port: number; target: string };

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.').filter(Boolean);
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'ascii')])), Buffer.from([0])]);
}

/** Answers SRV questions from `zone` (name -> records); NXDOMAIN for everything else. Logs every question. */
class DnsServer {
  sock = dgram.createSocket('udp4');
  port = 0;
  questions: string[] = [];
  constructor(public zone: Map<string, Srv[]>) {
    this.sock.on('message', (msg, rinfo) => this.sock.send(this.answer(msg), rinfo.port, rinfo.address));
  }
  async start(): Promise<void> {
    await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', r));
    this.port = (this.sock.address() as AddressInfo).port;
  }
  stop(): Promise<void> {
    return new Promise((r) => this.sock.close(() => r()));
  }
  resolver(): Resolver {
    const r = new Resolver({ timeout: 1000, tries: 1 });
    r.setServers([`127.0.0.1:${this.port}`]);
    return r;
  }
  private answer(msg: Buffer): Buffer {
    let i = 12;
    const labels: string[] = [];
    while (msg[i]! !== 0) {
      const len = msg[i]!;
      labels.push(msg.subarray(i + 1, i + 1 + len).toString('ascii'));
      i += len + 1;
    }
    const qtype = msg.readUInt16BE(i + 1);
    const question = msg.subarray(12, i + 5);
    const name = labels.join('.').toLowerCase();
    this.questions.push(name);
    const records = qtype === 33 ? this.zone.get(name) : undefined;
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2); // id
    header.writeUInt16BE(records ? 0x8580 : 0x8583, 2); // QR AA RD RA, NOERROR or NXDOMAIN
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(records?.length ?? 0, 6);
    const answers = (records ?? []).map((r) => {
      const target = r.target === '.' ? Buffer.from([0]) : encodeName(r.target);
      const rr = Buffer.alloc(12 + 6);
      rr.writeUInt16BE(0xc00c, 0); // name: pointer to the question
      rr.writeUInt16BE(33, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(60, 6);
      rr.writeUInt16BE(6 + target.length, 10);
      rr.writeUInt16BE(r.priority, 12);
      rr.writeUInt16BE(r.weight, 14);
      rr.writeUInt16BE(r.port, 16);
      return Buffer.concat([rr, target]);
    });
    return Buffer.concat([header, question, ...answers]);
  }
}

// ------------------------------------------------------------ an autoconfig web server

const DOC = (domain: string, extra = '') => `<?xml version="1.0" encoding="UTF-8"?>
<!-- provider's autoconfig -->
<clientConfig version="1.1">
  <emailProvider id="${domain}">
    <domain>${domain}</domain>
    <displayName>Example &amp; Co Mail</displayName>
    <incomingServer type="pop3">
      <hostname>pop.${domain}</hostname><port>995</port><socketType>SSL</socketType>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>imap-plain.${domain}</hostname><port>143</port><socketType>plain</socketType>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>imap.${domain}</hostname>
      <port>143</port>
      <socketType>STARTTLS</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILLOCALPART%</username>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>imaps.${domain}</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <authentication>OAuth2</authentication>
      <authentication>password-cleartext</authentication>
      <username>%EMAILLOCALPART%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.${domain}</hostname>
      <port>587</port>
      <socketType>STARTTLS</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>${extra}
  </emailProvider>
</clientConfig>
`;

const web = {
  server: http.createServer((req, res) => {
    web.paths.push(req.url ?? '');
    const body = web.files.get((req.url ?? '').replace(/\?.*$/, ''));
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/xml' });
    res.end(body ?? 'not here');
  }),
  files: new Map<string, string>(),
  paths: [] as string[],
  base: '',
};

let dns: DnsServer;

beforeAll(async () => {
  dns = new DnsServer(new Map());
  await dns.start();
  await new Promise<void>((r) => web.server.listen(0, '127.0.0.1', r));
  web.base = `http://127.0.0.1:${(web.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await dns?.stop();
  web.server.closeAllConnections();
  await new Promise((r) => web.server.close(r));
});

describe('RFC 6186 SRV records', () => {
  it('prefers implicit TLS, honours priority and weight, and "." as "not offered"', async () => {
    dns.zone.set('_imaps._tcp.srv-a.test', [
      { priority: 20, weight: 0, port: 993, target: 'backup-imap.srv-a.test' },
      { priority: 10, weight: 1, port: 993, target: 'light-imap.srv-a.test' },
      { priority: 10, weight: 50, port: 993, target: 'imap.srv-a.test.' },
    ]);
    dns.zone.set('_imap._tcp.srv-a.test', [{ priority: 0, weight: 0, port: 143, target: 'old-imap.srv-a.test' }]);
    dns.zone.set('_submissions._tcp.srv-a.test', [{ priority: 0, weight: 0, port: 0, target: '.' }]);
    dns.zone.set('_submission._tcp.srv-a.test', [{ priority: 0, weight: 0, port: 587, target: 'smtp.srv-a.test' }]);
    const r = await discoverSrv('srv-a.test', dns.resolver());
    expect(r.imap).toEqual({ host: 'imap.srv-a.test', port: 993, tls: 'tls' });
    expect(r.smtp).toEqual({ host: 'smtp.srv-a.test', port: 587, tls: 'starttls' });
    expect(r.names).toEqual(['_imaps._tcp.srv-a.test', '_submission._tcp.srv-a.test']);
    for (const q of ['_imaps._tcp.srv-a.test', '_imap._tcp.srv-a.test', '_submissions._tcp.srv-a.test', '_submission._tcp.srv-a.test']) {
      expect(dns.questions).toContain(q);
    }
  });

  it('discover() says it used SRV records and asks no web server when they are complete', async () => {
    web.paths.length = 0;
    const d = await discover('me@srv-a.test', { resolver: dns.resolver(), httpBase: web.base });
    expect(d?.source).toBe('srv');
    expect(d?.detail).toBe('_imaps._tcp.srv-a.test, _submission._tcp.srv-a.test');
    expect(web.paths).toEqual([]);
  });
});

describe('the autoconfig document', () => {
  it('autoconfig.DOMAIN first: TLS preferred, plain servers never taken, user name template filled, OAuth2 noticed', async () => {
    web.files.set('/autoconfig.doc-a.test/mail/config-v1.1.xml', DOC('doc-a.test'));
    web.paths.length = 0;
    const d = await discover('Kim.Lee@doc-a.test', { resolver: dns.resolver(), httpBase: web.base });
    expect(d).toMatchObject({
      source: 'autoconfig',
      detail: 'https://autoconfig.doc-a.test/mail/config-v1.1.xml',
      imap: { host: 'imaps.doc-a.test', port: 993, tls: 'tls' },
      smtp: { host: 'smtp.doc-a.test', port: 587, tls: 'starttls' },
      imapUser: 'Kim.Lee',
      smtpUser: 'Kim.Lee@doc-a.test',
      oauth2: true,
      note: 'Example & Co Mail',
    });
    expect(web.paths).toEqual(['/autoconfig.doc-a.test/mail/config-v1.1.xml?emailaddress=Kim.Lee%40doc-a.test']);
    // SRV was asked first and had nothing
    expect(dns.questions).toContain('_imaps._tcp.doc-a.test');
  });

  it('then DOMAIN/.well-known/autoconfig; a broken document is skipped', async () => {
    web.files.set('/autoconfig.doc-b.test/mail/config-v1.1.xml', '<clientConfig><emailProvider></clientConfig>');
    web.files.set('/doc-b.test/.well-known/autoconfig/mail/config-v1.1.xml', DOC('doc-b.test'));
    const d = await discover('me@doc-b.test', { resolver: dns.resolver(), httpBase: web.base });
    expect(d?.source).toBe('autoconfig');
    expect(d?.detail).toBe('https://doc-b.test/.well-known/autoconfig/mail/config-v1.1.xml');
    expect(d?.imap?.host).toBe('imaps.doc-b.test');
  });

  it('SRV for one side, the document for the other', async () => {
    dns.zone.set('_imaps._tcp.mix.test', [{ priority: 0, weight: 0, port: 10993, target: 'imap.mix.test' }]);
    web.files.set('/autoconfig.mix.test/mail/config-v1.1.xml', DOC('mix.test'));
    const d = await discover('me@mix.test', { resolver: dns.resolver(), httpBase: web.base });
    expect(d?.source).toBe('srv');
    expect(d?.imap).toEqual({ host: 'imap.mix.test', port: 10993, tls: 'tls' });
    expect(d?.smtp?.host).toBe('smtp.mix.test');
    expect(d?.detail).toBe('_imaps._tcp.mix.test + https://autoconfig.mix.test/mail/config-v1.1.xml');
  });

  it('nothing anywhere: undefined; a table entry: no lookup at all', async () => {
    expect(await discover('me@nothing.test', { resolver: dns.resolver(), httpBase: web.base })).toBeUndefined();
    const refuse: SrvResolver = { resolveSrv: () => Promise.reject(new Error('must not be asked')) };
    const d = await discover('me@posteo.de', { resolver: refuse, fetch: () => Promise.reject(new Error('must not be fetched')) });
    expect(d).toMatchObject({ source: 'table', detail: 'Posteo', imap: { host: 'posteo.de' } });
  });
});

describe('the XML reader', () => {
  it('reads elements, attributes, entities, CDATA and comments', () => {
    const x = parseXml(`<?xml version="1.0"?><a k='v &lt;1&gt;'><!-- c --><b>x &amp; y &#65;&#x42;</b><c/><d><![CDATA[<raw>]]></d></a>`);
    expect(x.name).toBe('a');
    expect(x.attrs.k).toBe('v <1>');
    expect(x.children.map((c) => c.name)).toEqual(['b', 'c', 'd']);
    expect(x.children[0]!.text).toBe('x & y AB');
    expect(x.children[2]!.text).toBe('<raw>');
  });

  it('refuses what it should', () => {
    for (const bad of [
      '<!DOCTYPE a [<!ENTITY e "boom">]><a>&e;</a>',
      '<a><b></a></b>',
      '<a>',
      '<a></a><b></b>',
      'text<a/>',
      '<a>&unknown;</a>',
      '<a>fish & chips</a>',
      '<a x="1" x="2"/>',
      '',
    ]) {
      expect(() => parseXml(bad), bad).toThrow(/XML/);
    }
    expect(() => parseAutoconfig('<html><body>Not found</body></html>', 'a@b.test')).toThrow(/clientConfig/);
  });

  it('a hostile document: no entity expansion, no deep nesting, no size beyond the cap, nothing outside the root', () => {
    const laughs = [
      '<?xml version="1.0"?>',
      '<!DOCTYPE clientConfig [',
      '  <!ENTITY lol "lol">',
      ...Array.from({ length: 9 }, (_, i) => `  <!ENTITY lol${i + 1} "${`&lol${i || ''};`.repeat(10)}">`),
      ']>',
      '<clientConfig><emailProvider><displayName>&lol9;</displayName></emailProvider></clientConfig>',
    ].join('\n');
    expect(() => parseXml(laughs)).toThrow(/XML: DOCTYPE/);
    expect(() => parseAutoconfig(laughs, 'a@b.test')).toThrow(/XML: DOCTYPE/);
    // without the DOCTYPE, the reference names nothing we know
    expect(() => parseXml('<a>&lol;</a>')).toThrow(/XML: unknown entity &lol;/);
    // an external entity is refused with its DOCTYPE, before anything is read
    expect(() => parseXml('<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>')).toThrow(/XML: DOCTYPE/);

    const nest = (depth: number) => '<a>'.repeat(depth) + 'deep' + '</a>'.repeat(depth);
    expect(parseXml(nest(XML_LIMITS.depth)).name).toBe('a');
    expect(() => parseXml(nest(XML_LIMITS.depth + 8)), 'a few levels too deep').toThrow(/XML/);
    const deepest = nest(Math.floor(XML_LIMITS.bytes / 8));
    expect(deepest.length).toBeLessThanOrEqual(XML_LIMITS.bytes);
    expect(() => parseXml(deepest), 'as deep as fits the size cap').toThrow(/XML/);

    const big = `<clientConfig>${'<x/>'.repeat(XML_LIMITS.bytes / 4)}</clientConfig>`;
    expect(() => parseXml(big)).toThrow(/XML: document too large/);

    expect(() => parseXml('<a/>trailing text')).toThrow(/XML: text outside the root element/);
    expect(() => parseXml('<a><!ELEMENT x ANY></a>')).toThrow(/XML/);
    expect(() => parseXml('<__proto__><polluted>yes</polluted></__proto__>')).toThrow(/XML/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // what is allowed around the root: a byte-order mark, the declaration, comments, white space
    expect(parseXml('\ufeff<?xml version="1.0"?>\n<!-- before --><a>x</a>\n<!-- after -->\n').text).toBe('x');
  });

  it('a document with only plain-text servers gives nothing', () => {
    const doc = `<clientConfig><emailProvider id="p.test">
      <incomingServer type="imap"><hostname>imap.p.test</hostname><port>143</port><socketType>plain</socketType></incomingServer>
      <outgoingServer type="smtp"><hostname>bad host!</hostname><port>465</port><socketType>SSL</socketType></outgoingServer>
    </emailProvider></clientConfig>`;
    expect(parseAutoconfig(doc, 'a@p.test')).toEqual({});
  });
});

describe('peerdial init finds a real mail stack through SRV records', () => {
  let stack: MailStack;
  let dir: string;

  beforeAll(async () => {
    ensureMailServers();
    stack = await startMailStack({ users: ['alice'] });
    dir = await tempDir('autoconfig');
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('table (no entry), then SRV: says so, logs in with what it found, writes it', async () => {
    dns.zone.set('_imap._tcp.example.test', [{ priority: 0, weight: 0, port: stack.imapPort, target: 'localhost' }]);
    dns.zone.set('_submission._tcp.example.test', [{ priority: 0, weight: 0, port: stack.smtpPort, target: 'localhost' }]);
    const caFile = path.join(dir, 'ca.pem');
    await fs.writeFile(caFile, stack.ca);
    const steps: string[] = [];
    const shown: string[] = [];
    const config = path.join(dir, 'config.toml');
    const r = await init({
      config,
      email: 'alice@example.test',
      user: 'alice',
      secret: { password: stack.users.alice!.password },
      caFile,
      stateDir: path.join(dir, 'state'),
      iceServers: [],
      discovery: { resolver: dns.resolver(), httpBase: web.base },
      onProgress: (e) => steps.push(`${e.step}${e.detail ? `: ${e.detail}` : ''}`),
      // alice looks at what DNS said and agrees
      confirm: async (servers) => {
        shown.push(servers.text);
        return true;
      },
    });
    expect(shown).toHaveLength(1);
    expect(shown[0]).toContain('DNS SRV records (_imap._tcp.example.test, _submission._tcp.example.test)');
    expect(shown[0]).toContain(`IMAP localhost port ${stack.imapPort} (starttls), login alice`);
    expect(shown[0]).toContain(`SMTP localhost port ${stack.smtpPort} (starttls), login alice`);
    expect(r.settingsFrom).toEqual({ source: 'srv', detail: '_imap._tcp.example.test, _submission._tcp.example.test' });
    expect(steps.join('\n')).toContain('server settings from DNS SRV records (_imap._tcp.example.test, _submission._tcp.example.test)');
    expect(r.checks.map((c) => [c.what, c.ok])).toEqual([['IMAP', true], ['SMTP', true]]);
    const cfg = await loadConfig(config);
    expect(cfg.accounts[0]!.imap).toMatchObject({ host: 'localhost', port: stack.imapPort, tls: 'starttls' });
    expect(cfg.accounts[0]!.smtp).toMatchObject({ host: 'localhost', port: stack.smtpPort, tls: 'starttls' });
  }, 60_000);

  /** A password command that leaves a mark when anybody asks it for the password. */
  async function markingPassword(name: string): Promise<{ command: string; asked: () => Promise<boolean> }> {
    const mark = path.join(dir, `${name}.asked`);
    const pw = path.join(dir, `${name}.pw`);
    await fs.writeFile(pw, stack.users.alice!.password, { mode: 0o600 });
    return { command: `touch '${mark}'; cat '${pw}'`, asked: () => fs.access(mark).then(() => true, () => false) };
  }

  it('servers from DNS without a terminal and without --yes: init stops, shows them, and no password is asked for or sent', async () => {
    dns.zone.set('_imap._tcp.example.test', [{ priority: 0, weight: 0, port: stack.imapPort, target: 'localhost' }]);
    dns.zone.set('_submission._tcp.example.test', [{ priority: 0, weight: 0, port: stack.smtpPort, target: 'localhost' }]);
    const caFile = path.join(dir, 'ca.pem');
    await fs.writeFile(caFile, stack.ca);
    const pw = await markingPassword('no-terminal');
    const config = path.join(dir, 'no-terminal.toml');
    const err = await init({
      config,
      email: 'alice@example.test',
      user: 'alice',
      secret: { command: pw.command },
      caFile,
      stateDir: path.join(dir, 'state-no-terminal'),
      iceServers: [],
      discovery: { resolver: dns.resolver(), httpBase: web.base },
    }).catch((e) => e);
    expect(isPeerdialError(err, 'USAGE')).toBe(true);
    expect(err.message).toContain(`IMAP localhost port ${stack.imapPort} (starttls), login alice`);
    expect(err.message).toContain('Nothing was sent or saved');
    expect(err.hint).toContain('--yes');
    expect(await pw.asked()).toBe(false);
    expect(await fs.access(config).then(() => true, () => false)).toBe(false);
  }, 60_000);

  it('alice says no: nothing is sent or saved; with --yes the same servers are taken without asking', async () => {
    const caFile = path.join(dir, 'ca.pem');
    const pw = await markingPassword('said-no');
    const config = path.join(dir, 'said-no.toml');
    const base = {
      config,
      email: 'alice@example.test',
      user: 'alice',
      secret: { command: pw.command },
      caFile,
      stateDir: path.join(dir, 'state-said-no'),
      iceServers: [],
      discovery: { resolver: dns.resolver(), httpBase: web.base },
    };
    const err = await init({ ...base, confirm: async () => false }).catch((e) => e);
    expect(isPeerdialError(err, 'ABORTED')).toBe(true);
    expect(await pw.asked()).toBe(false);
    expect(await fs.access(config).then(() => true, () => false)).toBe(false);
    let asked = 0;
    const r = await init({
      ...base,
      yes: true,
      confirm: async () => {
        asked++;
        return false;
      },
    });
    expect(asked).toBe(0);
    expect(await pw.asked()).toBe(true);
    expect(r.checks.map((c) => [c.what, c.ok])).toEqual([['IMAP', true], ['SMTP', true]]);
  }, 60_000);
});

describe('which servers need the user\'s word', () => {
  const account = (email: string) => ({
    email,
    folder: 'Peerdial',
    imap: { host: 'imap.x', port: 993, tls: 'tls' as const, user: `me\u001b]0;owned\u0007` },
    smtp: { host: 'smtp.x', port: 465, tls: 'tls' as const, user: 'me' },
  });
  it('the built-in table and hosts the user gave: none; SRV or the autoconfig document: shown, with nothing raw for the terminal', () => {
    const table = { source: 'table' as const, detail: 'Posteo' };
    expect(serversToConfirm(table, {}, account('a@posteo.de'))).toBeUndefined();
    const doc = { source: 'autoconfig' as const, detail: 'https://autoconfig.x/mail/config-v1.1.xml' };
    expect(serversToConfirm(doc, { imap: { host: 'i' }, smtp: { host: 's' } }, account('a@x'))).toBeUndefined();
    const half = serversToConfirm(doc, { imap: { host: 'i' } }, account('a@x'));
    expect(half?.text).toContain('the autoconfig document (https://autoconfig.x/mail/config-v1.1.xml)');
    expect(half?.text).toContain('SMTP smtp.x port 465 (tls), login me');
    expect(half?.text).not.toMatch(/[\u0007\u001b]/);
    expect(half?.text).toContain('login me?]0;owned?');
  });
});
