/**
 * Finding a mail domain's servers when the bundled provider table has no
 * entry: RFC 6186 SRV records (with RFC 8314's preference for implicit
 * TLS), then the provider's Thunderbird-style autoconfig document
 * (https://autoconfig.DOMAIN/mail/config-v1.1.xml, then
 * https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml).
 *
 * The DNS resolver and the HTTP fetch are injectable, so tests answer from
 * servers on 127.0.0.1 and never ask the internet.
 */
import { promises as dnsPromises } from 'node:dns';
import type { SrvRecord } from 'node:dns';
import { providerFor, type ServerSettings } from './providers.js';

export interface SrvResolver {
  resolveSrv(name: string): Promise<SrvRecord[]>;
}

export interface DiscoverOptions {
  /** Default: a node:dns Resolver with the system's servers (2 s timeout). */
  resolver?: SrvResolver;
  fetch?: typeof fetch;
  /**
   * Tests: instead of https://HOST/PATH, fetch `${httpBase}/HOST/PATH`
   * (e.g. http://127.0.0.1:PORT), so no real host is ever contacted.
   */
  httpBase?: string;
  timeoutMs?: number;
  /** Skip a step (e.g. --no-autoconfig). */
  srv?: boolean;
  document?: boolean;
}

export interface Discovered {
  /** Where the settings came from. */
  source: 'table' | 'srv' | 'autoconfig';
  /** Human-readable: provider name, the SRV names, or the document URL. */
  detail: string;
  imap?: ServerSettings;
  smtp?: ServerSettings;
  /** Login name the document asks for (with %EMAILADDRESS% etc. filled in). */
  imapUser?: string;
  smtpUser?: string;
  /** The document lists OAuth2 as (one) way to log in. */
  oauth2?: boolean;
  note?: string;
}

const HOST_RE = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

function cleanHost(h: string): string | undefined {
  const t = h.trim().replace(/\.$/, '').toLowerCase();
  return t && HOST_RE.test(t) ? t : undefined;
}

// ------------------------------------------------------------------ SRV

/** RFC 2782 order: lowest priority, then highest weight (no random pick: the same answer every time). */
function best(records: SrvRecord[]): SrvRecord | undefined {
  return [...records].sort((a, b) => a.priority - b.priority || b.weight - a.weight)[0];
}

async function srvOne(resolver: SrvResolver, name: string): Promise<SrvRecord | undefined | null> {
  try {
    const r = best(await resolver.resolveSrv(name));
    // "." as target: the service is decidedly not offered (RFC 6186 section 3.4)
    if (r && (r.name === '' || r.name === '.')) return null;
    return r;
  } catch {
    return undefined;
  }
}

export async function discoverSrv(domain: string, resolver: SrvResolver): Promise<{ imap?: ServerSettings; smtp?: ServerSettings; names: string[] }> {
  const names: string[] = [];
  const pick = async (candidates: [string, ServerSettings['tls']][]): Promise<ServerSettings | undefined> => {
    const answers = await Promise.all(candidates.map(([svc]) => srvOne(resolver, `${svc}.${domain}`)));
    for (let i = 0; i < candidates.length; i++) {
      const r = answers[i];
      const host = r ? cleanHost(r.name) : undefined;
      if (r && host && r.port > 0) {
        names.push(`${candidates[i]![0]}.${domain}`);
        return { host, port: r.port, tls: candidates[i]![1] };
      }
    }
    return undefined;
  };
  const [imap, smtp] = await Promise.all([
    pick([['_imaps._tcp', 'tls'], ['_imap._tcp', 'starttls']]),
    pick([['_submissions._tcp', 'tls'], ['_submission._tcp', 'starttls']]),
  ]);
  return { ...(imap ? { imap } : {}), ...(smtp ? { smtp } : {}), names };
}

// ------------------------------------------------------------------ a small strict XML reader

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

function decodeEntities(s: string, at: number): string {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);|&/gi, (m, ent: string | undefined) => {
    if (!ent) throw new Error(`XML: bare & near offset ${at}`);
    if (ent[0] === '#') {
      const cp = ent[1] === 'x' || ent[1] === 'X' ? parseInt(ent.slice(2), 16) : parseInt(ent.slice(1), 10);
      if (!Number.isFinite(cp) || cp > 0x10ffff) throw new Error(`XML: bad character reference ${m}`);
      return String.fromCodePoint(cp);
    }
    const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    const v = named[ent];
    if (v === undefined) throw new Error(`XML: unknown entity ${m}`);
    return v;
  });
}

const NAME = /^[A-Za-z_][\w.:-]*/;

