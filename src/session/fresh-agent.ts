/**
 * The offerer's fresh connection for the answer.
 *
 * The answer goes to a fresh connection with the offer's identity (ICE
 * credentials, certificate, UDP port, sections), made for it at once,
 * never to the connection that made the offer. That one has been
 * answering the callee's checks while the answer was in the mail, so its
 * ICE agent knows the callee's address already and connects inside
 * libdatachannel 0.24.5's setRemoteDescription, before the description
 * (and its fingerprint) is stored; DTLS then refuses the callee's
 * certificate and the call fails (5-20 % of calls on a busy machine,
 * bench/connect-race.mjs). A fresh agent knows no address until the
 * description's candidates are added, which libdatachannel does after
 * storing it, so the handshake always finds the fingerprint.
 */
import { PeerdialError } from '../errors.js';
import { OFFERER_PORT_WAIT_MS } from './options.js';
import { iceIdentity, sectionMids } from './sdp.js';
import { FRESH_OFFER_HINT } from './session-errors.js';
import type { SessionInside } from './session-inside.js';
import { negotiatedDirection } from './tracks.js';

/** The offer as mailed: what the connection that takes the answer must reproduce. */
export type Offered = NonNullable<ReturnType<typeof iceIdentity>> & { mids: string; control: { label: string; protocol: string } };

/** What the offer's connection must reproduce, read from the offer it made. */
export function offeredIdentity(offerSdp: string, control: Offered['control']): Offered {
  const id = iceIdentity(offerSdp);
  if (!id) throw new Error('the offer lacks ICE credentials or a fingerprint');
  return { ...id, mids: sectionMids(offerSdp), control };
}

/**
 * Apply the (checked) answer on a fresh connection with the offer's
 * identity; `original` is the answer as it came, for the tracks' directions.
 */
export async function applyAnswerFresh(s: SessionInside, offered: Offered, answer: string, original: string): Promise<void> {
  s.carried.detachTracks();
  s.carried.dropChannels('replaced before the call connected');
  const released = await s.conn.release(() => s.isClosed(), OFFERER_PORT_WAIT_MS);
  if (s.isClosed()) return;
  if (!released.free) {
    // Still bound after the wait: most likely a child process started
    // during the call (ffmpeg, a hook) holds a copy of the socket
    // (inherited.ts). A fresh connection on another port still connects
    // wherever the callee accepts packets from a new port (all but a
    // port-restricted NAT on the callee's side).
    s.conn.unpinPort();
  }
  const pc = s.conn.replace();
  s.carried.moveTracksTo(pc);
  s.openControl(offered.control);
  pc.setLocalDescription('offer', { iceUfrag: offered.ufrag, icePwd: offered.pwd });
  const local = pc.localDescription()?.sdp ?? '';
  const id = iceIdentity(local);
  if (!id || id.fingerprint !== offered.fingerprint || id.ufrag !== offered.ufrag || id.pwd !== offered.pwd || sectionMids(local) !== offered.mids) {
    throw new PeerdialError('SESSION_FAILED', 'could not apply the answer: a fresh connection does not match the offer (certificate, ICE credentials or sections differ)', {
      hint: FRESH_OFFER_HINT,
    });
  }
  s.progress({ type: 'fresh-agent', releaseMs: released.ms, samePort: released.free });
  applyAnswerHere(s, answer, original);
}

/**
 * Apply the (checked) answer on the session's current connection: the
 * fresh one above, or the one that made the offer
 * (OfferOptions.keepOfferConnection, whose TURN allocation stays usable).
 */
export function applyAnswerHere(s: SessionInside, answer: string, original: string): void {
  s.applyRemote(answer, 'answer');
  for (const track of s.carried.tracks) track.setNegotiatedDirection(negotiatedDirection(track.direction, original, track.mid));
}
