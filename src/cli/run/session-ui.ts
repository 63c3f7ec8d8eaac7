/** Shared by the commands that hold a call in the terminal: progress lines, Ctrl-C, the agent around the call. */
import { openAccount } from '../../api/open.js';
import { Agent, type AgentEvent } from '../../agent/agent.js';
import type { ActiveCall, CallOptions, Purpose } from '../../agent/phone-types.js';
import { status, type GlobalOptions } from '../output.js';
import { connectControl } from '../../agent/control.js';
import { Link } from '../../link/hooks.js';
import { describePath } from '../../session/relay.js';

const STATE_LINES: Record<string, string> = {
  gathering: 'gathering addresses...',
  'offer-queued': 'offer queued...',
  'offer-sent': 'offer sent by mail; ringing...',
  connecting: 'answer received; connecting...',
  'connecting-one-mail': 'one-mail call: their standing answer is applied, the offer goes by mail; connecting as soon as it arrives...',
};

/** Starts a private agent for this command (refusing other incoming calls as busy). */
export async function startCommandAgent(g: GlobalOptions, opts: { forceAnswer?: boolean; onEvent?: (e: AgentEvent) => void } = {}): Promise<Agent> {
  const account = await openAccount(g);
  // A running agent owns the mailbox: place the call through it instead of racing it.
  const running = opts.forceAnswer ? undefined : await connectControl(account.stateDir);
  if (running) status(g, `using the running agent of ${running.email} (pid ${running.pid})`);
  // Without a running agent this command owns the link: up before the mailbox and the offer, down when it stops (after hang-up).
  const link = running ? undefined : new Link(account.config, (e) => e.type === 'link-up' && e.command && status(g, `link up (${e.command}, ${e.ms} ms)`));
  if (link?.configured) await link.up();
  const agent = new Agent({
    account,
    ...(running ? { control: running } : {}),
    ...(link?.configured ? { link: { hooks: link } } : {}),
    ...(opts.forceAnswer ? { forceAnswer: true } : { refuseIncoming: true }),
    onEvent: (e) => {
      if (e.type === 'disconnected') status(g, `mailbox connection lost (${e.error.message}); retrying in ${Math.round(e.retryInMs / 1000)} s...`);
      if (e.type === 'send-retry') status(g, `mail not sent yet (${e.error.message}); retrying in ${Math.round(e.retryInMs / 1000)} s...`);
      if (e.type === 'send-failed') status(g, `mail refused: ${e.error.message}`);
      // the call's address changed (or its transport died): reconnecting..., reconnected via ... in ... s
      if (e.type === 'reconnect') status(g, e.text);
      opts.onEvent?.(e);
    },
  });
  agent.start();
  return agent;
}

/** Places a call with progress lines; Ctrl-C or SIGTERM while it rings cancels it (a cancel mail goes out). */
export async function placeCall(g: GlobalOptions, agent: Agent, who: string, purpose: Purpose, extra: Partial<CallOptions> = {}): Promise<ActiveCall> {
  const ac = new AbortController();
  const onSigint = () => {
    status(g, '\ncancelling...');
    ac.abort();
  };
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigint);
  const started = Date.now();
  const ticker = setInterval(() => {
    if (!g.quiet && process.stderr.isTTY) process.stderr.write(`\r  waiting ${Math.round((Date.now() - started) / 1000)} s (Ctrl-C cancels)`);
  }, 1000);
  ticker.unref();
  try {
    status(g, `calling ${who}...`);
    const call = await agent.call(who, {
      purpose,
      signal: ac.signal,
      onProgress: (p) => {
        const line = STATE_LINES[p.state];
        if (line) {
          if (process.stderr.isTTY && !g.quiet) process.stderr.write('\r\x1b[K');
          status(g, line);
        }
      },
      ...extra,
    });
    if (process.stderr.isTTY && !g.quiet) process.stderr.write('\r\x1b[K');
    status(g, `connected to ${call.peer} via ${call.pair.local} <-> ${call.pair.remote} in ${call.setupMs} ms, ${describePath(call.pair)}`);
    return call;
  } finally {
    clearInterval(ticker);
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}

/** Ctrl-C (or SIGTERM) during a connected call hangs up: the bye goes over the channel. */
export function hangupOnSigint(g: GlobalOptions, call: ActiveCall): () => void {
  const onSigint = () => {
    status(g, '\nhanging up...');
    call.hangup();
  };
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigint);
  return () => {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  };
}

/** Runs what a connected call carries; Ctrl-C hangs up; the call is hung up and ended afterwards, whatever happened. */
export async function holdCall(g: GlobalOptions, call: ActiveCall, carry: () => Promise<void>): Promise<void> {
  const unhook = hangupOnSigint(g, call);
  try {
    await carry();
  } finally {
    unhook();
    call.hangup();
    await call.ended;
  }
}
