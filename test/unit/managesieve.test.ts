/**
 * The ManageSieve client's reader and its limits, against scripted servers
 * on loopback: answers with quoted strings and literals parse; a server
 * that sends an endless line, announces a huge literal, floods lines, goes
 * silent or offers no STARTTLS is cut off with SIEVE_FAILED, not believed.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ManageSieveClient, parseLine, sieveString } from '../../src/mail/managesieve.js';

const LIMITS = { maxLineBytes: 64, maxLiteralBytes: 16 };
const line = (s: string) => parseLine(Buffer.from(s), LIMITS);

describe('reading answers', () => {
  it('reads atoms, quoted strings with escapes, response codes and literals', () => {
    expect(line('OK (QUOTA/MAXSIZE) "too \\"big\\""\r\n')).toEqual({
      tokens: [{ atom: 'OK' }, { code: [{ atom: 'QUOTA/MAXSIZE' }] }, { str: 'too "big"' }],
      used: 34,
    });
    expect(line('{5}\r\nab\r\nc\r\n')?.tokens).toEqual([{ str: 'ab\r\nc' }]);
    expect(line('"peerdial" ACTIVE\r\n')?.tokens).toEqual([{ str: 'peerdial' }, { atom: 'ACTIVE' }]);
  });

  it('waits for the rest of a line or a literal', () => {
    expect(line('OK "half')).toBeUndefined();
    expect(line('{5}\r\nab')).toBeUndefined();
    expect(line('OK')).toBeUndefined();
  });

  it('refuses a line over the limit, a literal over the limit and bytes that are no token', () => {
    expect(() => line(`"${'x'.repeat(100)}`)).toThrow(/longer than 64 bytes/);
    expect(() => line('x'.repeat(100))).toThrow(/longer than 64 bytes/);
    expect(() => line('{17}\r\n')).toThrow(/literal of 17 bytes/);
    expect(() => line('OK \x01\r\n')).toThrow(/no token/);
    expect(() => line('OK ((((((((((x))))))))))\r\n')).toThrow(/nested/);
  });

  it('writes plain short strings quoted and anything else as a {n+} literal', () => {
    expect(sieveString('peerdial')).toBe('"peerdial"');
    expect(sieveString('a "b"')).toBe('{5+}\r\na "b"');
    expect(sieveString('é\r\n')).toBe('{4+}\r\né\r\n');
  });
});

describe('a hostile or broken server', () => {
  let server: net.Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  /** A server that writes `greeting` on connect and then `onLine` answers to each line it reads. */
  async function scripted(greeting: string, onLine: (l: string, s: net.Socket) => void = () => undefined): Promise<number> {
    server = net.createServer((s) => {
      s.on('error', () => undefined);
      s.write(greeting);
      let buf = '';
      s.on('data', (d) => {
        buf += d.toString('latin1');
        let i: number;
        while ((i = buf.indexOf('\r\n')) >= 0) {
          const l = buf.slice(0, i);
          buf = buf.slice(i + 2);
          onLine(l, s);
        }
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    return (server!.address() as net.AddressInfo).port;
  }

  it('without STARTTLS, nothing is sent: the password never goes out in clear text', async () => {
    const seen: string[] = [];
    const port = await scripted('"IMPLEMENTATION" "fake"\r\n"SASL" "PLAIN"\r\nOK "hi"\r\n', (l) => seen.push(l));
    await expect(ManageSieveClient.connect({ host: '127.0.0.1', port })).rejects.toMatchObject({ code: 'SIEVE_FAILED', message: expect.stringMatching(/does not offer STARTTLS/) });
    expect(seen).toEqual([]);
  });

  it('a greeting line that never ends is cut off at the line limit', async () => {
    const port = await scripted(`"IMPLEMENTATION" "${'x'.repeat(20_000)}`);
    await expect(ManageSieveClient.connect({ host: '127.0.0.1', port, tls: 'none', maxLineBytes: 8192 })).rejects.toMatchObject({ code: 'SIEVE_FAILED', message: expect.stringMatching(/longer than 8192 bytes/) });
  });

  it('a literal larger than the limit is refused before it is read', async () => {
    const port = await scripted('OK "hi"\r\n', (l, s) => {
      if (l.startsWith('GETSCRIPT')) s.write('{999999999}\r\n');
    });
    const c = await ManageSieveClient.connect({ host: '127.0.0.1', port, tls: 'none' });
    try {
      await expect(c.getScript('peerdial')).rejects.toMatchObject({ code: 'SIEVE_FAILED', message: expect.stringMatching(/literal of 999999999 bytes/) });
    } finally {
      c.close();
    }
  });

  it('an answer of endless lines is cut off at the line count', async () => {
    const port = await scripted('OK "hi"\r\n', (l, s) => {
      if (l === 'LISTSCRIPTS') s.write('"a"\r\n'.repeat(50));
    });
    const c = await ManageSieveClient.connect({ host: '127.0.0.1', port, tls: 'none', maxResponseLines: 20 });
    try {
      await expect(c.listScripts()).rejects.toMatchObject({ code: 'SIEVE_FAILED', message: expect.stringMatching(/more than 20 lines/) });
    } finally {
      c.close();
    }
  });

  it('a server that stops answering is given up after the timeout', async () => {
    const port = await scripted('OK "hi"\r\n');
    const c = await ManageSieveClient.connect({ host: '127.0.0.1', port, tls: 'none', timeoutMs: 300 });
    try {
      await expect(c.listScripts()).rejects.toMatchObject({ code: 'SIEVE_FAILED', message: expect.stringMatching(/no answer to LISTSCRIPTS/) });
    } finally {
      c.close();
    }
  });

  it('a NO with a response code is reported with it; BYE ends the connection', async () => {
    const port = await scripted('OK "hi"\r\n', (l, s) => {
      if (l.startsWith('HAVESPACE')) s.write('NO (QUOTA/MAXSIZE) "Script is too large"\r\n');
      if (l.startsWith('SETACTIVE')) s.write('BYE "going away"\r\n');
    });
    const c = await ManageSieveClient.connect({ host: '127.0.0.1', port, tls: 'none' });
    try {
      expect(await c.haveSpace('peerdial', 10_000_000)).toEqual({ ok: false, why: 'Script is too large (QUOTA/MAXSIZE)' });
      await expect(c.setActive('peerdial')).rejects.toMatchObject({ code: 'SIEVE_FAILED', message: expect.stringMatching(/ended the connection on SETACTIVE: going away/) });
      await expect(c.listScripts()).rejects.toMatchObject({ code: 'SIEVE_FAILED' });
    } finally {
      c.close();
    }
  });
});
