/** The implementation of the commands described in ../call.ts, loaded when one runs. */
import { createInterface } from 'node:readline';
import { constants as fsConstants, promises as fsp } from 'node:fs';
import path from 'node:path';
import type { ActiveCall } from '../../agent/phone-types.js';
import { Agent, channelNamed, waitEnded } from '../../agent/agent.js';
import { abortable, closedOnAbort, onEveryTransport } from '../../agent/follow-transport.js';
import { openAccount } from '../../api/open.js';
import { connectControl } from '../../agent/control.js';
import cliProgress from 'cli-progress';
import { PeerdialError, isPeerdialError } from '../../errors.js';
import { leaveMessage } from '../../api/messages.js';
import { defaultMediaSpec, describePath } from '../../session/index.js';
import { SharedSource, parseCameraSource, play, recordTo, startSource, type SourceOptions } from '../../media/index.js';
import { receiveFiles, runChat, runPipe, sendFiles, forwardLocal, parseForwardSpec, openCarrierChannel, settleChannel, viaOf, FORWARD_PROTOCOL, type CarrierChannel } from '../../carriers/index.js';
import { holdCall, placeCall, startCommandAgent } from './session-ui.js';
import { MailChatRouter, chatByMail } from './mail-chat.js';
import type { MailChatCall } from '../../wire/mail-chat.js';
import { printJson, safe, say, status, usedMedia, type GlobalOptions } from '../output.js';

/** Plays or records a camera's picture and sound until the call ends, Ctrl-C, or `seconds`. */
async function view(g: GlobalOptions, call: ActiveCall, record: string | undefined, seconds: number | undefined, local?: SourceOptions): Promise<void> {
  const tracks = call.session.tracks();
  if (!local && !tracks.some((t) => t.kind === 'video')) throw new PeerdialError('USAGE', `${call.peer} sent no picture.`, { hint: 'Is it a camera node? (peerdial agent --camera SOURCE)' });
  // what we send: our own source, for this call only
  const mine = local ? new SharedSource(() => startSource(local)) : undefined;
  const leave = mine ? await mine.join(call.session) : undefined;
  if (mine) status(g, `sending ${[local?.video ? 'video' : '', local?.audio ? 'sound' : ''].filter(Boolean).join(' and ')}`);
  const sink = record ? await recordTo(path.resolve(record), tracks) : await play(tracks, { title: `peerdial: ${call.peer}` });
  status(g, record ? `recording into ${record}${seconds ? ` for ${seconds} s` : ''}; Ctrl-C hangs up` : 'playing; close the window or press Ctrl-C to hang up');
  const timer = seconds ? new Promise<void>((r) => setTimeout(r, seconds * 1000).unref()) : new Promise<void>(() => undefined);
  await Promise.race([call.ended, timer, sink.exited]);
  const r = await sink.stop();
  await leave?.();
  await mine?.stop();
  status(g, `${r.stats.videoFrames} video frames and ${r.stats.audioPackets} audio packets received${record ? `, written to ${record}` : ''}`);
}

/**
 * The channel a carrier runs on: a TLS lane when the peer can reach us over
 * TCP, else a DataChannel (carriers/tls-lane.ts); the user is told which.
 * PEERDIAL_LANE=datachannel skips the lane (the bench compares both).
 */
async function carrierChannel(g: GlobalOptions, call: ActiveCall, label: string, protocol?: string): Promise<CarrierChannel['channel']> {
  const c = await openCarrierChannel(call, label, { ...(protocol ? { protocol } : {}), lane: process.env.PEERDIAL_LANE !== 'datachannel' });
  status(g, `via ${c.via}`);
  return c.channel;
}

function askLine(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  return new Promise((resolve) =>
    rl.question(question, (a) => {
      rl.close();
      resolve(a.trim());
    }),
  );
}

/**
 * Every file must exist, be a regular file and be readable before a call is
 * placed for it: a typo must not ring the peer for nothing.
 */
export async function checkFilesToSend(files: readonly string[]): Promise<void> {
  const problems: string[] = [];
  for (const f of files) {
    const st = await fsp.stat(f).catch((err: NodeJS.ErrnoException) => err);
    if (st instanceof Error) {
      problems.push(`${f}: ${st.code === 'ENOENT' ? 'no such file' : st.code === 'EACCES' ? 'permission denied' : (st.code ?? st.message)}`);
      continue;
    }
    if (!st.isFile()) {
      problems.push(`${f}: not a regular file${st.isDirectory() ? ' (a directory: send the files in it, or an archive of it)' : ''}`);
      continue;
    }
    const readable = await fsp.access(f, fsConstants.R_OK).then(() => true, () => false);
    if (!readable) problems.push(`${f}: not readable (permission denied)`);
  }
  if (problems.length > 0) {
    throw new PeerdialError('USAGE', `nothing was sent, nobody was called: ${problems.join('; ')}`, {
      hint: 'name existing, readable regular files (for a directory: tar c DIR | peerdial call WHO --pipe)',
    });
  }
}

