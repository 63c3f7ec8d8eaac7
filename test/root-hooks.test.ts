/**
 * The hooks that `sudo peerdial hooks install` writes run as root on every
 * network change. alice's node, peerdial and config live in her home, where
 * she (or whoever takes over her account) can change them: root must never
 * run them. Root runs only its own setpriv, which becomes alice before any
 * of her files is looked at.
 *
 * Here "alice" is uid 65534 (nobody), and her "node" is a script in her
 * home that writes down who runs it; the hooks are run by root, as ppp,
 * NetworkManager and dhcpcd would.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressChangedCommand, findSetpriv, hookScripts, installHookScripts } from '../src/link/install.js';
import { isPeerdialError } from '../src/errors.js';
import { runCli, tempDir, waitFor } from './harness/peers.js';

const ALICE = { uid: 65534, gid: 65534 };

let dir: string;
let home: string;
let ran: string;
let files: { kind: string; file: string }[];
let command: string;

beforeAll(async () => {
  dir = await tempDir('root-hooks');
  await fs.chmod(dir, 0o755);
  home = path.join(dir, 'home', 'alice');
  await fs.mkdir(path.join(home, '.local', 'bin'), { recursive: true });
  // what alice's "node" records; the directory is hers to write
  const log = path.join(dir, 'log');
  await fs.mkdir(log, { mode: 0o777 });
  await fs.chmod(log, 0o777);
  ran = path.join(log, 'ran');
  const node = path.join(home, '.local', 'bin', 'node');
  await fs.writeFile(node, `#!/bin/sh\necho "$(id -u) $(id -g) $*" >> '${ran}'\n`, { mode: 0o755 });
  await fs.chmod(node, 0o755);
  const setpriv = findSetpriv();
  command = addressChangedCommand({ node, bin: path.join(home, 'peerdial', 'bin', 'peerdial.js'), config: path.join(home, '.config', 'peerdial', 'config.toml'), user: ALICE, setpriv });
  const d = (n: string) => path.join(dir, 'etc', n);
  files = await installHookScripts(command, { ppp: d('ip-up.d'), networkmanager: d('dispatcher.d'), dhcpcd: d('dhcpcd-hooks') });
});

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** The words of a /bin/sh command line of single-quoted words. */
const words = (cmd: string) => [...cmd.matchAll(/'((?:[^']|'\\'')*)'/g)].map((m) => m[1]!.replace(/'\\''/g, "'"));

describe('root hooks run nothing of the user as root', () => {
  it('the installed scripts are root\'s, and root executes only root\'s setpriv; every path in alice\'s home comes after setpriv has become alice', async () => {
    expect(files.map((f) => f.kind).sort()).toEqual(['dhcpcd', 'networkmanager', 'ppp']);
    for (const f of files) {
      const st = await fs.stat(f.file);
      expect(st.uid, f.file).toBe(0);
      expect(st.mode & 0o022, f.file).toBe(0); // nobody but root can change it
      const text = await fs.readFile(f.file, 'utf8');
      // alice's home appears on exactly one line: the setpriv command line
      const userLines = text.split('\n').filter((l) => l.includes(home));
      expect(userLines.length, f.file).toBe(1);
      const w = words(userLines[0]!.slice(userLines[0]!.indexOf("'")));
      const setpriv = w[0]!;
      const st2 = await fs.stat(setpriv);
      expect(st2.uid).toBe(0);
      expect(st2.mode & 0o022).toBe(0);
      expect(setpriv.startsWith(home)).toBe(false);
      const sep = w.indexOf('--');
      expect(w.slice(1, sep)).toEqual([`--reuid=${ALICE.uid}`, `--regid=${ALICE.gid}`, '--init-groups', '--reset-env', '--no-new-privs']);
      // before `--`: nothing of alice's
      expect(w.slice(0, sep).some((x) => x.includes(home))).toBe(false);
      expect(w.slice(sep + 1).at(-1)).toBe('address-changed');
    }
  });

  it('run by root as ppp, NetworkManager and dhcpcd do, what they start runs with alice\'s uid and gid', async () => {
    const [ppp, nm, dh] = ['ppp', 'networkmanager', 'dhcpcd'].map((k) => files.find((f) => f.kind === k)!.file);
    const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
      new Promise<number | null>((res) => spawn(cmd, args, { stdio: 'ignore', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...env } }).on('close', res));
    expect(process.getuid!()).toBe(0);
    expect(await run(ppp!, ['ppp0', '/dev/ttyUSB0', '115200', '10.0.0.2', '10.0.0.1', ''])).toBe(0);
    expect(await run(nm!, ['wlan0', 'up'])).toBe(0);
    expect(await run('/bin/sh', ['-c', `reason=BOUND; . '${dh}'`])).toBe(0);
    const lines = await waitFor('three runs of alice\'s node', async () => {
      const l = (await fs.readFile(ran, 'utf8').catch(() => '')).split('\n').filter(Boolean);
      return l.length === 3 && l;
    });
    for (const l of lines) {
      expect(l.startsWith(`${ALICE.uid} ${ALICE.gid} `), l).toBe(true);
      expect(l).toContain('--quiet address-changed');
    }
  });

  it('a hook that would run peerdial as root is refused', () => {
    const attempt = () => addressChangedCommand({ node: '/usr/bin/node', bin: '/x/peerdial.js', config: '/root/config.toml', user: { uid: 0, gid: 0 }, setpriv: findSetpriv() });
    expect(attempt).toThrow(/never as root/);
    try {
      attempt();
    } catch (err) {
      expect(isPeerdialError(err, 'USAGE')).toBe(true);
    }
  });

  it('a setpriv that somebody else could change is not used', async () => {
    const fake = path.join(home, 'setpriv');
    await fs.writeFile(fake, '#!/bin/sh\nexec "$@"\n', { mode: 0o777 });
    await fs.chmod(fake, 0o777);
    expect(() => findSetpriv([fake])).toThrow(/No root-owned setpriv/);
    // and the scripts themselves name the command once: nothing else of the user's
    expect(hookScripts(command).every((s) => s.text.split(command).length === 2)).toBe(true);
  });

  it('`sudo peerdial hooks install` run from alice\'s shell: the hooks become the user who ran sudo', async () => {
    const config = path.join(home, 'config.toml');
    await fs.writeFile(config, `[defaults]\nstate_dir = "${path.join(home, 'state')}"\n\n[[accounts]]\nemail = "alice@example.test"\n[accounts.imap]\nhost = "127.0.0.1"\nport = 143\n[accounts.smtp]\nhost = "127.0.0.1"\nport = 587\n`);
    const ppp = path.join(dir, 'etc2', 'ip-up.d');
    const r = await runCli(['--config', config, 'hooks', 'install', '--ppp', ppp], { env: { SUDO_UID: '65534', SUDO_GID: '65534' } });
    expect(r.code, r.stderr).toBe(0);
    const text = await fs.readFile(path.join(ppp, 'peerdial'), 'utf8');
    expect(text).toContain("'--reuid=65534' '--regid=65534'");
    expect(text).toContain(`'--config' '${config}'`);
  });
});
