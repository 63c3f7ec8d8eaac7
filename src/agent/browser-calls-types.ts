/**
 * A browser tab as a WebRTC endpoint: the tab makes its own RTCPeerConnection
 * (non-trickle: it waits for gathering and hands over the complete
 * description); the agent carries that offer or answer by mail exactly like
 * its own (signed, encrypted, same policy and trust rules).
 * Implemented in the agent (browser-calls.ts); the web server (src/web/) only
 * passes descriptions between the page and this interface.
 */
export interface BrowserOffer {
  callId: string;
  /** The caller's address. */
  from: string;
  /** The caller's complete description, ready for setRemoteDescription. */
  offerSdp: string;
  video: boolean;
  audio: boolean;
}

export interface BrowserCalls {
  /** The tab calls a contact (name or address) with its complete offer; resolves with the peer's answer once it arrives by mail. */
  call(contact: string, offerSdp: string, opts: { video: boolean; audio: boolean }): Promise<{ callId: string; answerSdp: string }>;
  /** The tab answers an offer it was given through onOffer; the answer goes back by mail. */
  answer(callId: string, answerSdp: string): Promise<void>;
  /** The tab declines an offer it was given, or hangs up a call it is in. */
  hangup(callId: string): Promise<void>;
  /** Offers that a tab should answer (media calls while a page is open); returns an unsubscribe function. */
  onOffer(listener: (offer: BrowserOffer) => void): () => void;
}
