/**
 * One address grammar: the wire format, the address book, links and the
 * command line accept and refuse the same strings, and compare them in one
 * normal form.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkMailAddress, isMailAddress, normalMailAddress, requireMailAddress } from '../../src/wire/address.js';
import { validateMessage } from '../../src/wire/validate.js';
import { ContactStore, isValidEmail } from '../../src/store/contacts.js';
import { parseCallUri } from '../../src/uri/uri.js';

const accepted: [string, string][] = [
  ['hitoshi@example.jp', 'hitoshi@example.jp'],
  ['Hitoshi@Example.JP', 'hitoshi@example.jp'],
  ['first.last+tag@mail.example.org', 'first.last+tag@mail.example.org'],
  ['a_b-c@sub-domain.example.test', 'a_b-c@sub-domain.example.test'],
  ['hitoshi@例え.jp', 'hitoshi@xn--r8jz45g.jp'],
  ['hitoshi@xn--r8jz45g.jp', 'hitoshi@xn--r8jz45g.jp'],
  ['hans@faß.de', 'hans@xn--fa-hia.de'],
  [`${'a'.repeat(64)}@example.test`, `${'a'.repeat(64)}@example.test`],
];

const refused: [string, string, RegExp][] = [
  ['path traversal in the local part', 'a/../../../../x@evil.test', /letters, digits/],
  ['a slash', 'a/b@evil.test', /letters, digits/],
  ['a backslash', 'a\\b@evil.test', /letters, digits/],
  ['dot-dot', 'a..b@evil.test', /double dot/],
  ['leading dot', '.a@evil.test', /leading/],
  ['a dot name', '..@evil.test', /letters, digits/],
  ['an option', '-oProxyCommand@evil.test', /starts with "-"/],
  ['shell characters', '$(id)@evil.test', /letters, digits/],
  ['backticks', '`id`@evil.test', /letters, digits/],
  ['a quote', "o'brien@evil.test", /letters, digits/],
  ['a quoted local part', '"a b"@evil.test', /space/],
  ['NUL', 'a\u0000b@evil.test', /control/],
  ['a newline', 'a@evil.test\r\nBcc: all@evil.test', /control/],
  ['bidi override', 'a\u202e@evil.test', /invisible/],
  ['bidi override in the domain', 'a@ev\u202eil.test', /invisible/],
  ['zero-width space', 'a@exa\u200bmple.test', /invisible/],
  ['non-ASCII local part', 'hitöshi@example.jp', /letters, digits/],
  ['a full-width @', 'a\uff20evil.test', /no "@"/],
  ['single-label domain', 'bob@localhost', /single-label/],
  ['an IP literal', 'root@[127.0.0.1]', /IP address/],
  ['a numeric domain', 'root@1.2.3.4', /number/],
  ['a slash in the domain', 'a@evil.test/../x', /only hold letters/],
  ['a port', 'a@evil.test:25', /only hold letters/],
  ['two @', 'a@b@evil.test', /more than one/],
  ['no local part', '@evil.test', /empty/],
  ['no domain', 'a@', /empty/],
  ['empty label', 'a@evil..test', /label/],
  ['label with a leading hyphen', 'a@-evil.test', /label/],
  ['local part too long', `${'a'.repeat(65)}@example.test`, /longer than 64/],
  ['whole too long', `a@${Array.from({ length: 5 }, () => 'b'.repeat(60)).join('.')}.test`, /longer than 254/],
  ['huge', `a@${'b.'.repeat(5000)}test`, /longer than 254/],
  ['a space', 'a b@evil.test', /space/],
];

let dir: string;
let store: ContactStore;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'peerdial-grammar-'));
  store = new ContactStore(dir);
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** A minimal announce from `from`, as the wire validator sees it. */
function announceFrom(from: string): unknown {
  return {
    v: 1,
    kind: 'announce',
    from,
    to: 'hitoshi@example.jp',
    callId: 'c'.repeat(16),
    nonce: 'n'.repeat(16),
    created: '2026-01-01T00:00:00.000Z',
    expires: '2026-01-02T00:00:00.000Z',
    addresses: [{ ip: '192.0.2.7', source: 'interface', scope: 'public' }],
  };
}

/** What every user of the grammar says about one string. */
async function verdicts(s: string): Promise<{ grammar: boolean; wire: boolean; contacts: boolean; link: boolean; cli: boolean; book: boolean }> {
  const n = normalMailAddress(s);
  const link = parseCallUri(`peerdial:${encodeURIComponent(s)}`);
  let cli = true;
  try {
    requireMailAddress(s);
  } catch {
    cli = false;
  }
  let book = true;
  try {
    const c = await store.add({ name: `n${Math.random().toString(36).slice(2)}`, email: s });
    await store.remove(c.name);
  } catch {
    book = false;
  }
  return {
    grammar: n !== undefined,
    wire: validateMessage(announceFrom(n ?? s)).ok,
    contacts: isValidEmail(s),
    link: link.ok && link.link.kind === 'address' && link.link.target === n,
    cli,
    book,
  };
}

