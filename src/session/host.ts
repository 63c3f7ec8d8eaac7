/**
 * The session host: a child process of the agent that runs real Sessions
 * (session.ts, node-datachannel) for it, so that a native crash in
 * libdatachannel (SIGSEGV, an abort from a callback) ends the calls this
 * process carried and nothing else. The agent side is remote.ts; the
 * messages are host-protocol.ts; the design is written down there.
 *
 * This file is an entry point (child_process.fork with an IPC channel and
 * `serialization: 'advanced'`), never imported. It:
 * - says `ready` once node-datachannel is loaded;
 * - makes offers and answers on request and forwards, for each session,
 *   progress, channels, messages, tracks, RTP/RTCP and its end;
 * - acknowledges each channel `send` when the real channel's send()
 *   resolves (its buffer is below the low-water mark again): the agent's
 *   backpressure is built on these acks;
 * - on `exit` closes what is left, releases node-datachannel (cleanup())
 *   and exits; when the agent goes away (the IPC channel closes) it kills
 *   itself at once: no orphan, and no native teardown that could hang;
 * - ignores SIGINT, SIGTERM and SIGHUP: Ctrl-C in the agent's terminal and
 *   `systemctl stop` signal the whole process group / cgroup, and the agent
 *   must say goodbye over the calls' channels before their sessions end. The
 *   agent ends this process (and SIGKILL does).
 */
import type { AnswerOptions, OfferOptions, SessionProgress } from './options.js';
import { shutdownSessions } from './registry.js';
import { Session } from './session.js';
import type { Channel, MediaTrack } from './types.js';
import { closeInheritedUdpSockets } from './inherited.js';
import { toWireError, type ChannelInfo, type FromHost, type PlainSessionOptions, type ToHost, type TrackInfo } from './host-protocol.js';

interface Hosted {
  ac: AbortController;
  session?: Session;
  channels: Set<number>;
  tracks: Set<number>;
}

const sessions = new Map<number, Hosted>();
const channels = new Map<number, Channel>();
const channelIds = new Map<Channel, number>();
const tracks = new Map<number, MediaTrack>();
let nextId = 0;

function post(m: FromHost): void {
  try {
    process.send!(m);
  } catch {
    // The agent is gone: 'disconnect' ends this process.
  }
}

function channelInfo(sid: number, hosted: Hosted, ch: Channel): ChannelInfo {
  let cid = channelIds.get(ch);
  if (cid === undefined) {
    const id = ++nextId;
    cid = id;
    channelIds.set(ch, id);
    channels.set(id, ch);
    hosted.channels.add(id);
    ch.onMessage((data) => post({ ev: 'message', cid: id, data }));
    ch.onClose(() => {
      post({ ev: 'channel-closed', cid: id, reason: `channel "${ch.label}" closed` });
      channels.delete(id);
      channelIds.delete(ch);
      sessions.get(sid)?.channels.delete(id);
    });
  }
  return { cid, label: ch.label, protocol: ch.protocol, maxMessageSize: ch.maxMessageSize };
}

function trackInfo(tid: number, t: MediaTrack): TrackInfo {
  return {
    tid,
    kind: t.kind,
    mid: t.mid,
    direction: t.direction,
    codec: t.codec,
    payloadType: t.payloadType,
    clockRate: t.clockRate,
    ssrc: t.ssrc,
    isOpen: t.isOpen,
  };
}

/** A session was made: forward everything it does from now on. */
function adopt(sid: number, hosted: Hosted, session: Session): void {
  hosted.session = session;
  session.onTrack((t) => {
    const tid = ++nextId;
    tracks.set(tid, t);
    hosted.tracks.add(tid);
    post({ ev: 'track', sid, track: trackInfo(tid, t) });
    t.onOpen(() => post({ ev: 'track-open', tid }));
    t.onClose((reason) => {
      post({ ev: 'track-closed', tid, reason });
      tracks.delete(tid);
    });
    t.onRtp((packet) => post({ ev: 'rtp', tid, packet }));
    t.onRtcp((packet) => post({ ev: 'rtcp', tid, packet }));
  });
  session.onChannel((ch) => post({ ev: 'channel', sid, channel: channelInfo(sid, hosted, ch) }));
  session.onClose((reason) => {
    // After any connected() rejection has been posted: the agent then sees
    // the failure's own error before the end.
    setImmediate(() => {
      post({ ev: 'closed', sid, reason });
      forget(sid);
    });
  });
}

function forget(sid: number): void {
  const hosted = sessions.get(sid);
  if (!hosted) return;
  sessions.delete(sid);
  for (const cid of hosted.channels) {
    const ch = channels.get(cid);
    if (ch) channelIds.delete(ch);
    channels.delete(cid);
  }
  for (const tid of hosted.tracks) tracks.delete(tid);
}

