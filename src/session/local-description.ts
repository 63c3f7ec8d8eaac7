/**
 * This side's complete description, to mail: the offer or the answer a
 * session makes on its current connection, with all its candidates
 * gathered (no trickle).
 */
import { type Offered, offeredIdentity } from './fresh-agent.js';
import { type AnswerOptions, DEFAULT_GATHER_TIMEOUT_MS, type SessionOptions, type SessionRole } from './options.js';
import { countCandidates, forceOffererDtlsClient, iceIdentity } from './sdp.js';
import type { SessionInside } from './session-inside.js';
import type { TrackPlan } from './tracks.js';

/**
 * The caller's offer: the planned tracks and the control channel, gathered;
 * `sdp` is the offer to mail (the offerer as DTLS client), `offered` what
 * the connection that takes the answer must reproduce.
 */
export async function makeOffer(
  s: SessionInside,
  plans: TrackPlan[],
  control: Offered['control'],
  opts: SessionOptions,
): Promise<{ sdp: string; offered: Offered }> {
  await s.conn.portReady(true);
  for (const plan of plans) s.carried.addTrack(s.conn.pc, plan);
  s.openControl(control);
  s.conn.pc.setLocalDescription('offer');
  await gathered(s, 'offerer', opts);
  const local = s.conn.pc.localDescription();
  if (!local || local.type !== 'offer') throw new Error('no local offer after gathering');
  return { sdp: forceOffererDtlsClient(local.sdp), offered: offeredIdentity(local.sdp, control) };
}

/**
 * The callee's answer to the (checked, active) `offer`, gathered; made with
 * setLocalDescription for a standing answer (its ICE credentials) or a kept
 * one (`manual`).
 */
export async function makeAnswer(s: SessionInside, offer: string, plans: TrackPlan[], opts: AnswerOptions, manual: boolean): Promise<string> {
  const standing = opts.standing;
  // A standing answer's port is the one the caller holds; a kept one's is not out yet.
  await s.conn.portReady(standing === undefined);
  // Tracks with the offer's mids before the offer is applied: the answer
  // then carries our directions and SSRCs instead of a plain mirror.
  for (const plan of plans) s.carried.addTrack(s.conn.pc, plan);
  s.applyRemote(offer, 'offer');
  if (standing) s.conn.pc.setLocalDescription('answer', { iceUfrag: standing.iceUfrag, icePwd: standing.icePwd });
  else if (manual) s.conn.pc.setLocalDescription('answer');
  await gathered(s, 'answerer', opts);
  const local = s.conn.pc.localDescription();
  if (!local || local.type !== 'answer') throw new Error('no local answer after gathering');
  const made = iceIdentity(local.sdp);
  if (standing && (made?.ufrag !== standing.iceUfrag || made?.pwd !== standing.icePwd)) {
    throw new Error('the answer does not have the standing answer\'s ICE credentials');
  }
  return local.sdp;
}

/** Wait for the current connection's candidates (at most gatherTimeoutMs), telling progress. */
async function gathered(s: SessionInside, role: SessionRole, opts: SessionOptions): Promise<void> {
  const t0 = performance.now();
  s.progress({ type: 'gathering', role });
  const complete = await s.conn.gathered(opts.signal, opts.gatherTimeoutMs ?? DEFAULT_GATHER_TIMEOUT_MS);
  const sdp = s.conn.localSdp();
  s.progress({
    type: 'gathered',
    role,
    candidates: countCandidates(sdp),
    complete,
    ms: Math.round(performance.now() - t0),
  });
}
