/** `peerdial web` (described in ../web.ts): the page lives in the agent; ask the running one, or run one here. */
import { openAccount } from '../../api/open.js';
import { connectControl } from '../../agent/control.js';
import { PeerdialError } from '../../errors.js';
import { printJson, say, type GlobalOptions } from '../output.js';
import { agent } from './agent.js';

export async function web(g: GlobalOptions, o: { port?: string }): Promise<void> {
  const port = o.port !== undefined ? Number(o.port) : undefined;
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new PeerdialError('USAGE', `--port wants a port number (0-65535), not "${o.port}".`);
  const account = await openAccount(g);
  const running = await connectControl(account.stateDir);
  if (!running) return agent(g, { web: true, ...(port !== undefined ? { webPort: port } : {}) });
  try {
    const page = (await running.request('web', port !== undefined ? { port } : {})) as { url: string };
    if (g.json) return printJson(page);
    say(`the agent of ${running.email} (pid ${running.pid}) serves the page; open:`);
    say(page.url);
  } finally {
    running.close();
  }
}