function make(sid: number, opts: PlainSessionOptions, offer?: string): void {
  const hosted: Hosted = { ac: new AbortController(), channels: new Set(), tracks: new Set() };
  sessions.set(sid, hosted);
  // The options are passed on as they came (options this file does not know included).
  const full = { ...opts, signal: hosted.ac.signal, onProgress: (progress: SessionProgress) => post({ ev: 'progress', sid, progress }) };
  const made = offer === undefined ? Session.createOffer(full as OfferOptions) : Session.acceptOffer(offer, full as AnswerOptions);
  made.then(
    ({ session, sdp }) => {
      if (sessions.get(sid) !== hosted) {
        session.close('closed before it was made');
        return;
      }
      adopt(sid, hosted, session);
      post({ ev: 'made', sid, sdp });
    },
    (err) => {
      sessions.delete(sid);
      post({ ev: 'make-failed', sid, error: toWireError(err) });
    },
  );
}

function handle(m: ToHost): void {
  switch (m.op) {
    case 'offer':
      return make(m.sid, m.opts);
    case 'answer':
      return make(m.sid, m.opts, m.offer);
    case 'abort':
      sessions.get(m.sid)?.ac.abort();
      return;
    case 'accept-answer': {
      const hosted = sessions.get(m.sid);
      const session = hosted?.session;
      if (!hosted || !session) return;
      try {
        session.acceptAnswer(m.sdp, m.provisional ? { provisional: true } : {});
      } catch (err) {
        post({ ev: 'answer-failed', sid: m.sid, error: toWireError(err) });
        return;
      }
      for (const tid of hosted.tracks) {
        const t = tracks.get(tid);
        if (t) post({ ev: 'direction', tid, direction: t.direction });
      }
      return;
    }
    case 'candidate':
      sessions.get(m.sid)?.session?.addRemoteCandidate(m.candidate, m.mid);
      return;
    case 'connected': {
      const hosted = sessions.get(m.sid);
      const session = hosted?.session;
      if (!hosted || !session) {
        post({ ev: 'connect-failed', req: m.req, error: { code: 'SESSION_CLOSED', message: 'the session is closed' } });
        return;
      }
      session.connected(m.timeoutMs !== undefined ? { timeoutMs: m.timeoutMs } : {}).then(
        (c) => post({ ev: 'connected', req: m.req, pair: c.pair, ms: c.ms, channel: channelInfo(m.sid, hosted, c.channel) }),
        (err) => post({ ev: 'connect-failed', req: m.req, error: toWireError(err) }),
      );
      return;
    }
    case 'open-channel': {
      const hosted = sessions.get(m.sid);
      const session = hosted?.session;
      if (!hosted || !session) {
        post({ ev: 'channel-failed', req: m.req, error: { code: 'SESSION_CLOSED', message: 'the session is closed' } });
        return;
      }
      const opts = { ...(m.protocol !== undefined ? { protocol: m.protocol } : {}), ...(m.lowWaterMark !== undefined ? { lowWaterMark: m.lowWaterMark } : {}) };
      session.openChannel(m.label, opts).then(
        (ch) => post({ ev: 'channel-opened', req: m.req, channel: channelInfo(m.sid, hosted, ch) }),
        (err) => post({ ev: 'channel-failed', req: m.req, error: toWireError(err) }),
      );
      return;
    }
    case 'close': {
      const hosted = sessions.get(m.sid);
      if (!hosted) return;
      hosted.ac.abort();
      if (hosted.session) hosted.session.close(m.reason);
      else sessions.delete(m.sid);
      return;
    }
    case 'send': {
      const ch = channels.get(m.cid);
      if (!ch) {
        post({ ev: 'send-failed', cid: m.cid, seq: m.seq, error: { code: 'SESSION_CLOSED', message: 'the channel is closed' } });
        return;
      }
      ch.send(m.data).then(
        () => post({ ev: 'sent', cid: m.cid, seq: m.seq }),
        (err) => post({ ev: 'send-failed', cid: m.cid, seq: m.seq, error: toWireError(err, 'TRANSFER_FAILED') }),
      );
      return;
    }
    case 'close-channel':
      channels.get(m.cid)?.close();
      return;
    case 'rtp':
      tracks.get(m.tid)?.sendRtp(m.packet);
      return;
    case 'keyframe':
      tracks.get(m.tid)?.requestKeyframe();
      return;
    case 'exit':
      for (const hosted of sessions.values()) hosted.session?.close('the agent released the session process');
      shutdownSessions();
      process.exit(0);
  }
}

if (!process.send) {
  process.stderr.write('the peerdial session host runs only as a child of the agent\n');
  process.exit(2);
}
// Before anything else: UDP sockets of calls in the parent are not ours (inherited.ts).
closeInheritedUdpSockets();
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
process.on('message', (m: ToHost) => handle(m));
// The agent died or closed the channel: go at once, without native teardown.
process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
post({ ev: 'ready', pid: process.pid });
