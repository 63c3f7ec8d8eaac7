/**
 * A stand-in for Delta Chat's call app (deltachat/calls-webapp) in tests:
 * a WebRTC peer (node-datachannel) that behaves like the browser app
 * towards the call: its only data channel is the negotiated
 * `iceTrickling` channel on stream 1, its description is complete once
 * gathered (no trickle needed on loopback), it receives the other side's
 * video and audio and counts the video frames, and it takes the channels
 * the other side opens. The SDP goes through Delta Chat's RPC
 * (placeOutgoingCall / acceptIncomingCall) as the app hands it over.
 */
import nodeDataChannel, { type DataChannel, type Track } from 'node-datachannel';

export class CallApp {
  readonly pc: nodeDataChannel.PeerConnection;
  readonly channels: DataChannel[] = [];
  /** Lines received on the channels the other side opened, by channel label. */
  readonly lines: Array<{ label: string; text: string }> = [];
  #video: Track | undefined;
  /** Tracks and their handlers stay referenced while native code may use them (dropping them can crash the process). */
  readonly #kept: unknown[] = [];
  readonly #frames = new Set<number>();
  #packets = 0;
  state = 'new';

  constructor(name: string) {
    this.pc = new nodeDataChannel.PeerConnection(name, { iceServers: [], bindAddress: '127.0.0.1', disableAutoNegotiation: true });
    this.pc.onStateChange((s) => (this.state = s));
    this.#kept.push(this.pc.createDataChannel('iceTrickling', { negotiated: true, id: 1 }));
    this.pc.onDataChannel((dc) => {
      this.channels.push(dc);
      dc.onMessage((m) => {
        for (const text of String(m).split('\n').filter(Boolean)) this.lines.push({ label: dc.getLabel(), text });
      });
    });
  }

  /** RTP timestamps of the video frames received (one per frame), and the packets. */
  get videoFrames(): number {
    return this.#frames.size;
  }

  get videoPackets(): number {
    return this.#packets;
  }

  #receiveVideo(): void {
    const v = new nodeDataChannel.Video('0', 'RecvOnly');
    v.addH264Codec(96);
    this.#video = this.pc.addTrack(v);
    const session = new nodeDataChannel.RtcpReceivingSession();
    this.#video.setMediaHandler(session);
    this.#kept.push(v, this.#video, session);
    this.#video.onMessage((msg) => {
      const b = Buffer.from(msg);
      const pt = (b[1] ?? 0) & 0x7f;
      if (b.length < 12 || b[0]! >> 6 !== 2 || (pt >= 64 && pt <= 95)) return; // RTP only, not RTCP (RFC 5761)
      this.#packets++;
      this.#frames.add(b.readUInt32BE(4));
    });
    const a = new nodeDataChannel.Audio('1', 'RecvOnly');
    a.addOpusCodec(111);
    const audio = this.pc.addTrack(a);
    const audioSession = new nodeDataChannel.RtcpReceivingSession();
    audio.setMediaHandler(audioSession);
    this.#kept.push(a, audio, audioSession);
  }

  #gathered(): Promise<string> {
    return new Promise((resolve) => {
      const done = () => resolve(this.pc.localDescription()!.sdp);
      if (this.pc.gatheringState() === 'complete') return done();
      this.pc.onGatheringStateChange((s) => s === 'complete' && done());
    });
  }

  /** The offer of an outgoing call (`#startCall`): video and audio to receive, the negotiated channel. */
  async offer(opts: { video: boolean }): Promise<string> {
    if (opts.video) this.#receiveVideo();
    const sdp = this.#gathered();
    this.pc.setLocalDescription('offer');
    return sdp;
  }

  /** The answer to an incoming call's offer (`#acceptCall=`). */
  async answer(offerSdp: string): Promise<string> {
    this.pc.setRemoteDescription(offerSdp, 'offer');
    const sdp = this.#gathered();
    this.pc.setLocalDescription('answer');
    return sdp;
  }

  /** The answer to our outgoing call (`#onAnswer=`). */
  accept(answerSdp: string): void {
    if (this.state === 'closed' || this.state === 'failed') throw new Error(`the call app's connection is ${this.state} before the answer came (ICE ${this.pc.iceState()}, gathering ${this.pc.gatheringState()})`);
    this.pc.setRemoteDescription(answerSdp, 'answer');
  }

  close(): void {
    this.pc.close();
  }
}
