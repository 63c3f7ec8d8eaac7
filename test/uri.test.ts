/**
 * peerdial: links come from web pages, so a link is sorted into a typed
 * call target or a typed rejection before anything acts on it. Valid,
 * invalid and hostile links, the desktop handler file, and `peerdial open`
 * refusing what it should.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callArgs, formatCallUri, parseCallUri, MAX_URI_LENGTH, type CallLink, type UriRejection } from '../src/uri/uri.js';
import { desktopEntry, desktopExecArg } from '../src/uri/desktop.js';
import { runCli, tempDir } from './harness/peers.js';

const valid: [string, Partial<CallLink>][] = [
  ['peerdial:hitoshi@example.jp', { target: 'hitoshi@example.jp', kind: 'address', params: {}, unknown: [] }],
  ['peerdial:hitoshi@example.jp?video=1', { target: 'hitoshi@example.jp', params: { video: true } }],
  ['peerdial:hitoshi@example.jp?video=0&ring=60', { params: { video: false, ringSeconds: 60 } }],
  ['PEERDIAL:Hitoshi@Example.JP', { target: 'hitoshi@example.jp', kind: 'address' }],
  ['peerdial://hitoshi@example.jp', { target: 'hitoshi@example.jp' }],
  ['peerdial://hitoshi@example.jp/', { target: 'hitoshi@example.jp' }],
  ['peerdial:hitoshi', { target: 'hitoshi', kind: 'contact' }],
  ['peerdial:12', { target: '12', kind: 'contact' }],
  ['peerdial:%E3%81%B2%E3%81%A8%E3%81%97', { target: 'ひとし', kind: 'contact' }],
  ['peerdial:hitoshi%40example.jp', { target: 'hitoshi@example.jp', kind: 'address' }],
  ['peerdial:first.last+tag@mail.example.org', { target: 'first.last+tag@mail.example.org' }],
  ['peerdial:hitoshi@example.jp?video', { params: { video: true } }],
  ['peerdial:hitoshi@example.jp?foo=bar&video=yes', { params: { video: true }, unknown: ['foo'] }],
];

const invalid: [string, string, UriRejection][] = [
  ['empty', '', 'empty'],
  ['only spaces', '   ', 'empty'],
  ['no scheme', 'hitoshi@example.jp', 'wrong-scheme'],
  ['javascript:', 'javascript:alert(1)', 'wrong-scheme'],
  ['javascript: disguised', 'javascript:peerdial:hitoshi', 'wrong-scheme'],
  ['data:', 'data:text/html,<script>alert(1)</script>', 'wrong-scheme'],
  ['file:', 'file:///etc/passwd', 'wrong-scheme'],
  ['mailto:', 'mailto:hitoshi@example.jp', 'wrong-scheme'],
  ['lookalike scheme', 'peerdia1:hitoshi', 'wrong-scheme'],
  ['no target', 'peerdial:', 'bad-target'],
  ['no target, params only', 'peerdial:?video=1', 'bad-target'],
  ['two @', 'peerdial:a@b@example.jp', 'bad-target'],
  ['two @, encoded', 'peerdial:a%40b@example.jp', 'bad-target'],
  ['no domain', 'peerdial:hitoshi@', 'bad-target'],
  ['no local part', 'peerdial:@example.jp', 'bad-target'],
  ['single-label domain', 'peerdial:root@localhost', 'bad-target'],
  ['numeric tld', 'peerdial:a@1.2.3.4', 'bad-target'],
  ['space', 'peerdial:hitoshi @example.jp', 'control-character'],
  ['encoded space', 'peerdial:hito%20shi', 'control-character'],
  ['tab', 'peerdial:hitoshi\t', 'control-character'],
  ['newline', 'peerdial:hitoshi\nrm -rf ~', 'control-character'],
  ['encoded newline', 'peerdial:hitoshi%0Arm', 'control-character'],
  ['NUL', 'peerdial:hitoshi%00@example.jp', 'control-character'],
  ['raw NUL', 'peerdial:hitoshi\u0000', 'control-character'],
  ['DEL', 'peerdial:hitoshi\u007f', 'control-character'],
  ['bidi override', 'peerdial:hitoshi\u202e@example.jp', 'control-character'],
  ['bad percent', 'peerdial:hitoshi%zz', 'bad-percent-encoding'],
  ['truncated percent', 'peerdial:hitoshi%4', 'bad-percent-encoding'],
  ['invalid UTF-8', 'peerdial:%C3%28', 'bad-percent-encoding'],
  ['bad percent in a parameter', 'peerdial:hitoshi?video=%G1', 'bad-percent-encoding'],
  ['too long', `peerdial:${'a'.repeat(MAX_URI_LENGTH)}`, 'too-long'],
  ['fragment', 'peerdial:hitoshi#x', 'fragment'],
  ['bad video', 'peerdial:hitoshi?video=maybe', 'bad-parameter'],
  ['ring too short', 'peerdial:hitoshi?ring=1', 'bad-parameter'],
  ['ring not a number', 'peerdial:hitoshi?ring=1e9', 'bad-parameter'],
  ['parameter twice', 'peerdial:hitoshi?ring=30&RING=60', 'bad-parameter'],
];

const hostile: [string, string][] = [
  ['an option instead of a contact', 'peerdial:--config=/tmp/evil.toml'],
  ['an option, encoded', 'peerdial:%2D%2Dhelp'],
  ['an option-like address', 'peerdial:-oProxyCommand=x@example.jp'],
  ['command substitution', 'peerdial:$(touch%20/tmp/pwned)'],
  ['command substitution, no spaces', 'peerdial:$(id)@example.jp'],
  ['backticks', 'peerdial:`id`@example.jp'],
  ['semicolon', 'peerdial:hitoshi;id'],
  ['pipe', 'peerdial:hitoshi|id'],
  ['ampersand in target', 'peerdial:hitoshi%26id'],
  ['redirect', 'peerdial:hitoshi>~%2F.bashrc'],
  ['quotes', `peerdial:a'b"c@example.jp`],
  ['path traversal', 'peerdial:..%2F..%2Fetc%2Fpasswd'],
  ['glob', 'peerdial:*@example.jp'],
  ['a slash', 'peerdial:a/b'],
  ['a dotted contact start', 'peerdial:.hidden'],
  ['CRLF header injection', 'peerdial:hitoshi@example.jp%0D%0ABcc:all@example.jp'],
  ['an address with a port', 'peerdial:hitoshi@example.jp:25'],
  ['an IP literal', 'peerdial:hitoshi@[127.0.0.1]'],
];

describe('peerdial: links', () => {
  it.each(valid)('valid: %s', (uri, want) => {
    const r = parseCallUri(uri);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (r.ok) expect(r.link).toMatchObject(want);
  });

  it.each(invalid)('invalid (%s) is rejected as the right kind', (_what, uri, reason) => {
    const r = parseCallUri(uri);
    expect(r).toMatchObject({ ok: false, reason });
  });

  it.each(hostile)('hostile (%s) is rejected, never turned into a call', (_what, uri) => {
    const r = parseCallUri(uri);
    expect(r.ok, JSON.stringify(r)).toBe(false);
  });

  it('unknown parameters are reported, quoted when odd, and never acted on', () => {
    const r = parseCallUri('peerdial:hitoshi?exec=rm&%24x=1');
    expect(r).toMatchObject({ ok: true, link: { unknown: ['exec', '"$x"'], params: {} } });
  });

  it('formatting and parsing are mirrors', () => {
    for (const [target, params] of [
      ['hitoshi@example.jp', {}],
      ['hitoshi@example.jp', { video: true, ringSeconds: 45 }],
      ['ひとし', { video: false }],
      ['12', {}],
    ] as const) {
      const r = parseCallUri(formatCallUri(target, params));
      expect(r).toMatchObject({ ok: true, link: { target, params } });
    }
  });

  it('the call a link stands for is argv words with the target after "--": no shell, no option injection', () => {
    const r = parseCallUri('peerdial:hitoshi@example.jp?ring=30');
    expect(r.ok).toBe(true);
    if (r.ok) expect(callArgs(r.link)).toEqual(['call', '--ring-seconds', '30', '--', 'hitoshi@example.jp']);
  });
});

describe('the desktop handler', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('uri');
  });
  afterAll(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('declares x-scheme-handler/peerdial and runs `peerdial open %u` in a terminal', () => {
    const text = desktopEntry({ argv: ['/usr/bin/node', '/opt/peer dial/bin/peerdial.js', 'open'] });
    const lines = text.split('\n');
    expect(lines[0]).toBe('[Desktop Entry]');
    expect(lines).toContain('Type=Application');
    expect(lines).toContain('MimeType=x-scheme-handler/peerdial;');
    expect(lines).toContain('Terminal=true');
    expect(lines).toContain('NoDisplay=true');
    expect(lines).toContain('Exec=/usr/bin/node "/opt/peer dial/bin/peerdial.js" open %u');
  });

  it('quotes Exec arguments the way the Desktop Entry spec says', () => {
    expect(desktopExecArg('/plain')).toBe('/plain');
    expect(desktopExecArg('/100%')).toBe('/100%%');
    expect(desktopExecArg('/a$b')).toBe('"/a\\\\$b"');
    expect(desktopExecArg('/a"b')).toBe('"/a\\\\"b"');
    expect(desktopExecArg('/a\\b')).toBe('"/a\\\\\\\\b"');
    expect(() => desktopExecArg('/a\nExec=evil')).toThrow();
  });

  it('peerdial uri register --dir DIR --no-default writes peerdial-uri.desktop there', async () => {
    const apps = path.join(dir, 'apps');
    const cfg = path.join(dir, 'my config.toml');
    const r = await runCli(['--config', cfg, 'uri', 'register', '--dir', apps, '--no-default']);
    expect(r.code, r.stderr).toBe(0);
    const text = await fs.readFile(path.join(apps, 'peerdial-uri.desktop'), 'utf8');
    expect(text).toContain('MimeType=x-scheme-handler/peerdial;');
    expect(text).toMatch(new RegExp(`^Exec=${process.execPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\S+peerdial\\.js --config "${cfg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" open %u$`, 'm'));
    const u = await runCli(['uri', 'unregister', '--dir', apps]);
    expect(u.code).toBe(0);
    await expect(fs.stat(path.join(apps, 'peerdial-uri.desktop'))).rejects.toThrow();
  });
});

describe('peerdial open', () => {
  it('--dry-run shows what a link means and the equivalent command', async () => {
    const r = await runCli(['open', '--dry-run', 'peerdial:hitoshi@example.jp?video=1&x=2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('call the address hitoshi@example.jp');
    expect(r.stdout).toContain('ignored parameters: x');
    expect(r.stdout).toContain('same as: peerdial call -- hitoshi@example.jp');
  });

  it('a hostile link exits 64 with the reason and calls nobody', async () => {
    const r = await runCli(['open', 'peerdial:$(touch /tmp/peerdial-pwned)']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('not a usable peerdial link');
    await expect(fs.stat('/tmp/peerdial-pwned')).rejects.toThrow();
  });

  it('without a terminal to ask and without --yes it does not call', async () => {
    const r = await runCli(['open', 'peerdial:hitoshi@example.jp']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('not calling without a yes');
  });
});
