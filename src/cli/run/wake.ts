/** The implementation of the commands described in ../wake.ts, loaded when one runs. */
import path from 'node:path';
import { openConfig } from '../../api/open.js';
import { PeerdialError } from '../../errors.js';
import { sendWakeOnLan } from '../../address/wol.js';
import { openSleepingMachine, runWakeRelay, type WakeEvent } from '../../wake/relay.js';
import { printJson, status, type GlobalOptions } from '../output.js';

function describeWake(e: WakeEvent): string {
  switch (e.type) {
    case 'watching':
      return `watching the INBOX of ${e.email} read-only (${e.idle ? 'IDLE' : 'polling'})`;
    case 'woke':
      return `peerdial mail from ${e.from} for ${e.email}: magic packet for ${e.mac} sent to ${e.address}:${e.port}`;
    case 'wake-skipped':
      return `peerdial mail from ${e.from} for ${e.email}: not waking again (${e.why})`;
    case 'ignored':
      return `peerdial mail from ${e.from} for ${e.email} ignored: ${e.why}`;
    case 'disconnected':
      return `mailbox of ${e.email}: connection lost (${e.error.message}); retrying in ${Math.round(e.retryInMs / 1000)} s`;
    case 'error':
      return `${e.email}: ${e.error.message}`;
  }
}

export async function wakeRelay(g: GlobalOptions): Promise<void> {
  const cfg = await openConfig(g);
  if (!cfg.wake?.length) {
    throw new PeerdialError('CONFIG_INVALID', `${cfg.file} has no [[wake]] entries.`, { hint: 'Add one per sleeping machine: email, mac, address, port, config (see peerdial wake-relay --help).' });
  }
  const machines = await Promise.all(cfg.wake.map((t) => openSleepingMachine(t, cfg.file)));
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  const log = (e: WakeEvent) => {
    if (g.json) process.stdout.write(JSON.stringify({ at: new Date().toISOString(), ...e, ...('error' in e ? { error: e.error.message } : {}) }) + '\n');
    else process.stdout.write(`${new Date().toISOString()} ${describeWake(e)}\n`);
  };
  process.stdout.write(`${new Date().toISOString()} wake relay started for ${cfg.wake.map((w) => w.email).join(', ')}\n`);
  await runWakeRelay({ machines, stateDir: path.join(cfg.stateDir, 'wake-relay'), signal: ac.signal, onEvent: log, maxIdleMs: cfg.idleSeconds * 1000, pollMs: cfg.pollSeconds * 1000 });
  process.stdout.write(`${new Date().toISOString()} wake relay stopped\n`);
}

export async function wake(g: GlobalOptions, mac: string, o: { address: string; port: string }): Promise<void> {
  const port = Number(o.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new PeerdialError('USAGE', `--port must be 1-65535, not ${o.port}.`);
  const r = await sendWakeOnLan(mac, { address: o.address, port });
  if (g.json) return printJson({ mac, ...r });
  status(g, `magic packet for ${mac} sent to ${r.address}:${r.port}`);
}