export async function call(g: GlobalOptions, who: string, o: Record<string, any>): Promise<void> {
  const media = Boolean(o.video || o.audio);
  if ([o.pipe, o.forward, o.view, media].filter(Boolean).length > 1) throw new PeerdialError('USAGE', '--pipe, --forward, --view and --video/--audio cannot be combined.');
  if ((o.record || o.seconds) && !o.view && !media) throw new PeerdialError('USAGE', '--record and --seconds go with --view, --video or --audio.');
  const local = media ? parseCameraSource(o.source ?? 'v4l2:/dev/video0', o.sourceAudio ?? (o.source === 'test' ? 'test' : 'pulse')) : undefined;
  if (local && !o.video) delete local.video;
  if (local && !o.audio) delete local.audio;
  const fwd = o.forward ? parseForwardSpec(o.forward) : undefined;
  // a chat call that finds no path goes on by mail (mail-chat.ts): the peer's chat mails come through here
  const router = new MailChatRouter();
  const agent = await startCommandAgent(g, { onEvent: router.onEvent });
  try {
    const purpose = o.pipe ? 'pipe' : fwd ? 'forward' : o.view ? 'view' : media ? 'media' : 'chat';
    let call;
    try {
      call = await placeCall(g, agent, who, purpose, {
        ...(o.ringSeconds ? { ringSeconds: Number(o.ringSeconds) } : {}),
        ...(o.plain ? { plain: true } : {}),
        ...(o.view ? { media: defaultMediaSpec({ video: true, audio: true }, 'recvonly') } : {}),
        ...(media ? { media: defaultMediaSpec({ video: Boolean(o.video), audio: Boolean(o.audio) }, 'sendrecv') } : {}),
      });
    } catch (err) {
      if (!isPeerdialError(err) || !['CALL_TIMEOUT', 'CALL_DECLINED', 'CALL_BUSY', 'SESSION_FAILED'].includes(err.code)) throw err;
      const failed = router.lastOut;
      if (err.code === 'SESSION_FAILED' && purpose === 'chat' && !o.message && failed && !agent.viaRunningAgent) {
        // No path at all: the chat goes on by mail instead of ending.
        status(g, err.message);
        await chatByMail(g, agent, router, failed, { downloadDir: agent.account.config.downloadDir });
        return;
      }
      if (err.code === 'SESSION_FAILED' && purpose === 'chat' && agent.viaRunningAgent) {
        status(g, 'beside a running agent the chat does not go on by mail (the agent reads the mailbox); stop it, or leave a message (peerdial message)');
      }
      // Not answered: a message by mail instead, when one was given (or typed).
      const text = o.message ?? (process.stdin.isTTY && !o.pipe ? await askLine(`${err.message} Leave a message (Enter to skip): `) : '');
      if (text) {
        await agent.stop();
        const r = await leaveMessage(agent.account, who, { text });
        status(g, r.sent ? `message sent to ${r.to}` : `message queued for ${r.to}`);
      }
      throw err;
    }
    await holdCall(g, call, async () => {
      if (o.view || media) {
        usedMedia();
        await view(g, call, o.record, o.seconds ? Number(o.seconds) : undefined, local);
      } else if (o.pipe) {
        const ch = await carrierChannel(g, call, 'pipe');
        const r = await runPipe(ch, process.stdin, process.stdout, { endOutput: false });
        // everything sent has been read by the peer before the hang-up
        await settleChannel(ch);
        status(g, `pipe closed: ${r.sent} bytes sent, ${r.received} received`);
      } else if (fwd) {
        let n = 0;
        const server = await forwardLocal({
          listenPort: fwd.listenPort,
          ...(fwd.listenHost ? { listenHost: fwd.listenHost } : {}),
          targetHost: fwd.host,
          targetPort: fwd.port,
          openStream: () => carrierChannel(g, call, `forward-${++n}`, FORWARD_PROTOCOL),
          onConnectionEnd: (e) => status(g, `forward connection from ${e.from} ended: ${e.sent} bytes out, ${e.received} in${e.error ? ` (${e.error.message})` : ''}`),
        });
        status(g, `forwarding ${server.host}:${server.port} -> ${fwd.host}:${fwd.port} on ${call.peer}'s side; Ctrl-C hangs up`);
        await call.ended;
        await server.close();
      } else {
        const ch = await call.session.openChannel('chat');
        const rl = createInterface({ input: process.stdin, terminal: false });
        status(g, 'type a line and press Enter; Ctrl-D or Ctrl-C hangs up');
        const r = await runChat(ch, rl, {
          onLine: (from, text) => {
            if (from === 'remote') say(`${safe(call.peer)}: ${safe(text, 16 * 1024)}`);
          },
        });
        rl.close();
        status(g, r.ended === 'remote-bye' ? `${call.peer} hung up` : 'hung up');
      }
    });
  } finally {
    await agent.stop();
  }
}

