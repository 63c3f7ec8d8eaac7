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
import { XMLParser, XMLValidator } from 'fast-xml-parser';
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

// ------------------------------------------------------------------ the XML reader (fast-xml-parser)

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/** Limits for a document fetched from a stranger's web server. */
export const XML_LIMITS = { bytes: 256 * 1024, depth: 32 } as const; // an autoconfig document nests 4 deep

/**
 * fast-xml-parser checks the structure; entities are left to us
 * (`processEntities: false`) so that the rules stay strict: the five
 * predefined ones and character references only, never a DOCTYPE's.
 */
const xmlParser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: false,
  cdataPropName: '#cdata',
  commentPropName: '#comment',
  maxNestedTags: XML_LIMITS.depth,
});

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);|&/gi, (m, ent: string | undefined) => {
    if (!ent) throw new Error('XML: bare &');
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

const NAME = /^[A-Za-z_][\w.:-]*$/;

/** One node of fast-xml-parser's `preserveOrder` output: `{ tag: [children], ':@'?: attrs }`, or a `#text` / `#cdata` / `#comment`. */
type OrderedNode = Record<string, unknown>;

function toElement(node: OrderedNode): XmlElement {
  const name = Object.keys(node).find((k) => k !== ':@')!;
  if (!NAME.test(name)) throw new Error(`XML: <${name.slice(0, 40)}> is not accepted`);
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries((node[':@'] ?? {}) as Record<string, unknown>)) attrs[k] = decodeEntities(String(v));
  const el: XmlElement = { name, attrs, children: [], text: '' };
  for (const c of node[name] as OrderedNode[]) {
    if ('#text' in c) el.text += decodeEntities(String(c['#text']));
    else if ('#cdata' in c) el.text += (c['#cdata'] as OrderedNode[]).map((t) => String(t['#text'] ?? '')).join('');
    else if (!('#comment' in c)) el.children.push(toElement(c));
  }
  return el;
}

/**
 * Parses a small XML document into elements (fast-xml-parser). Refuses
 * DOCTYPE (no entity games), nesting past fast-xml-parser's
 * maxNestedTags (XML_LIMITS.depth; it lets one level more through),
 * documents over XML_LIMITS.bytes, mismatched tags, text outside the root.
 */
export function parseXml(src: string): XmlElement {
  if (src.length > XML_LIMITS.bytes) throw new Error('XML: document too large');
  if (src.charCodeAt(0) === 0xfeff) src = src.slice(1);
  if (/<!DOCTYPE/i.test(src)) throw new Error('XML: DOCTYPE and declarations are not accepted');
  let nodes: OrderedNode[];
  try {
    // first the parser, which stops at the depth limit early; the empty
    // comment at the end makes it hand over any text after the root element
    nodes = xmlParser.parse(`${src}<!---->`) as OrderedNode[];
  } catch (err) {
    throw new Error(`XML: ${err instanceof Error ? err.message : String(err)}`);
  }
  // then well-formedness, which the parser does not check: tags that match, attributes given once, no bare &
  const valid = XMLValidator.validate(src);
  if (valid !== true) throw new Error(`XML: ${valid.err.msg} (line ${valid.err.line}, column ${valid.err.col})`);
  const elements = nodes.filter((n) => !('#comment' in n) && !('#text' in n));
  if (nodes.some((n) => '#text' in n && String(n['#text']).trim())) throw new Error('XML: text outside the root element');
  if (elements.length > 1) throw new Error('XML: more than one root element');
  if (!elements[0]) throw new Error('XML: no root element');
  return toElement(elements[0]);
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
    return text.length <= XML_LIMITS.bytes ? text : undefined;
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
