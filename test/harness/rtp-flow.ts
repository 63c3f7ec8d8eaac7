/**
 * Media flows on two connected tracks: five RTP frames from `sender` reach
 * `receiver`, and the receiver's picture-loss request (PLI) reaches the sender.
 */
import { expect } from 'vitest';
import type { MediaTrack } from '../../src/session/index.js';

export async function expectRtpAndPictureLoss(sender: MediaTrack, receiver: MediaTrack): Promise<void> {
  await new Promise<void>((r) => sender.onOpen(r));
  await new Promise<void>((r) => receiver.onOpen(r));
  const asked = new Promise<void>((r) => sender.onKeyframeRequest(r));
  for (let seq = 0; seq < 5; seq++) {
    expect(sender.sendRtp(Buffer.from([0x80, 0x80 | 96, 0, seq, 0, 0, 0, seq, 0, 0, 0, 1, 0x41, 0, 0]))).toBe(true);
  }
  while (receiver.stats().packetsReceived < 5) await new Promise((r) => setTimeout(r, 10));
  expect(receiver.stats().framesReceived).toBe(5);
  expect(receiver.requestKeyframe()).toBe(true);
  await asked;
  expect(sender.stats().keyframeRequestsReceived).toBe(1);
}
