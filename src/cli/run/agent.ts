/** The implementation of the commands described in ../agent.ts, loaded when one runs. */
import { spawn } from 'node:child_process';
import { openAccount } from '../../api/open.js';
import { Agent, type AgentEvent } from '../../agent/agent.js';
import { checkInbox } from '../../api/mail.js';
import { agentOrAlone } from '../../agent/control.js';
import { DESK, type DeskInbox } from '../../agent/desk.js';
import { parseCameraSource } from '../../media/index.js';
import { printJson, safe, say, usedMedia, type GlobalOptions } from '../output.js';
import { safeJson, sanitizeBlock } from '../../wire/sanitize.js';
import { idArgument } from '../../wire/ids.js';
import { StrangerLines, countStranger, describeStrangers, type StrangerTally } from '../../store/strangers.js';
import { Link, type LinkEvent } from '../../link/hooks.js';
import { PeerdialError } from '../../errors.js';
import { callPath, describePath } from '../../session/relay.js';
import { startPageServer, type PageServer } from '../../web/server.js';

/** One line per event, for the journal or a terminal; JSON with --json. Every field from mail or a peer is sanitised. */
export function describeEvent(e: AgentEvent): string | undefined {
  switch (e.type) {
    case 'connected':
      if ('call' in e) return `call ${safe(e.call.callId)} ${e.call.direction === 'in' ? 'from' : 'to'} ${safe(e.call.peer)}: connected via ${safe(e.call.pair.local)} <-> ${safe(e.call.pair.remote)} in ${e.call.setupMs} ms, ${safe(describePath(e.call.pair))}`;
      return `mailbox connected (${e.idle ? 'IDLE' : 'polling'})`;
    case 'state':
      return `call ${safe(e.callId)} ${e.direction === 'in' ? 'from' : 'to'} ${safe(e.peer)}: ${safe(e.state)}`;
    case 'ended':
      return `call ${safe(e.callId)} ${e.direction === 'in' ? 'from' : 'to'} ${safe(e.peer)}: ended ${safe(e.state)}${e.detail ? ` (${safe(e.detail)})` : ''}`;
    case 'reconnect':
      return `call ${safe(e.callId)} ${e.direction === 'in' ? 'from' : 'to'} ${safe(e.peer)}: ${safe(e.text)}`;
    case 'ringing':
      return `call ${safe(e.call.callId)} from ${safe(e.call.peer)} is ringing${e.call.trust === 'learned' ? ' [new key, learned from their mail: not introduced]' : ''} (peerdial answer ${safe(idArgument(e.call.callId))} / peerdial decline ${safe(idArgument(e.call.callId))})`;
    case 'mail-rejected':
      return `mail from ${e.from ? safe(e.from) : 'unknown'} rejected: ${safe(e.reason)}: ${safe(e.detail)}`;
    case 'message':
      if (e.message.kind === 'introduce') return `${safe(e.message.from)} joined your invite: now an introduced contact (peerdial contacts show ${safe(e.message.from)})`;
      if (e.message.kind === 'introduced') return `${safe(e.message.from)} confirmed the introduction: their key is introduced`;
      return `${safe(e.message.kind)} from ${safe(e.message.from)}${e.message.text ? `: ${safe(e.message.text, 2000)}` : ''}`;
    case 'address-changed':
      return `addresses changed: ${safe(e.addresses.join(', ')) || 'none'}${e.announcedTo.length ? `; announced to ${safe(e.announcedTo.join(', '))}` : ''}${e.notAnnounced?.length ? `; not announced to ${safe(e.notAnnounced.join(', '))}: no key of theirs here, and addresses go only encrypted (exchange keys: peerdial invite, or peerdial contacts add NAME EMAIL --key FILE)` : ''}`;
    case 'carried':
      return `call ${safe(e.callId)}: ${safe(e.what)}: ${safe(e.detail)}`;
    case 'group':
      return `group ${safe(e.groupId)}: ${safe(e.detail, 2000)}`;
    case 'disconnected':
      return `mailbox connection lost (${safe(e.error.message)}); retrying in ${Math.round(e.retryInMs / 1000)} s`;
    case 'sent':
      return `sent ${safe(e.kind)} to ${safe(e.to.join(', '))}`;
    case 'send-retry':
      return `could not send to ${safe(e.to.join(', '))} (${safe(e.error.message)}); retrying in ${Math.round(e.retryInMs / 1000)} s`;
    case 'send-failed':
      return `mail to ${safe(e.to.join(', '))} refused: ${safe(e.error.message)}`;
    case 'session-crashed':
      return `call ${safe(e.callId)} ${e.direction === 'in' ? 'from' : 'to'} ${safe(e.peer)}: ended by a crash of its session process: ${safe(e.detail)}`;
    case 'session-process-crashed':
      return `${e.reason}, carrying ${e.sessions} session(s); the agent goes on, the next call starts a fresh session process`;
    case 'error':
      return `error: ${safe(e.error.message)}`;
    case 'control-request':
      return `${safe(e.name)}: asked by a command beside the agent`;
    case 'chat-mail':
      if (e.result.verified) return `Delta Chat SecureJoin with ${safe(e.result.verified.email)}: ${safe(e.result.step ?? '')}: ${safe(e.result.detail)}`;
      return `Delta Chat mail from ${safe(e.result.from ?? 'unknown')}${e.result.step ? ` (${safe(e.result.step)})` : ''}: ${e.result.handled ? '' : 'left alone: '}${safe(e.result.detail)}`;
    default:
      return undefined;
  }
}

