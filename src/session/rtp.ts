/**
 * Pure RTP/RTCP helpers: no native code, no I/O. Enough to sort packets, count
 * frames, spot H.264 key frames and give a packet another payload type and
 * SSRC; nothing is depacketized.
 */

/** RTP or RTCP on one port (RFC 5761 section 4): RTCP packet types 192..223 sit in the second byte. */
export function isRtcp(packet: Uint8Array): boolean {
  const b = packet[1];
  return packet.length >= 8 && b !== undefined && b >= 192 && b <= 223;
}

export interface RtpHeader {
  payloadType: number;
  marker: boolean;
  sequence: number;
  timestamp: number;
  ssrc: number;
  /** Offset of the payload (after CSRCs and header extension). */
  payloadOffset: number;
}

/** The fixed header of an RTP packet, or undefined when it is not RTP version 2. */
export function parseRtp(packet: Uint8Array): RtpHeader | undefined {
  if (packet.length < 12 || (packet[0]! & 0xc0) !== 0x80 || isRtcp(packet)) return undefined;
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  const csrcs = packet[0]! & 0x0f;
  let offset = 12 + 4 * csrcs;
  if (packet[0]! & 0x10) {
    if (packet.length < offset + 4) return undefined;
    offset += 4 + 4 * view.getUint16(offset + 2);
  }
  if (offset > packet.length) return undefined;
  return {
    payloadType: packet[1]! & 0x7f,
    marker: (packet[1]! & 0x80) !== 0,
    sequence: view.getUint16(2),
    timestamp: view.getUint32(4),
    ssrc: view.getUint32(8),
    payloadOffset: offset,
  };
}

/**
 * The packet with another payload type and SSRC; the same buffer when both
 * already match, a copy otherwise (the input may be shared by several tracks).
 */
export function withPayloadTypeAndSsrc(packet: Uint8Array, payloadType: number, ssrc: number | undefined): Uint8Array {
  if (packet.length < 12) return packet;
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  const ptOk = (packet[1]! & 0x7f) === payloadType;
  const ssrcOk = ssrc === undefined || view.getUint32(8) === ssrc >>> 0;
  if (ptOk && ssrcOk) return packet;
  const copy = Buffer.from(packet);
  copy[1] = (copy[1]! & 0x80) | (payloadType & 0x7f);
  if (ssrc !== undefined) copy.writeUInt32BE(ssrc >>> 0, 8);
  return copy;
}

const NAL_IDR = 5;
const NAL_SPS = 7;
const NAL_STAP_A = 24;
const NAL_FU_A = 28;

/**
 * Whether this H.264 RTP packet (RFC 6184) starts a key frame: an IDR slice
 * or SPS, alone, in a STAP-A aggregate, or as the first fragment of a FU-A.
 */
export function startsH264Keyframe(packet: Uint8Array): boolean {
  const h = parseRtp(packet);
  if (!h || h.payloadOffset >= packet.length) return false;
  const p = packet.subarray(h.payloadOffset);
  const type = p[0]! & 0x1f;
  if (type === NAL_IDR || type === NAL_SPS) return true;
  if (type === NAL_FU_A) return p.length > 1 && (p[1]! & 0x80) !== 0 && (p[1]! & 0x1f) === NAL_IDR;
  if (type === NAL_STAP_A) {
    for (let i = 1; i + 2 < p.length; ) {
      const size = (p[i]! << 8) | p[i + 1]!;
      const t = p[i + 2]! & 0x1f;
      if (t === NAL_IDR || t === NAL_SPS) return true;
      i += 2 + size;
    }
  }
  return false;
}

/** RTCP feedback asking for a key frame: PLI (PT 206, FMT 1) or FIR (PT 206, FMT 4), also inside a compound packet. */
export function isKeyframeRequest(packet: Uint8Array): boolean {
  for (let i = 0; i + 4 <= packet.length; ) {
    const fmt = packet[i]! & 0x1f;
    const pt = packet[i + 1]!;
    if (pt === 206 && (fmt === 1 || fmt === 4)) return true;
    const words = (packet[i + 2]! << 8) | packet[i + 3]!;
    i += 4 * (words + 1);
  }
  return false;
}

/** Difference of two 16-bit sequence numbers, in -32768..32767. */
export function sequenceDelta(next: number, prev: number): number {
  return ((next - prev + 0x8000) & 0xffff) - 0x8000;
}