export async function send(g: GlobalOptions, who: string, files: string[]): Promise<void> {
  await checkFilesToSend(files);
  const agent = await startCommandAgent(g);
  try {
    const call = await placeCall(g, agent, who, 'file');
    const bar = !g.quiet && process.stderr.isTTY
      ? new cliProgress.SingleBar({ format: '{file} [{bar}] {percentage}% {value}/{total} B {rate} MB/s ETA {eta_formatted}', stream: process.stderr }, cliProgress.Presets.shades_classic)
      : undefined;
    let current = '';
    await holdCall(g, call, async () => {
      // when the call moves to a new transport (an address changed), the transfer starts again there and resumes
      const { result: sent } = await onEveryTransport(call, async (signal) => {
        const ch = closedOnAbort(await abortable(carrierChannel(g, call, 'file'), signal), signal);
        current = '';
        const sent = await sendFiles(ch, files, {
          signal,
          onProgress: (p) => {
            if (p.file !== current) {
              bar?.stop();
              current = p.file;
              bar?.start(p.total, p.bytes, { file: p.file, rate: '0.0' });
            }
            bar?.update(p.bytes, { rate: (p.rate / 1e6).toFixed(1) });
          },
        });
        await settleChannel(ch);
        return sent;
      });
      bar?.stop();
      if (g.json) printJson(sent);
      else for (const s of sent) say(s.status === 'sent' ? `sent ${safe(s.name)} (${s.size} bytes, sha256 ${s.sha256.slice(0, 16)}...)${s.resumedFrom ? `, resumed at byte ${s.resumedFrom}` : ''}${s.savedAs && s.savedAs !== s.name ? `; saved as "${safe(s.savedAs)}"` : ''}` : `REFUSED ${safe(s.name)}: ${safe(s.reason)}`);
      if (sent.some((s) => s.status !== 'sent')) process.exitCode = 1;
    }).finally(() => bar?.stop());
  } finally {
    await agent.stop();
  }
}

export async function listen(g: GlobalOptions, o: Record<string, any>): Promise<void> {
  let resolveCall!: (c: ActiveCall) => void;
  const got = new Promise<ActiveCall>((r) => (resolveCall = r));
  // A chat call that finds no path goes on by mail. The caller decides (its connect wait is the shorter):
  // its `mail-chat-open` for the call being answered here opens the chat by mail here too.
  const router = new MailChatRouter();
  let resolveByMail!: (c: MailChatCall) => void;
  const byMail = new Promise<MailChatCall>((r) => (resolveByMail = r));
  router.onPeerOpen = (c) => resolveByMail(c);
  const account = await openAccount(g);
  // Beside a running agent, the agent hands the next allowed offer to this listener.
  const running = await connectControl(account.stateDir);
  if (running) status(g, `the running agent of ${running.email} (pid ${running.pid}) hands the next call to this terminal`);
  const agent = new Agent({
    account,
    forceAnswer: true,
    ...(running ? { control: running } : {}),
    onIncoming: async (call) => {
      resolveCall(call);
      await call.ended;
    },
    onEvent: (e) => {
      if (!running && !o.pipe) router.onEvent(e);
      if (e.type === 'ringing') e.call.accept();
      if (e.type === 'mail-rejected') status(g, `ignored a mail from ${e.from ? safe(e.from) : 'somebody'}: ${safe(e.reason)}`);
      if (e.type === 'state' && e.direction === 'in' && e.state === 'offer-received') status(g, `call from ${safe(e.peer)}...`);
    },
  });
  agent.start();
  status(g, `waiting for a call to ${account.email} (Ctrl-C stops)...`);
  const stop = new Promise<'stop'>((r) => process.once('SIGINT', () => r('stop')));
  try {
    const call = await Promise.race([got, stop, byMail.then((c) => ({ byMail: c }))]);
    if (call === 'stop') return;
    if ('byMail' in call) {
      const how = await chatByMail(g, agent, router, call.byMail, { downloadDir: path.resolve(o.dir) });
      if (how === 'peer-left') status(g, 'chat ended');
      return;
    }
    status(g, `connected to ${call.peer} via ${call.pair.local} <-> ${call.pair.remote}, ${describePath(call.pair)}`);
    await holdCall(g, call, async () => {
      if (o.pipe && call.purpose !== 'pipe') status(g, `note: ${call.peer} called for ${call.purpose}, not a pipe`);
      const ch = await channelNamed(call, call.purpose);
      status(g, `via ${viaOf(ch)}`);
      if (call.purpose === 'pipe') {
        const r = await runPipe(ch, process.stdin, process.stdout, { endOutput: false });
        status(g, `pipe closed: ${r.sent} bytes sent, ${r.received} received`);
      } else if (call.purpose === 'file') {
        const got = await receiveFiles(ch, { dir: path.resolve(o.dir) });
        for (const f of got) say(f.status === 'saved' ? `saved ${safe(f.path, 4096)}` : `refused ${safe(f.name)}: ${safe(f.reason)}`);
        // The sender ends the call once it has every verdict (both logs then agree who hung up).
        await waitEnded(call, 10_000);
      } else {
        const rl = createInterface({ input: process.stdin, terminal: false });
        await runChat(ch, rl, { onLine: (from, text) => from === 'remote' && say(`${safe(call.peer)}: ${safe(text, 16 * 1024)}`) });
        rl.close();
      }
    });
  } finally {
    await agent.stop();
  }
}
