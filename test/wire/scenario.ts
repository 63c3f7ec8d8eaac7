/**
 * Shared cast and props for the wire tests: alice, hitoshi and mallory
 * (test-only keys from fixtures/keys), a realistic non-trickle SDP, and a
 * message factory with fixed times.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as openpgp from 'openpgp';
import { loadIdentity, type Identity } from '../../src/wire/identity.js';
import type { MessageKind, PeerdialMessage } from '../../src/wire/message.js';
import type { ParseContext } from '../../src/wire/parse.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = join(ROOT, 'fixtures');

export const ALICE = 'alice@example.test';
export const HITOSHI = 'hitoshi@example.test';
export const MALLORY = 'mallory@example.test';

export interface Cast {
  alice: Identity;
  hitoshi: Identity;
  mallory: Identity;
}

export async function loadCast(): Promise<Cast> {
  const load = (name: string): Promise<Identity> =>
    loadIdentity(readFileSync(join(FIXTURES, 'keys', `${name}.private.asc`), 'utf8'));
  return { alice: await load('alice'), hitoshi: await load('hitoshi'), mallory: await load('mallory') };
}

/** Fixture keys were made on this date; mails are dated after it. */
export const KEY_DATE = new Date('2025-01-01T00:00:00.000Z');
/** Every fixture mail is created at this moment. */
export const T0 = new Date('2025-06-01T10:00:00.000Z');
export const FIVE_MINUTES = 5 * 60 * 1000;

/** Alice's offer: data channel + audio, all candidates gathered (non-trickle). Addresses from documentation ranges. */
export const ALICE_PUBLIC_IP = '198.51.100.7';
export const ALICE_LAN_IP = '192.168.1.23';
export const ALICE_V6 = '2001:db8:23::7';
export const OFFER_SDP = [
  'v=0',
  'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'a=extmap-allow-mixed',
  'a=msid-semantic: WMS',
  'm=application 50123 UDP/DTLS/SCTP webrtc-datachannel',
  `c=IN IP4 ${ALICE_PUBLIC_IP}`,
  `a=candidate:1 1 UDP 2122252543 ${ALICE_LAN_IP} 50123 typ host`,
  `a=candidate:2 1 UDP 2122262783 ${ALICE_V6} 50124 typ host`,
  `a=candidate:3 1 UDP 1686052607 ${ALICE_PUBLIC_IP} 50123 typ srflx raddr ${ALICE_LAN_IP} rport 50123`,
  'a=end-of-candidates',
  'a=ice-ufrag:Kx3b',
  'a=ice-pwd:9QmN5sYw2bXq0vTj7LrF4hEz',
  'a=ice-options:ice2',
  'a=fingerprint:sha-256 6B:8B:5E:2A:61:0C:47:9F:33:D1:0E:AA:52:C4:18:7E:90:2D:4F:3B:A1:77:C9:05:E6:68:1D:BC:42:F0:93:5A',
  'a=setup:actpass',
  'a=mid:0',
  'a=sctp-port:5000',
  'a=max-message-size:262144',
  'm=audio 50123 UDP/TLS/RTP/SAVPF 111',
  `c=IN IP4 ${ALICE_PUBLIC_IP}`,
  'a=mid:1',
  'a=sendrecv',
  'a=rtcp-mux',
  'a=rtpmap:111 opus/48000/2',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  'a=ssrc:1001 cname:peerdial',
  '',
].join('\r\n');

export const ANSWER_SDP = OFFER_SDP.replace(/a=setup:actpass/, 'a=setup:active')
  .replaceAll(ALICE_PUBLIC_IP, '203.0.113.44')
  .replaceAll(ALICE_LAN_IP, '10.0.0.5')
  .replace(ALICE_V6, '2001:db8:44::5')
  .replace('Kx3b', 'Pq8d');

export const CALL_ID = 'c4lL1d-0ffer-2025-06-01-aB3dE5fG';

let counter = 0;
/** A nonce that is unique within one test run (real ones come from crypto). */
export function nonce(label = 'n'): string {
  counter += 1;
  return `${label}-${String(counter).padStart(6, '0')}-nonce-xyz`;
}

/** A valid message of `kind`, from -> to, created at `created`, valid for `ttlMs`. */
export function message(
  kind: MessageKind,
  from: string,
  to: string,
  extra: Partial<PeerdialMessage> = {},
  created: Date = T0,
  ttlMs: number = FIVE_MINUTES,
): PeerdialMessage {
  const base: PeerdialMessage = {
    v: 1,
    kind,
    from,
    to,
    callId: CALL_ID,
    created: created.toISOString(),
    expires: new Date(created.getTime() + ttlMs).toISOString(),
    nonce: nonce(kind),
    addresses: [],
  };
  switch (kind) {
    case 'announce':
      base.addresses = [
        { ip: ALICE_PUBLIC_IP, port: 50123, source: 'stun', scope: 'public' },
        { ip: ALICE_LAN_IP, port: 50123, source: 'interface', scope: 'private' },
        { ip: ALICE_V6, source: 'interface', scope: 'global' },
      ];
      break;
    case 'offer':
      base.sdp = OFFER_SDP;
      base.purpose = 'audio';
      base.addresses = [
        { ip: ALICE_PUBLIC_IP, port: 50123, source: 'stun', scope: 'public' },
        { ip: ALICE_LAN_IP, port: 50123, source: 'interface', scope: 'private' },
      ];
      break;
    case 'answer':
      base.sdp = ANSWER_SDP;
      base.addresses = [{ ip: '203.0.113.44', port: 50123, source: 'stun', scope: 'public' }];
      break;
    case 'decline':
      base.text = 'busy, call me after lunch';
      break;
    case 'hangup':
      base.text = 'bye';
      break;
    case 'message':
      base.text = 'Could not reach you directly: I am at 198.51.100.7 until noon.';
      break;
    case 'introduce':
    case 'introduced':
      base.mac = 'HmacOfBothAddressesAndFingerprints_underSec';
      break;
    case 'update':
      // alice's address changed mid-call: her new transport, the first restart of the call
      base.sdp = OFFER_SDP.replace('Kx3b', 'Rs7u').replace('9QmN5sYw2bXq0vTj7LrF4hEz', 'Ne3wCr3dsAfterTheChange0');
      base.restart = { generation: 1, role: 'offer' };
      break;
    default:
      break;
  }
  return { ...base, ...extra };
}

/** A parse context for `self`, who knows `contacts` (pinned keys), at `now`. */
export function contextFor(
  self: Identity,
  opts: {
    now?: Date;
    contacts?: Record<string, { publicKey?: openpgp.PublicKey; blocked?: boolean }>;
    policy?: ParseContext['policy'];
    seen?: (nonce: string, messageId: string) => boolean;
  } = {},
): ParseContext {
  const contacts = opts.contacts ?? {};
  return {
    self: { email: self.email, identity: self },
    now: opts.now ?? new Date(T0.getTime() + 60_000),
    contact: (email) => contacts[email],
    policy: opts.policy ?? 'contacts',
    seen: opts.seen ?? (() => false),
  };
}

/** Everybody knows everybody's real key: the normal state of a pair who have talked before. */
export function pinnedAll(cast: Cast): Record<string, { publicKey: openpgp.PublicKey }> {
  return {
    [ALICE]: { publicKey: cast.alice.publicKey },
    [HITOSHI]: { publicKey: cast.hitoshi.publicKey },
    [MALLORY]: { publicKey: cast.mallory.publicKey },
  };
}