function jsonEvent(e: AgentEvent): unknown {
  if (e.type === 'connected' && 'call' in e) return { type: e.type, callId: e.call.callId, direction: e.call.direction, peer: e.call.peer, pair: e.call.pair, path: callPath(e.call.pair), setupMs: e.call.setupMs };
  if (e.type === 'ringing') return { type: e.type, callId: e.call.callId, peer: e.call.peer, trust: e.call.trust };
  if ('error' in e && e.error instanceof Error) return { ...e, error: e.error.message };
  return e;
}

/** A call rings: terminal bell, and a desktop notification when notify-send (Linux) or osascript (macOS) is there. */
function ring(peer: string, callId: string): void {
  if (process.stdout.isTTY) process.stdout.write('\x07');
  const text = `${safe(peer, 120)} is calling. Answer: peerdial answer ${safe(idArgument(callId), 130)}   Decline: peerdial decline ${safe(idArgument(callId), 130)}`;
  const cmd = process.platform === 'darwin' ? ['osascript', ['-e', `display notification ${JSON.stringify(text)} with title "peerdial"`]] : ['notify-send', ['--app-name=peerdial', 'Incoming call', text]];
  try {
    const child = spawn(cmd[0] as string, cmd[1] as string[], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined); // no notifier on this machine: the log line says it
    child.unref();
  } catch {
    // ignore
  }
}

