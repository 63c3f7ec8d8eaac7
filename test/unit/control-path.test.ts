/**
 * Where the agent's control socket goes: the natural place in the state dir
 * while its name fits in sun_path; a short per-account name in a per-user
 * directory when it does not (a HOME of ~47 characters made the kernel cut
 * the name short and the agent unreachable).
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlSocketCandidates, maxSocketPathBytes, prepareSocketDir, shortSocketName } from '../../src/agent/control-path.js';
import { connectControl, serveControl } from '../../src/agent/control.js';
import { PeerdialError } from '../../src/errors.js';

const linux = { platform: 'linux' as const, uid: 1000, tmpdir: '/tmp', env: {} };
const longStateDir = (len: number) => {
  // /home/<name>/.local/state/peerdial/accounts/hitoshi@example.jp, padded to len bytes
  const tail = '/.local/state/peerdial/accounts/hitoshi@example.jp';
  return '/home/' + 'u'.repeat(len - '/home/'.length - tail.length) + tail;
};

describe('the control socket path', () => {
  it('stays in the state dir while STATE_DIR/agent.sock fits in 107 bytes', () => {
    const dir = longStateDir(107 - '/agent.sock'.length);
    expect(Buffer.byteLength(path.join(dir, 'agent.sock'))).toBe(107);
    expect(controlSocketCandidates(dir, linux)).toEqual([{ file: path.join(dir, 'agent.sock'), kind: 'natural' }]);
  });

  it('at 108 bytes and more: a short name, runtime dirs first, then a per-user temp dir', () => {
    const dir = longStateDir(108 - '/agent.sock'.length);
    const name = shortSocketName(dir);
    expect(name).toMatch(/^[0-9a-f]{16}\.sock$/);
    expect(controlSocketCandidates(dir, linux).map((p) => p.file)).toEqual([`/run/user/1000/peerdial/${name}`, `/tmp/peerdial-1000/${name}`]);
    expect(controlSocketCandidates(dir, { ...linux, env: { XDG_RUNTIME_DIR: '/run/user/1000' } }).map((p) => p.file)).toEqual([`/run/user/1000/peerdial/${name}`, `/tmp/peerdial-1000/${name}`]);
    expect(controlSocketCandidates(dir, { ...linux, env: { XDG_RUNTIME_DIR: '/xdg' } }).map((p) => [p.file, p.kind])).toEqual([
      [`/xdg/peerdial/${name}`, 'runtime'],
      [`/run/user/1000/peerdial/${name}`, 'runtime'],
      [`/tmp/peerdial-1000/${name}`, 'temp'],
    ]);
    // a relative XDG_RUNTIME_DIR is ignored, as the spec says
    expect(controlSocketCandidates(dir, { ...linux, env: { XDG_RUNTIME_DIR: 'xdg' } })[0]!.file).toBe(`/run/user/1000/peerdial/${name}`);
    // macOS: 104 bytes with the NUL, no /run/user
    expect(maxSocketPathBytes('darwin')).toBe(103);
    expect(controlSocketCandidates(longStateDir(100), { ...linux, platform: 'darwin', tmpdir: '/var/folders/xy/T' }).map((p) => p.file)).toEqual([`/var/folders/xy/T/peerdial-1000/${shortSocketName(longStateDir(100))}`]);
  });

  it('each account its own name; the same state dir always the same name, however it is spelled', () => {
    const a = longStateDir(150);
    const b = a.replace('hitoshi', 'alice');
    expect(shortSocketName(a)).not.toBe(shortSocketName(b));
    expect(shortSocketName(a)).toBe(shortSocketName(a + '/'));
    expect(shortSocketName(a)).toBe(shortSocketName(a.replace('/peerdial/', '/peerdial/./')));
  });

  it('leaves out a candidate that is itself too long; none left when every one is', () => {
    const dir = longStateDir(200);
    const longTmp = '/' + 't'.repeat(100);
    expect(controlSocketCandidates(dir, { ...linux, tmpdir: longTmp }).map((p) => p.kind)).toEqual(['runtime']);
    expect(controlSocketCandidates(dir, { ...linux, platform: 'darwin', tmpdir: longTmp })).toEqual([]);
  });
});

describe('the directory of a short socket', () => {
  let base: string;
  beforeAll(async () => {
    base = await fs.mkdtemp(path.join(os.tmpdir(), 'peerdial-cp-'));
  });
  afterAll(async () => {
    await fs.rm(base, { recursive: true, force: true });
  });

  it('is created 0700 and used again while it is ours and closed', async () => {
    const dir = path.join(base, 'peerdial-me');
    const place = { file: path.join(dir, 'x.sock'), dir, kind: 'temp' as const };
    await prepareSocketDir(place);
    expect((await fs.lstat(dir)).mode & 0o777).toBe(0o700);
    await prepareSocketDir(place);
  });

  it('is refused when others may enter it, when it is a link, or when somebody else owns it', async () => {
    const open = path.join(base, 'open');
    await fs.mkdir(open);
    await fs.chmod(open, 0o755);
    const err = await prepareSocketDir({ file: path.join(open, 'x.sock'), dir: open, kind: 'temp' }).catch((e) => e);
    expect(err).toBeInstanceOf(PeerdialError);
    expect(err.code).toBe('CONTROL_SOCKET_FAILED');
    expect(err.message).toContain('others may enter it');

    const link = path.join(base, 'link');
    const real = path.join(base, 'real');
    await fs.mkdir(real, { mode: 0o700 });
    await fs.symlink(real, link);
    await expect(prepareSocketDir({ file: path.join(link, 'x.sock'), dir: link, kind: 'temp' })).rejects.toThrow('not a directory');

    const mine = path.join(base, 'mine');
    await fs.mkdir(mine, { mode: 0o700 });
    const me = process.getuid!();
    await expect(prepareSocketDir({ file: path.join(mine, 'x.sock'), dir: mine, kind: 'temp' }, me + 1)).rejects.toThrow(`belongs to uid ${me}`);
  });

  it('in a runtime dir only when that runtime dir exists', async () => {
    const dir = path.join(base, 'no-such-runtime', 'peerdial');
    await expect(prepareSocketDir({ file: path.join(dir, 'x.sock'), dir, kind: 'runtime' })).rejects.toThrow('does not exist');
  });
});

describe('an agent whose state dir makes agent.sock longer than a socket name may be', () => {
  let base: string;
  beforeAll(async () => {
    base = await fs.mkdtemp(path.join(os.tmpdir(), 'peerdial-cps-'));
  });
  afterAll(async () => {
    await fs.rm(base, { recursive: true, force: true });
  });

  it('serves on the short path, and a client of the same state dir finds it and gets answers', async () => {
    const run = path.join(base, 'run');
    await fs.mkdir(run, { mode: 0o700 });
    const where = { env: { XDG_RUNTIME_DIR: run } };
    const stateDir = path.join(base, 'h'.repeat(60), 'state', 'accounts', 'hitoshi@example.jp');
    await fs.mkdir(stateDir, { recursive: true });
    expect(Buffer.byteLength(path.join(stateDir, 'agent.sock'))).toBeGreaterThan(107);
    const server = await serveControl({ stateDir, email: 'hitoshi@example.jp', poke: () => undefined, requests: { status: () => ({ up: true }) }, where });
    try {
      const file = path.join(run, 'peerdial', shortSocketName(stateDir));
      expect((await fs.lstat(file)).isSocket()).toBe(true);
      expect((await fs.lstat(file)).mode & 0o777).toBe(0o600);
      await expect(fs.access(path.join(stateDir, 'agent.sock'))).rejects.toThrow();
      const client = await connectControl(stateDir, 2000, where);
      expect(client?.email).toBe('hitoshi@example.jp');
      expect(await client!.request('status')).toEqual({ up: true });
      client!.close();
      // a second agent of the account finds the first one
      await expect(serveControl({ stateDir, email: 'hitoshi@example.jp', poke: () => undefined, where })).rejects.toThrow('already running');
    } finally {
      await server.close();
    }
  });

  it('cannot serve anywhere: CONTROL_SOCKET_FAILED, and nothing listens', async () => {
    const stateDir = path.join(base, 'x'.repeat(120), 'accounts', 'hitoshi@example.jp');
    // the runtime dir's peerdial entry is a file; /run/user/UID of a uid nobody has does not exist;
    // the temp dir is too long for any socket name
    const run = path.join(base, 'run2');
    await fs.mkdir(run, { mode: 0o700 });
    await fs.writeFile(path.join(run, 'peerdial'), '');
    const where = { env: { XDG_RUNTIME_DIR: run }, uid: 4_000_000_123, tmpdir: path.join(base, 't'.repeat(110)) };
    expect(controlSocketCandidates(stateDir, where).map((p) => p.file)).toEqual([
      path.join(run, 'peerdial', shortSocketName(stateDir)),
      `/run/user/4000000123/peerdial/${shortSocketName(stateDir)}`,
    ]);
    const err = await serveControl({ stateDir, email: 'hitoshi@example.jp', poke: () => undefined, where }).catch((e) => e);
    expect(err).toBeInstanceOf(PeerdialError);
    expect(err.code).toBe('CONTROL_SOCKET_FAILED');
    expect(err.message).toContain('cannot serve its control socket');
    expect(err.message).toContain('not a directory');
    expect(err.message).toContain('does not exist');
    expect(await connectControl(stateDir, 2000, where)).toBeUndefined();
  });

  it('nothing at all fits: CONTROL_SOCKET_FAILED before anything listens', async () => {
    const stateDir = path.join(base, 'x'.repeat(120), 'accounts', 'hitoshi@example.jp');
    const where = { env: {}, uid: 1000, tmpdir: path.join(base, 't'.repeat(110)), platform: 'darwin' as const };
    expect(controlSocketCandidates(stateDir, where)).toEqual([]);
    const err = await serveControl({ stateDir, email: 'hitoshi@example.jp', poke: () => undefined, where }).catch((e) => e);
    expect(err).toBeInstanceOf(PeerdialError);
    expect(err.code).toBe('CONTROL_SOCKET_FAILED');
    expect(err.hint).toContain('shorter state directory');
  });

  it('the kernel cuts a long socket name short: no socket ever exists under it (why all this)', async () => {
    const probe = path.join(base, 'p'.repeat(120 - base.length), 'agent.sock');
    await fs.mkdir(path.dirname(probe), { recursive: true });
    const srv = net.createServer();
    await new Promise<void>((r, j) => srv.once('error', j).listen(probe, () => r())).catch(() => undefined);
    expect(await fs.access(probe).then(() => true, () => false)).toBe(false);
    await new Promise((r) => srv.close(r));
  });

  it('a client of another state dir finds nothing', async () => {
    expect(await connectControl(path.join(base, 'y'.repeat(120)))).toBeUndefined();
  });
});
