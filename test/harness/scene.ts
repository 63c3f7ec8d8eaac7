/**
 * The scene most tests start from: a real mail stack (Dovecot + Postfix on
 * loopback) with one account per peer, each a peerdial user made by the
 * `init` API, all introduced to each other (contacts with keys). Started
 * before the file's tests, stopped after them.
 */
import { promises as fs } from 'node:fs';
import { afterAll, beforeAll } from 'vitest';
import { startMailStack, type MailStack } from './mail-stack.js';
import { introduce, makePeer, tempDir, type Peer, type PeerSettings } from './peers.js';
import { ensureMailServers } from './system.js';

export interface Scene {
  stack: MailStack;
  dir: string;
  peers: Record<string, Peer>;
}

/**
 * Registers the file's beforeAll/afterAll. `peers` names each peer (a mail
 * user) with its settings; `ready` gets the scene once everybody is
 * introduced (assign it to the file's variables, send first mails).
 */
export function introducedPeers(label: string, peers: Record<string, PeerSettings>, ready: (scene: Scene) => void | Promise<void>): void {
  let scene: Scene | undefined;
  beforeAll(async () => {
    ensureMailServers();
    const stack = await startMailStack({ users: Object.keys(peers) });
    const dir = await tempDir(label);
    scene = { stack, dir, peers: {} };
    for (const [name, settings] of Object.entries(peers)) scene.peers[name] = await makePeer(stack, name, dir, settings);
    await introduce(...Object.values(scene.peers));
    await ready(scene);
  }, 120_000);
  afterAll(async () => {
    await scene?.stack.stop();
    if (scene) await fs.rm(scene.dir, { recursive: true, force: true });
  });
}