export async function agent(given: GlobalOptions, o: Record<string, any>): Promise<void> {
  const g = o.logFormat === 'json' ? { ...given, json: true } : given;
  const account = await openAccount(g);
  const linkLog = (e: LinkEvent) => {
    const line = e.type === 'link-failed' ? `link ${e.direction} failed: ${e.error.message}` : `${e.type === 'link-up' ? 'link up' : 'link down'}${e.command ? ` (${e.command}, ${e.ms} ms)` : ''}`;
    if (g.json) process.stdout.write(safeJson({ at: new Date().toISOString(), type: e.type, ...(e.type === 'link-failed' ? { direction: e.direction, error: e.error.message } : { command: e.command, ms: e.ms }) }) + '\n');
    else process.stdout.write(`${new Date().toISOString()} ${sanitizeBlock(line)}\n`);
  };
  const link = new Link(account.config, linkLog);
  const pollMinutes = o.poll !== undefined ? Number(o.poll) : account.config.link?.pollMinutes ?? 0;
  if (!Number.isFinite(pollMinutes) || pollMinutes < 0) throw new PeerdialError('USAGE', `--poll wants minutes (a number), not "${o.poll}".`);
  if (o.once) {
    if (link.configured) await link.up();
    // beside a running agent of this account, that agent checks: one process consumes the mailbox
    const r = await agentOrAlone(account.stateDir, async (a) => (await a.request(DESK.inbox)) as DeskInbox, () => checkInbox(account)).finally(() => link.configured && link.down());
    if (g.json) return printJson(r);
    say(`checked ${account.email}: ${r.items.length} peerdial mail(s)`);
    for (const i of r.items) if (i.ok || !i.stranger) say(i.ok ? `${safe(i.from)} ${safe(i.kind)}` : `${i.from ? safe(i.from) : 'unknown'} rejected: ${safe(i.reason)}`);
    let tally: StrangerTally | undefined;
    for (const i of r.items) if (!i.ok && i.stranger) tally = countStranger(tally, new Date(), i.from, i.reason ?? 'malformed');
    if (tally) say(describeStrangers(tally, new Date(), { since: false }));
    return;
  }
  const strangers = new StrangerLines();
  const writeSummary = (): void => {
    const s = strangers.flush(new Date());
    if (!s) return;
    if (g.json) process.stdout.write(safeJson({ at: new Date().toISOString(), type: 'strangers-ignored', ...s.tally }) + '\n');
    else process.stdout.write(`${new Date().toISOString()} ${sanitizeBlock(s.line)}\n`);
  };
  // a timer only while strangers' mail is counted, for the window's end: an idle agent keeps none
  let summaries: NodeJS.Timeout | undefined;
  const summaryLater = (): void => {
    const due = strangers.summaryDue();
    if (!due || summaries) return;
    summaries = setTimeout(() => {
      summaries = undefined;
      writeSummary();
    }, Math.max(0, due.getTime() - Date.now()));
    summaries.unref();
  };
  const log = (e: AgentEvent) => {
    if (e.type === 'ringing') ring(e.call.peer, e.call.callId);
    if (e.type === 'idle' || e.type === 'checked' || e.type === 'connecting') return;
    if (e.type === 'mail-rejected' && e.stranger) {
      const first = strangers.note(e, new Date());
      if (!first) return summaryLater();
      if (!g.json) {
        process.stdout.write(`${new Date().toISOString()} ${sanitizeBlock(first)}\n`);
        return;
      }
    }
    if (g.json) {
      process.stdout.write(safeJson({ at: new Date().toISOString(), ...(jsonEvent(e) as object) }) + '\n');
      return;
    }
    const line = describeEvent(e);
    if (line) process.stdout.write(`${new Date().toISOString()} ${sanitizeBlock(line)}\n`);
  };
  const withLink = link.configured || pollMinutes ? { link: { hooks: link, ...(pollMinutes ? { pollMinutes } : {}) } } : {};
  const camera = o.camera ? parseCameraSource(o.camera, o.cameraAudio) : undefined;
  if (camera) usedMedia();
  // The web page lives in this process (src/web/): from the start with --web / [web] enable, or when `peerdial web` asks.
  let page: PageServer | undefined;
  let pageStarting: Promise<PageServer> | undefined;
  const startPage = (port: number | undefined, showToken: boolean): Promise<PageServer> =>
    (pageStarting ??= startPageServer({
      agent,
      port: port ?? o.webPort ?? account.config.web?.port ?? 0,
      // the tab's own WebRTC calls: the agent mails their descriptions (agent/browser-calls.ts)
      browserCalls: agent.browserCalls,
    }).then((p) => {
      page = p;
      // the token goes to the terminal that asked, not into a service's journal
      const where = showToken ? p.url : `http://127.0.0.1:${p.port}/ (peerdial web prints the address with its token)`;
      if (g.json) process.stdout.write(safeJson({ at: new Date().toISOString(), type: 'web-page', ...(showToken ? { url: p.url } : { port: p.port }) }) + '\n');
      else process.stdout.write(`${new Date().toISOString()} web page: ${where}\n`);
      return p;
    }));
  const agent = new Agent({
    account,
    onEvent: (e) => {
      log(e);
      page?.agentEvent(e);
    },
    control: 'serve',
    addressWatch: {},
    ...(camera ? { camera } : {}),
    ...withLink,
    carryElsewhere: (call) => page?.carry(call),
    moreRequests: {
      web: async (a) => {
        const p = await startPage(typeof a.port === 'number' ? a.port : undefined, false);
        return { url: p.url, port: p.port };
      },
    },
  });
  // No control socket, no agent: one nobody can reach would look up and do nothing.
  await agent.serveControl().catch(async (err) => {
    await agent.stop().catch(() => undefined);
    throw err;
  });
  // Watching needs the link all the time; poll mode brings it up for each round only.
  if (link.configured && !pollMinutes) {
    await link.up().catch(async (err) => {
      await agent.stop();
      throw err;
    });
  }
  agent.start();
  if (o.web || account.config.web?.enable) {
    await startPage(undefined, !!o.web).catch(async (err) => {
      await agent.stop();
      throw err;
    });
  }
  process.stdout.write(`${new Date().toISOString()} agent for ${account.email} started (who may call: ${account.config.whoMayCall}, answer: ${account.config.answer})\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  process.stdout.write(`${new Date().toISOString()} stopping: cancelling ringing calls, hanging up, flushing the outbox...\n`);
  clearTimeout(summaries);
  writeSummary();
  await page?.close();
  await agent.stop();
  process.stdout.write(`${new Date().toISOString()} stopped\n`);
}
