/**
 * The video view: this tab is the WebRTC endpoint. It makes its own
 * RTCPeerConnection, waits until gathering is complete (no trickle: the
 * description goes by mail in one piece), hands the offer or answer to the
 * agent (/api/rtc/...), and plays what the peer sends in #remote-video.
 */
import type { Api, BrowserOffer } from './api.js';
import { $, button, el } from './dom.js';

let current: { pc: RTCPeerConnection; callId?: string; local?: MediaStream } | undefined;

function status(text: string): void {
  $('video-status').textContent = text;
}

/** The camera and microphone, or nothing (then the tab only receives). */
async function ownMedia(): Promise<MediaStream | undefined> {
  try {
    return await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch {
    return undefined;
  }
}

function complete(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (pc.iceGatheringState === 'complete') {
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      }
    };
    pc.addEventListener('icegatheringstatechange', check);
  });
}

/**
 * A connection that plays what arrives. For an offer of ours, our camera
 * goes in at once (or receive-only sections without one); for an answer,
 * after the peer's offer is set (answer() below), so it joins its sections.
 */
function newConnection(local: MediaStream | undefined, forOffer: boolean): RTCPeerConnection {
  const pc = new RTCPeerConnection({ iceServers: [] });
  const remote = new MediaStream();
  const video = $('remote-video') as HTMLVideoElement;
  video.srcObject = remote;
  pc.addEventListener('track', (ev) => {
    remote.addTrack(ev.track);
    void video.play().catch(() => undefined);
  });
  pc.addEventListener('connectionstatechange', () => {
    if (pc.connectionState === 'connected') status('connected: video flows directly between this tab and the peer');
    if (pc.connectionState === 'failed' || pc.connectionState === 'closed') status(`the video call ${pc.connectionState === 'failed' ? 'failed' : 'ended'}`);
  });
  if (local) ($('local-video') as HTMLVideoElement).srcObject = local;
  if (forOffer) {
    if (local) for (const t of local.getTracks()) pc.addTrack(t, local);
    else {
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
    }
  }
  $('video-hangup').hidden = false;
  $('videos').hidden = false;
  return pc;
}

function stop(): void {
  current?.pc.close();
  current?.local?.getTracks().forEach((t) => t.stop());
  current = undefined;
  ($('remote-video') as HTMLVideoElement).srcObject = null;
  ($('local-video') as HTMLVideoElement).srcObject = null;
  $('video-hangup').hidden = true;
  $('videos').hidden = true;
}

export function setUpVideo(api: Api, notice: (text: string) => void): { call: (contact: string) => void; offered: (offer: BrowserOffer) => void; offers: (list: BrowserOffer[]) => void } {
  $('video-hangup').addEventListener('click', () => {
    const id = current?.callId;
    stop();
    status('hung up');
    if (id) api.post('/api/rtc/hangup', { callId: id }).catch((e: Error) => notice(e.message));
  });

  const call = async (contact: string) => {
    if (current) return notice('A video call is on already: hang it up first.');
    const local = await ownMedia();
    const pc = newConnection(local, true);
    current = { pc, ...(local ? { local } : {}) };
    status(`calling ${contact}: gathering addresses...`);
    await pc.setLocalDescription(await pc.createOffer());
    await complete(pc);
    status(`calling ${contact}: the offer goes by mail; ringing...`);
    try {
      const r = await api.post<{ callId: string; answerSdp: string }>('/api/rtc/call', { contact, offerSdp: pc.localDescription!.sdp, video: true, audio: true });
      if (current?.pc !== pc) return;
      current.callId = r.callId;
      status(`${contact} answered; connecting...`);
      await pc.setRemoteDescription({ type: 'answer', sdp: r.answerSdp });
    } catch (e) {
      if (current?.pc === pc) stop();
      status(`the video call to ${contact} did not happen: ${(e as Error).message}`);
    }
  };

  const answer = async (offer: BrowserOffer) => {
    if (current) return notice('A video call is on already: hang it up first.');
    const local = await ownMedia();
    const pc = newConnection(local, false);
    current = { pc, callId: offer.callId, ...(local ? { local } : {}) };
    await pc.setRemoteDescription({ type: 'offer', sdp: offer.offerSdp });
    if (local) for (const t of local.getTracks()) pc.addTrack(t, local);
    await pc.setLocalDescription(await pc.createAnswer());
    await complete(pc);
    status(`answering ${offer.from}: the answer goes by mail...`);
    await api.post('/api/rtc/answer', { callId: offer.callId, answerSdp: pc.localDescription!.sdp }).catch((e: Error) => {
      stop();
      status(`could not answer ${offer.from}: ${e.message}`);
    });
  };

  const offers = (list: BrowserOffer[]) => {
    $('offers').replaceChildren(
      ...list.map((o) => {
        const li = el('li', {}, el('span', { className: 'ringing-peer', text: `${o.from} calls with ${o.video ? 'video' : 'sound'}` }));
        li.dataset.callId = o.callId;
        li.append(
          button('Answer with this tab', 'answer', () => answer(o)),
          button('Decline', 'decline', () => api.post('/api/rtc/hangup', { callId: o.callId }).catch((e: Error) => notice(e.message))),
        );
        return li;
      }),
    );
  };

  return { call: (c) => void call(c), offered: (o) => notice(`${o.from} calls with video: answer it under "Video / camera"`), offers };
}