describe('one address grammar', () => {
  it.each(accepted)('%s is accepted everywhere, as %s', async (input, normal) => {
    expect(checkMailAddress(input)).toEqual({ ok: true, address: normal });
    expect(isMailAddress(normal)).toBe(true);
    expect(await verdicts(input)).toEqual({ grammar: true, wire: true, contacts: true, link: true, cli: true, book: true });
  });

  it.each(refused)('%s is refused everywhere with a reason', async (_what, input, reason) => {
    const r = checkMailAddress(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
    expect(isMailAddress(input)).toBe(false);
    const v = await verdicts(input);
    expect(v).toEqual({ grammar: false, wire: false, contacts: false, link: false, cli: false, book: false });
  });

  it('the wire carries only the normal form: upper case and Unicode domains are refused there', () => {
    expect(validateMessage(announceFrom('Hitoshi@example.jp')).ok).toBe(false);
    expect(validateMessage(announceFrom('hitoshi@例え.jp')).ok).toBe(false);
    expect(validateMessage(announceFrom('hitoshi@xn--r8jz45g.jp')).ok).toBe(true);
  });

  it('contacts add bob@localhost is refused with a message that says why', async () => {
    await expect(store.add({ name: 'lh', email: 'bob@localhost' })).rejects.toMatchObject({
      code: 'USAGE',
      message: expect.stringMatching(/"bob@localhost" is not an e-mail address peerdial accepts: "localhost" is a single-label domain/),
    });
  });

  it('spaces around a typed address are trimmed by the command line and the address book, nowhere else', async () => {
    expect(requireMailAddress('  Hitoshi@example.jp ')).toBe('hitoshi@example.jp');
    expect(isValidEmail(' hitoshi@example.jp')).toBe(true);
    expect(checkMailAddress(' hitoshi@example.jp').ok).toBe(false);
    expect(parseCallUri('peerdial:%20hitoshi@example.jp').ok).toBe(false);
    expect(validateMessage(announceFrom(' hitoshi@example.jp')).ok).toBe(false);
  });

  it('an address book entry is found by its Unicode and its ASCII spelling alike', async () => {
    const c = await store.add({ name: 'hitoshi-idn', email: 'Hitoshi@例え.JP' });
    expect(c.email).toBe('hitoshi@xn--r8jz45g.jp');
    expect((await store.resolve('hitoshi@例え.jp'))?.name).toBe('hitoshi-idn');
    expect((await store.resolve('HITOSHI@xn--r8jz45g.jp'))?.name).toBe('hitoshi-idn');
    await store.remove('hitoshi-idn');
  });

  it('property: every user of the grammar agrees on any string built from hostile pieces', async () => {
    const localPiece = fc.constantFrom('a', 'Bob', '0', '.', '..', '-', '_', '+', '/', '\\', '\u202e', '\u0000', ' ', 'é', '$', '`', "'", '"', '=', '@', '\uff0e', 'x'.repeat(30));
    const domain = fc.constantFrom(
      'example.test', 'EXAMPLE.TEST', 'localhost', '例え.jp', 'xn--r8jz45g.jp', 'a/b.test', '1.2.3.4', '[127.0.0.1]',
      'x..test', '-x.test', 'exa\u200bmple.test', 'example\uff0etest', 'ev\u202eil.test', `${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(63)}.test`, '',
    );
    // Surrounding spaces are the one difference on purpose: what a user types is trimmed (see below).
    const address = fc
      .tuple(fc.array(localPiece, { minLength: 0, maxLength: 6 }), domain)
      .map(([l, d]) => `${l.join('')}@${d}`)
      .filter((s) => s === s.trim());
    await fc.assert(
      fc.asyncProperty(address, async (s) => {
        const v = await verdicts(s);
        const all = Object.values(v);
        expect(all.every((x) => x === v.grammar), `${JSON.stringify(s)}: ${JSON.stringify(v)}`).toBe(true);
        const n = normalMailAddress(s);
        if (n !== undefined) {
          // the normal form is a fixed point and names nothing a path could use
          expect(normalMailAddress(n)).toBe(n);
          expect(n).not.toMatch(/[/\\\s]|\.\./);
        }
      }),
      { numRuns: 300 },
    );
  });
});
