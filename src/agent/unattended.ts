/**
 * What an answered call carries when nobody sits at the terminal: files
 * into the download folder, a pipe into a file there, the camera to a
 * viewer, a voice/video call recorded, port forwards to allowed targets,
 * chat lines to the log. What a caller may do is its contact's capabilities
 * (the policy has already let the purpose through).
 */
import { Readable } from 'node:stream';
import type { Account } from './account.js';
import { channelNamed, waitEnded } from './call-waits.js';
import { abortable, closedOnAbort, onEveryTransport } from './follow-transport.js';
import type { ActiveCall } from './phone-types.js';
import type { Channel } from '../session/types.js';
import { forwardAllows } from './policy.js';
import { receiveFiles, runChat, runPipe, serveForward, allowTargets, onCarrierChannel, cappedWriter, FORWARD_PROTOCOL } from '../carriers/index.js';
import { createReceivedFile } from '../carriers/download-dir.js';
import { recordTo, type MediaSource, type SharedSource } from '../media/index.js';
import { capabilitiesOf } from '../store/contacts.js';
import { expandHome } from '../store/paths.js';

/** How long a file receiver waits for the sender's hang-up after the last file. */
const SENDER_HANGUP_GRACE_MS = 10_000;

export interface UnattendedContext {
  account: Account;
  /** The camera's encoder, shared by the viewers (camera nodes only). */
  camera: SharedSource<MediaSource> | undefined;
  /** Machine-wide bound on `forward` targets (AgentOptions.forwardAllow); undefined: the config's. */
  forwardAllow: string[] | undefined;
  /** One line of what was carried (the agent's 'carried' event). */
  say(what: string, detail: string): void;
}

/** Carries an answered call until it ends (or, for files, until the sender hangs up), then hangs up. */
export async function carryUnattended(call: ActiveCall, ctx: UnattendedContext): Promise<void> {
  const { account: acc, camera, say } = ctx;
  const dir = expandHome(acc.config.downloadDir);
  // what this caller may do here (its capabilities; the policy has let the purpose through)
  const contact = await acc.contacts.byEmail(call.peer);
  const caps = capabilitiesOf(contact);
  if (call.purpose === 'file') {
    // when the call moves to a new transport, the sender starts again there: what came is kept and resumed
    const { result: got } = await onEveryTransport(call, async (signal) => receiveFiles(closedOnAbort(await abortable(channelNamed(call, 'file'), signal), signal), { dir, signal, accept: (f) => f.size <= caps.fileMaxBytes }));
    for (const f of got) say('file', f.status === 'saved' ? `saved ${f.path}${f.renamed ? ' (renamed: a file of that name existed)' : ''}${f.resumedFrom ? `, resumed from byte ${f.resumedFrom}` : ''}` : `rejected ${f.name}: ${f.reason}`);
    // The sender ends a transfer: it hangs up once it has every verdict, so
    // both call logs say who did. Only a sender that never does is hung up on.
    await waitEnded(call, SENDER_HANGUP_GRACE_MS);
  } else if (call.purpose === 'pipe') {
    const ch = await channelNamed(call, 'pipe');
    // named from the call id, never from the peer's address (carriers/download-dir.ts)
    const { path: file, fh } = await createReceivedFile(dir, 'pipe', call.callId, '.bin');
    // the contact's size limit for unattended files holds for a pipe into a file too
    const into = cappedWriter(fh.createWriteStream(), caps.fileMaxBytes);
    try {
      const r = await runPipe(ch, Readable.from([]), into.sink, { signal: into.over });
      say('pipe', `${r.received} bytes into ${file}`);
    } catch (err) {
      if (!into.over.aborted) throw err;
      say('pipe', `stopped: more than the ${caps.fileMaxBytes} bytes ${call.peer} may send unattended; what came before the limit is in ${file}`);
    } finally {
      into.close();
    }
  } else if (call.purpose === 'view' && camera) {
    // only now, after the verified request and the policy, does the encoder run for this viewer
    const leave = await camera.join(call.session);
    say('view', `${call.peer} is watching (${camera.viewers} viewer(s))`);
    await call.ended;
    await leave();
    say('view', `${call.peer} stopped watching (${camera.viewers} left${camera.viewers === 0 ? ', encoder stopped' : ''})`);
    return;
  } else if (call.purpose === 'media') {
    // Nobody at this terminal: our camera (if any) goes out, what arrives is recorded.
    const leave = camera ? await camera.join(call.session) : undefined;
    if (!call.session.tracks().some((t) => t.direction === 'recvonly' || t.direction === 'sendrecv')) {
      // the caller sends nothing (a Delta Chat call app without a camera, say): our camera goes out, nothing to record
      say('media', `${call.peer} is watching; nothing comes from them to record`);
      await call.ended;
      await leave?.();
      return;
    }
    // ffmpeg writes into the file we created (O_EXCL|O_NOFOLLOW, 0600), never to a name of its choosing
    const { path: file, fh } = await createReceivedFile(dir, 'call', call.callId, '.mkv');
    let sink;
    try {
      sink = await recordTo(file, call.session.tracks(), { outputFd: fh.fd });
    } finally {
      await fh.close(); // the child has its own copy of the descriptor
    }
    say('media', `recording ${call.peer}'s picture and sound into ${file}`);
    await call.ended;
    const r = await sink.stop();
    await leave?.();
    say('media', `${r.stats.videoFrames} video frames, ${r.stats.audioPackets} audio packets from ${call.peer} saved in ${file}`);
    return;
  } else if (call.purpose === 'forward') {
    const machineWide = ctx.forwardAllow ?? acc.config.forwardAllow;
    const allow = forwardAllows(contact, machineWide.length ? allowTargets(machineWide) : undefined);
    const serve = (ch: Channel) => {
      if (ch.protocol === FORWARD_PROTOCOL) {
        serveForward(ch, { allow }).then(
          (r) => say('forward', `${r.host}:${r.port}: ${r.sent} bytes out, ${r.received} in`),
          (err) => say('forward', `refused or failed: ${(err as Error).message}`),
        );
      }
    };
    onCarrierChannel(call, serve);
    // on a new transport (a restart) the caller's next connections come as DataChannels of its session
    const off = call.transport?.onSwitch(() => call.session.onChannel(serve));
    await call.ended;
    off?.();
    return;
  } else {
    const ch = await channelNamed(call, 'chat');
    async function* greeting() {
      // The caller's terminal prefixes every line with our address: name nobody here.
      yield 'answered automatically; your lines are kept in its log.';
      await call.ended;
    }
    await runChat(ch, greeting(), {
      onLine: (from, text) => {
        if (from === 'remote') say('chat', `${call.peer}: ${text}`);
      },
    }).catch(() => undefined);
    await call.ended;
    return;
  }
  call.hangup();
}
