/**
 * Figure 6: Delta Chat's call signalling leg on the same mail stack.
 * Delta Chat core (npm @deltachat/stdio-rpc-server, one rpc-server process
 * with two accounts) is configured against the harness's Dovecot +
 * Postfix; the two accounts verify each other with a SecureJoin (its calls
 * need an encrypted chat); then bob places calls to alice and the time
 * from placeOutgoingCall() to alice's IncomingCall event is taken.
 */
import { randomBytes } from 'node:crypto';
import { startDeltaChat } from '@deltachat/stdio-rpc-server';
import type { MailStack } from '../test/harness/mail-stack.js';
import { deltaChatAccount } from '../test/harness/deltachat.js';
import { log, now, sleep, summarize, type Summary } from './lib.js';

export interface DeltaChatResult {
  version: string;
  legs: number[];
  leg: Summary;
  setupMs: number;
}

/** A data-channel-only SDP offer of realistic size, for the call's place_call_info. */
function fakeOffer(): string {
  const id = randomBytes(8).readBigUInt64BE().toString();
  const fp = Array.from(randomBytes(32), (b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
  return [
    'v=0', `o=rtc ${id} 0 IN IP4 127.0.0.1`, 's=-', 't=0 0', 'a=group:BUNDLE 0', 'a=msid-semantic:WMS *',
    'a=ice-options:ice2,trickle', `a=fingerprint:sha-256 ${fp}`,
    'm=application 40000 UDP/DTLS/SCTP webrtc-datachannel', 'c=IN IP4 127.0.0.1', 'a=mid:0', 'a=sendrecv',
    'a=sctp-port:5000', 'a=max-message-size:262144', 'a=setup:active',
    `a=ice-ufrag:${randomBytes(3).toString('hex')}`, `a=ice-pwd:${randomBytes(12).toString('base64')}`,
    `a=candidate:1 1 UDP 2122317823 127.0.0.1 40000 typ host`, 'a=end-of-candidates', '',
  ].join('\r\n');
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`Delta Chat: ${what} did not happen within ${ms / 1000} s`)), ms).unref())]);
}

export async function measureDeltaChat(stack: MailStack, names: [string, string], dir: string, n: number): Promise<DeltaChatResult> {
  const t0 = now();
  const dc = startDeltaChat(dir, { muteStdErr: true });
  try {
    const info = await within(dc.rpc.getSystemInfo(), 20_000, 'the rpc server answering');
    const version = info.deltachat_core_version ?? 'unknown';
    const ids: number[] = [];
    for (const name of names) {
      // the tests' account set-up (STARTTLS to the stack, its self-signed certificate)
      const id = await within(deltaChatAccount(dc, stack, name), 60_000, `configuring ${stack.users[name]!.email}`);
      await dc.rpc.startIo(id);
      ids.push(id);
    }
    const [alice, bob] = ids as [number, number];
    // SecureJoin: bob scans alice's QR code; both get each other's keys, verified.
    const joined = new Promise<void>((resolve) =>
      dc.on('SecurejoinJoinerProgress', (acc, e) => acc === bob && e.progress === 1000 && resolve()),
    );
    const qr = await dc.rpc.getChatSecurejoinQrCode(alice, null);
    const chat = await dc.rpc.secureJoin(bob, qr);
    await within(joined, 60_000, 'SecureJoin');
    const setupMs = now() - t0;
    log(`Delta Chat ${version}: 2 accounts configured and joined in ${Math.round(setupMs)} ms`);

    const legs: number[] = [];
    let waiting: ((at: number, msgId: number) => void) | undefined;
    dc.on('IncomingCall', (acc, e) => {
      if (acc === alice) waiting?.(now(), e.msg_id);
    });
    const ended = new Set<number>();
    dc.on('CallEnded', (acc) => ended.add(acc));
    for (let i = 0; i < n; i++) {
      const got = new Promise<{ at: number; msgId: number }>((resolve) => (waiting = (at, msgId) => resolve({ at, msgId })));
      const s = now();
      await dc.rpc.placeOutgoingCall(bob, chat, fakeOffer(), false);
      const { at, msgId } = await within(got, 30_000, 'the IncomingCall event');
      waiting = undefined;
      legs.push(at - s);
      ended.clear();
      await dc.rpc.endCall(alice, msgId);
      await within(
        (async () => {
          while (!ended.has(bob)) await sleep(20);
        })(),
        30_000,
        'the caller seeing the hang-up',
      ).catch(() => undefined);
      await sleep(300);
    }
    return { version, legs, leg: summarize(legs), setupMs };
  } finally {
    dc.close();
  }
}