/** Parses a small XML document into elements. Refuses DOCTYPE (no entity games), mismatched tags, trailing junk. */
export function parseXml(src: string): XmlElement {
  if (src.length > 256 * 1024) throw new Error('XML: document too large');
  let i = 0;
  const root: XmlElement = { name: '#document', attrs: {}, children: [], text: '' };
  const stack: XmlElement[] = [root];
  if (src.charCodeAt(0) === 0xfeff) i = 1;
  while (i < src.length) {
    const lt = src.indexOf('<', i);
    const textEnd = lt === -1 ? src.length : lt;
    if (textEnd > i) {
      const text = src.slice(i, textEnd);
      const top = stack[stack.length - 1]!;
      if (top === root) {
        if (text.trim()) throw new Error(`XML: text outside the root element at offset ${i}`);
      } else top.text += decodeEntities(text, i);
      i = textEnd;
      continue;
    }
    if (src.startsWith('<!--', i)) {
      const end = src.indexOf('-->', i + 4);
      if (end === -1) throw new Error('XML: unterminated comment');
      i = end + 3;
    } else if (src.startsWith('<![CDATA[', i)) {
      const end = src.indexOf(']]>', i + 9);
      if (end === -1 || stack.length === 1) throw new Error('XML: bad CDATA section');
      stack[stack.length - 1]!.text += src.slice(i + 9, end);
      i = end + 3;
    } else if (src.startsWith('<?', i)) {
      const end = src.indexOf('?>', i + 2);
      if (end === -1) throw new Error('XML: unterminated processing instruction');
      i = end + 2;
    } else if (src.startsWith('<!', i)) {
      throw new Error('XML: DOCTYPE and declarations are not accepted');
    } else if (src.startsWith('</', i)) {
      const m = NAME.exec(src.slice(i + 2));
      const name = m?.[0];
      const end = src.indexOf('>', i);
      if (!name || end === -1 || src.slice(i + 2 + name.length, end).trim()) throw new Error(`XML: bad end tag at offset ${i}`);
      const top = stack.pop();
      if (!top || top === root || top.name !== name) throw new Error(`XML: </${name}> does not close <${top?.name ?? ''}> at offset ${i}`);
      i = end + 1;
    } else {
      const m = NAME.exec(src.slice(i + 1));
      if (!m) throw new Error(`XML: bad tag at offset ${i}`);
      const el: XmlElement = { name: m[0], attrs: {}, children: [], text: '' };
      let j = i + 1 + m[0].length;
      const attrRe = /\s+([A-Za-z_][\w.:-]*)\s*=\s*("([^"<]*)"|'([^'<]*)')|\s*(\/?)>/y;
      for (;;) {
        attrRe.lastIndex = j;
        const a = attrRe.exec(src);
        if (!a) throw new Error(`XML: bad attribute in <${el.name}> at offset ${j}`);
        j = attrRe.lastIndex;
        if (a[1]) {
          if (a[1] in el.attrs) throw new Error(`XML: attribute ${a[1]} twice in <${el.name}>`);
          el.attrs[a[1]] = decodeEntities(a[3] ?? a[4] ?? '', j);
          continue;
        }
        const parent = stack[stack.length - 1]!;
        if (parent === root && root.children.length) throw new Error('XML: more than one root element');
        parent.children.push(el);
        if (a[5] !== '/') stack.push(el);
        break;
      }
      i = j;
    }
  }
  if (stack.length !== 1) throw new Error(`XML: <${stack[stack.length - 1]!.name}> is not closed`);
  const top = root.children[0];
  if (!top) throw new Error('XML: no root element');
  return top;
}

const child = (e: XmlElement, name: string): XmlElement | undefined => e.children.find((c) => c.name === name);
const childText = (e: XmlElement, name: string): string | undefined => child(e, name)?.text.trim() || undefined;

// ------------------------------------------------------------------ the autoconfig document

function fillUser(template: string | undefined, email: string): string | undefined {
  if (!template) return undefined;
  const [local = '', domain = ''] = email.split('@');
  return template.replace(/%EMAILADDRESS%/g, email).replace(/%EMAILLOCALPART%/g, local).replace(/%EMAILDOMAIN%/g, domain);
}

interface ServerEntry {
  settings: ServerSettings;
  user?: string;
  oauth2: boolean;
}

function serverEntry(e: XmlElement, email: string): ServerEntry | undefined {
  const host = cleanHost(childText(e, 'hostname') ?? '');
  const port = Number(childText(e, 'port'));
  const socket = (childText(e, 'socketType') ?? '').toUpperCase();
  // never take a plain-text server from discovery
  const tls = socket === 'SSL' || socket === 'TLS' ? 'tls' : socket === 'STARTTLS' ? 'starttls' : undefined;
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535 || !tls) return undefined;
  const auths = e.children.filter((c) => c.name === 'authentication').map((c) => c.text.trim());
  const user = fillUser(childText(e, 'username'), email);
  return { settings: { host, port, tls }, ...(user ? { user } : {}), oauth2: auths.includes('OAuth2') };
}

