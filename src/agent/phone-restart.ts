/**
 * A connected call's restarts, as the phone (phone.ts) wires them: the
 * runtime of restart-call.ts given the call's real edges. A new transport
 * is a new session on the call's certificate (the phone's sessions, ICE
 * settings as for the first one); an update goes over the call's control
 * channel or into the outbox as a signed, encrypted `update` mail; once the
 * new transport is connected the call's record and its ActiveCall move to
 * it (session, control channel, pair, the peer's description), carriers
 * that follow it are told (ActiveCall.transport, follow-transport.ts), and
 * the old session is closed. The call log gets the restart line, the
 * phone's listener the lines the user sees (`reconnect` events).
 */
import type { CallSession, Connected } from '../session/index.js';
import { CallRestart, controlPathUsable, restartLogEntry, type NewTransport } from './restart-call.js';
import type { AnyRecord, OutgoingRecord } from './call-record.js';
import { callCertificate, pemFiles } from './call-certificate-files.js';
import { hookControl, iceFor, watchSession } from './phone-session.js';
import type { PhoneParts } from './phone-parts.js';
import type { CallTransport } from './phone-types.js';
import { isAnnounceable } from '../address/classify.js';
import type { DetectedAddress } from '../address/interfaces.js';

/** How long an update mail is good for: as long as one restart may take (restart-call.ts). */
const UPDATE_TTL_SECONDS = 180;

interface Made {
  session: CallSession;
  c: Connected;
  peerSdp: string;
}

/**
 * This machine's addresses changed (the address watcher): every connected
 * call that can restart gets a new transport; with no usable address left,
 * its restart waits for the next one. Returns the usable addresses.
 */
export function restartOnAddressChange(calls: Iterable<AnyRecord>, now: readonly DetectedAddress[]): string[] {
  const usable = now.filter((a) => isAnnounceable(a.scope)).map((a) => a.ip);
  for (const rec of calls) {
    if (rec.restart && rec.m.state === 'connected') rec.restart.addressChanged(`now ${usable.join(', ') || 'none'}`, usable.length > 0);
  }
  return usable;
}

/** Whether a call can move to a new transport: not a browser tab's, not one with media tracks (a new transport carries channels only). */
export function canRestart(rec: AnyRecord): boolean {
  if (rec.sessions || !callCertificate(rec)) return false;
  if (rec.purpose === 'media' || rec.purpose === 'view') return false;
  return !(rec.direction === 'out' && (rec as OutgoingRecord).media);
}

/**
 * Wires the restarts of a call that has just connected; returns what its
 * ActiveCall shows of them. `addresses` is this machine's usable
 * addresses as the watcher last saw them (undefined: not watched yet).
 */
export function wireRestart(p: PhoneParts, rec: AnyRecord, addresses: () => readonly string[] | undefined): CallTransport {
  const cert = callCertificate(rec)!;
  const switches = new Set<(generation: number) => void>();
  let generation = 0;
  const connectMs = p.o.calleeConnectTimeoutMs ?? 180_000;
  const transport = (made: { session: CallSession; sdp: string }, peerSdp: string | undefined): NewTransport<Made> => {
    let theirs = peerSdp;
    return {
      sdp: made.sdp,
      connected: () => made.session.connected({ timeoutMs: connectMs }).then((c) => ({ session: made.session, c, peerSdp: theirs ?? '' })),
      acceptAnswer: (sdp) => {
        theirs = sdp;
        made.session.acceptAnswer(sdp);
      },
      close: (reason) => made.session.close(reason),
    };
  };
  const restart = new CallRestart<Made>({
    caller: rec.direction === 'out',
    callId: rec.callId,
    peer: rec.peer,
    timers: p.timers,
    controlOpen: () => {
      const seen = addresses();
      const open = Boolean(rec.connected?.channel.isOpen);
      return seen ? controlPathUsable(open, rec.connected?.pair.local, seen) : open;
    },
    edges: {
      offer: async () => transport(await p.sessions.createOffer({ ice: await iceFor(p, rec), certificate: pemFiles(cert) }), undefined),
      answer: async (_generation, sdp) => transport(await p.sessions.acceptOffer(sdp, { ice: await iceFor(p, rec), certificate: pemFiles(cert), keepAnswerMs: connectMs }), sdp),
      sendControl: async (text) => {
        const ch = rec.connected?.channel;
        if (!ch?.isOpen) return false;
        await ch.send(text);
        return true;
      },
      mail: async (u) => {
        await p.o.account.queue({ kind: 'update', to: rec.peer, callId: rec.callId, nonce: u.nonce, sdp: u.sdp, restart: { generation: u.generation, role: u.role }, ttlSeconds: UPDATE_TTL_SECONDS });
        p.o.send();
      },
      switchTo: (made, gen) => {
        const old = rec.session;
        if (old) (rec.left ??= new WeakSet()).add(old);
        rec.session = made.session;
        rec.connected = made.c;
        rec.peerSdp = made.peerSdp;
        hookControl(p, rec, made.c.channel);
        watchSession(p, rec, made.session);
        const a = rec.active;
        if (a) {
          a.session = made.session;
          a.control = made.c.channel;
          a.pair = made.c.pair;
          if (a.tls) a.tls = { ...a.tls, peerSdp: made.peerSdp };
        }
        generation = gen;
        old?.close(`replaced by restart ${gen}`);
        for (const cb of [...switches]) cb(gen);
      },
      end: (reason) => p.feed(rec, { type: 'session-failed', reason }),
      log: (record) => {
        const entry = restartLogEntry(record, { at: p.timers.now().toISOString(), direction: rec.direction, peer: rec.peer, callId: rec.callId });
        void p.o.account.calls.append(entry).catch((err) => p.emit({ type: 'error', error: err as Error }));
      },
      say: (text) => p.emit({ type: 'reconnect', callId: rec.callId, direction: rec.direction, peer: rec.peer, text }),
      onRefused: (reason, detail, via) => p.emit({ type: 'mail-rejected', from: rec.peer, reason, detail: `an update by ${via === 'mail' ? 'mail' : 'the control channel'} not taken: ${detail}` }),
    },
  });
  rec.restart = restart;
  return {
    get generation() {
      return generation;
    },
    get restarting() {
      return restart.state !== 'steady' && restart.state !== 'ended';
    },
    onSwitch(cb) {
      switches.add(cb);
      return () => switches.delete(cb);
    },
  };
}
