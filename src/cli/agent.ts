import { spawn } from 'node:child_process';
import { Option, type Command } from 'commander';
import { openAccount } from '../api/open.js';
import { Agent, type AgentEvent } from '../agent/agent.js';
import { checkInbox } from '../api/mail.js';
import { parseCameraSource } from '../media/index.js';
import { printJson, usedMedia, type GlobalOptions } from './output.js';
import { Link, type LinkEvent } from '../link/hooks.js';
import { PeerdialError } from '../errors.js';

/** One line per event, for the journal or a terminal; JSON with --json. */
export function describeEvent(e: AgentEvent): string | undefined {
  switch (e.type) {
    case 'connected':
      if ('call' in e) return `call ${e.call.callId} ${e.call.direction === 'in' ? 'from' : 'to'} ${e.call.peer}: connected via ${e.call.pair.local} <-> ${e.call.pair.remote} in ${e.call.setupMs} ms`;
      return `mailbox connected (${e.idle ? 'IDLE' : 'polling'})`;
    case 'state':
      return `call ${e.callId} ${e.direction === 'in' ? 'from' : 'to'} ${e.peer}: ${e.state}`;
    case 'ended':
      return `call ${e.callId} ${e.direction === 'in' ? 'from' : 'to'} ${e.peer}: ended ${e.state}${e.detail ? ` (${e.detail})` : ''}`;
    case 'ringing':
      return `call ${e.call.callId} from ${e.call.peer} is ringing (peerdial answer ${e.call.callId} / peerdial decline ${e.call.callId})`;
    case 'mail-rejected':
      return `mail from ${e.from ?? 'unknown'} rejected: ${e.reason}: ${e.detail}`;
    case 'message':
      return `${e.message.kind} from ${e.message.from}${e.message.text ? `: ${e.message.text}` : ''}`;
    case 'address-changed':
      return `addresses changed: ${e.addresses.join(', ') || 'none'}${e.announcedTo.length ? `; announced to ${e.announcedTo.join(', ')}` : ''}${e.notAnnounced?.length ? `; not announced to ${e.notAnnounced.join(', ')}: no key of theirs here, and addresses go only encrypted (exchange keys: peerdial invite, or peerdial contacts add NAME EMAIL --key FILE)` : ''}`;
    case 'carried':
      return `call ${e.callId}: ${e.what}: ${e.detail}`;
    case 'disconnected':
      return `mailbox connection lost (${e.error.message}); retrying in ${Math.round(e.retryInMs / 1000)} s`;
    case 'sent':
      return `sent ${e.kind} to ${e.to.join(', ')}`;
    case 'send-retry':
      return `could not send to ${e.to.join(', ')} (${e.error.message}); retrying in ${Math.round(e.retryInMs / 1000)} s`;
    case 'send-failed':
      return `mail to ${e.to.join(', ')} refused: ${e.error.message}`;
    case 'error':
      return `error: ${e.error.message}`;
    default:
      return undefined;
  }
}

function jsonEvent(e: AgentEvent): unknown {
  if (e.type === 'connected' && 'call' in e) return { type: e.type, callId: e.call.callId, direction: e.call.direction, peer: e.call.peer, pair: e.call.pair, setupMs: e.call.setupMs };
  if (e.type === 'ringing') return { type: e.type, callId: e.call.callId, peer: e.call.peer };
  if ('error' in e && e.error instanceof Error) return { ...e, error: e.error.message };
  return e;
}

/** A call rings: terminal bell, and a desktop notification when notify-send (Linux) or osascript (macOS) is there. */
function ring(peer: string, callId: string): void {
  if (process.stdout.isTTY) process.stdout.write('\x07');
  const text = `${peer} is calling. Answer: peerdial answer ${callId}   Decline: peerdial decline ${callId}`;
  const cmd = process.platform === 'darwin' ? ['osascript', ['-e', `display notification ${JSON.stringify(text)} with title "peerdial"`]] : ['notify-send', ['--app-name=peerdial', 'Incoming call', text]];
  try {
    const child = spawn(cmd[0] as string, cmd[1] as string[], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined); // no notifier on this machine: the log line says it
    child.unref();
  } catch {
    // ignore
  }
}