/** Reads a config-v1.1.xml document: the first usable IMAP and SMTP servers, TLS preferred over STARTTLS. */
export function parseAutoconfig(xml: string, email: string): Omit<Discovered, 'source' | 'detail'> {
  const root = parseXml(xml);
  if (root.name !== 'clientConfig') throw new Error(`XML: root is <${root.name}>, not <clientConfig>`);
  const provider = child(root, 'emailProvider');
  if (!provider) throw new Error('XML: no <emailProvider>');
  const pick = (tag: string, type: string): ServerEntry | undefined => {
    const all = provider.children
      .filter((c) => c.name === tag && c.attrs.type === type)
      .map((c) => serverEntry(c, email))
      .filter((x): x is ServerEntry => !!x);
    return all.find((x) => x.settings.tls === 'tls') ?? all[0];
  };
  const imap = pick('incomingServer', 'imap');
  const smtp = pick('outgoingServer', 'smtp');
  const out: Omit<Discovered, 'source' | 'detail'> = {};
  if (imap) out.imap = imap.settings;
  if (smtp) out.smtp = smtp.settings;
  if (imap?.user) out.imapUser = imap.user;
  if (smtp?.user) out.smtpUser = smtp.user;
  if (imap?.oauth2 || smtp?.oauth2) out.oauth2 = true;
  const name = childText(provider, 'displayName');
  if (name) out.note = name;
  return out;
}

export function autoconfigUrls(domain: string, email: string): string[] {
  return [
    `https://autoconfig.${domain}/mail/config-v1.1.xml?emailaddress=${encodeURIComponent(email)}`,
    `https://${domain}/.well-known/autoconfig/mail/config-v1.1.xml`,
  ];
}

async function fetchText(url: string, opts: DiscoverOptions): Promise<string | undefined> {
  const u = new URL(url);
  const target = opts.httpBase ? `${opts.httpBase.replace(/\/$/, '')}/${u.host}${u.pathname}${u.search}` : url;
  try {
    const res = await (opts.fetch ?? fetch)(target, { redirect: opts.httpBase ? 'manual' : 'follow', signal: AbortSignal.timeout(opts.timeoutMs ?? 5_000) });
    if (res.status !== 200) return undefined;
    const text = await res.text();
    return text.length <= 256 * 1024 ? text : undefined;
  } catch {
    return undefined;
  }
}

export async function discoverDocument(domain: string, email: string, opts: DiscoverOptions = {}): Promise<Discovered | undefined> {
  for (const url of autoconfigUrls(domain, email)) {
    const text = await fetchText(url, opts);
    if (text === undefined) continue;
    let found: Omit<Discovered, 'source' | 'detail'>;
    try {
      found = parseAutoconfig(text, email);
    } catch {
      continue;
    }
    if (found.imap || found.smtp) return { source: 'autoconfig', detail: url.replace(/\?.*$/, ''), ...found };
  }
  return undefined;
}

function defaultResolver(timeoutMs: number): SrvResolver {
  return new dnsPromises.Resolver({ timeout: timeoutMs, tries: 2 });
}

/**
 * The servers of an address's domain: the bundled table, then SRV records,
 * then the autoconfig document. Settings a step leaves open are filled by
 * the next one. Undefined when nothing was found.
 */
export async function discover(email: string, opts: DiscoverOptions = {}): Promise<Discovered | undefined> {
  const known = providerFor(email);
  if (known) {
    return { source: 'table', detail: known.name, imap: known.imap, smtp: known.smtp, ...(known.note ? { note: known.note } : {}) };
  }
  const domain = email.split('@')[1]?.toLowerCase();
  if (!domain || !cleanHost(domain)) return undefined;
  let found: Discovered | undefined;
  if (opts.srv !== false) {
    const srv = await discoverSrv(domain, opts.resolver ?? defaultResolver(opts.timeoutMs ?? 2_000));
    if (srv.imap || srv.smtp) {
      found = { source: 'srv', detail: srv.names.join(', '), ...(srv.imap ? { imap: srv.imap } : {}), ...(srv.smtp ? { smtp: srv.smtp } : {}) };
      if (found.imap && found.smtp) return found;
    }
  }
  if (opts.document !== false) {
    const doc = await discoverDocument(domain, email, opts);
    if (doc) {
      if (!found) return doc;
      // SRV gave one side: the document fills in the other
      return {
        ...found,
        detail: `${found.detail} + ${doc.detail}`,
        imap: found.imap ?? doc.imap,
        smtp: found.smtp ?? doc.smtp,
        ...(doc.oauth2 ? { oauth2: true } : {}),
        ...(doc.imapUser && !found.imap ? { imapUser: doc.imapUser } : {}),
        ...(doc.smtpUser && !found.smtp ? { smtpUser: doc.smtpUser } : {}),
      } as Discovered;
    }
  }
  return found;
}