export function register(program: Command, globals: () => GlobalOptions): void {
  program
    .command('agent')
    .description('run the agent: watch the mailbox, answer calls by policy, send queued mail (as a service, or in a terminal)')
    .option('--once', 'check the mailbox once, list what arrived, and exit')
    .option('--camera <source>', 'be a camera node: allowed `peerdial call ME --view` callers get test | v4l2:/dev/video0 | file:PATH')
    .option('--camera-audio <source>', 'the camera\'s sound: test | alsa[:DEVICE] | pulse[:DEVICE] | none')
    .option('--poll <minutes>', 'poll mode: every N minutes bring the link up, check mail once, bring it down (default: link.poll_minutes)')
    .addOption(new Option('--log-format <format>', 'log lines: text, or json (one object per line, same as --json)').choices(['text', 'json']).default('text'))
    .addHelpText('after', `
The agent logs one line per event to stdout (--json: one JSON object per line).
It stops cleanly on SIGTERM or Ctrl-C: ringing calls are cancelled, calls hung up,
queued mail is sent first.`)
    .action(async (o) => {
      const g = o.logFormat === 'json' ? { ...globals(), json: true } : globals();
      const account = await openAccount(g);
      const linkLog = (e: LinkEvent) => {
        const line = e.type === 'link-failed' ? `link ${e.direction} failed: ${e.error.message}` : `${e.type === 'link-up' ? 'link up' : 'link down'}${e.command ? ` (${e.command}, ${e.ms} ms)` : ''}`;
        if (g.json) process.stdout.write(JSON.stringify({ at: new Date().toISOString(), type: e.type, ...(e.type === 'link-failed' ? { direction: e.direction, error: e.error.message } : { command: e.command, ms: e.ms }) }) + '\n');
        else process.stdout.write(`${new Date().toISOString()} ${line}\n`);
      };
      const link = new Link(account.config, linkLog);
      const pollMinutes = o.poll !== undefined ? Number(o.poll) : account.config.link?.pollMinutes ?? 0;
      if (!Number.isFinite(pollMinutes) || pollMinutes < 0) throw new PeerdialError('USAGE', `--poll wants minutes (a number), not "${o.poll}".`);
      if (o.once) {
        if (link.configured) await link.up();
        const r = await checkInbox(account).finally(() => link.configured && link.down());
        if (g.json) return printJson(r);
        console.log(`checked ${account.email}: ${r.items.length} peerdial mail(s)`);
        for (const i of r.items) console.log(i.ok ? `${i.from} ${i.kind}` : `${i.from ?? 'unknown'} rejected: ${i.reason}`);
        return;
      }
      const log = (e: AgentEvent) => {
        if (e.type === 'ringing') ring(e.call.peer, e.call.callId);
        if (e.type === 'idle' || e.type === 'checked' || e.type === 'connecting') return;
        if (g.json) {
          process.stdout.write(JSON.stringify({ at: new Date().toISOString(), ...(jsonEvent(e) as object) }) + '\n');
          return;
        }
        const line = describeEvent(e);
        if (line) process.stdout.write(`${new Date().toISOString()} ${line}\n`);
      };
      const withLink = link.configured || pollMinutes ? { link: { hooks: link, ...(pollMinutes ? { pollMinutes } : {}) } } : {};
      const camera = o.camera ? parseCameraSource(o.camera, o.cameraAudio) : undefined;
      if (camera) usedMedia();
      const agent = new Agent({ account, onEvent: log, control: 'serve', addressWatch: {}, ...(camera ? { camera } : {}), ...withLink });
      await agent.serveControl();
      // Watching needs the link all the time; poll mode brings it up for each round only.
      if (link.configured && !pollMinutes) {
        await link.up().catch(async (err) => {
          await agent.stop();
          throw err;
        });
      }
      agent.start();
      process.stdout.write(`${new Date().toISOString()} agent for ${account.email} started (who may call: ${account.config.whoMayCall}, answer: ${account.config.answer})\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      process.stdout.write(`${new Date().toISOString()} stopping: cancelling ringing calls, hanging up, flushing the outbox...\n`);
      await agent.stop();
      process.stdout.write(`${new Date().toISOString()} stopped\n`);
    });
}
