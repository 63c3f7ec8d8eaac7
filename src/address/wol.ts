/**
 * Wake-on-LAN: the magic packet (six 0xFF bytes, then the target's MAC
 * sixteen times) and sending it as a UDP broadcast. `parseMac` and
 * `magicPacket` are pure; `sendWakeOnLan` is the only I/O here.
 */
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { PeerdialError } from '../errors.js';

/**
 * A MAC address as 6 bytes. Accepts `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff`,
 * `aabb.ccdd.eeff` (Cisco) and `aabbccddeeff`; anything else throws USAGE.
 */
export function parseMac(mac: string): Buffer {
  const s = mac.trim();
  const ok =
    /^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/i.test(s) ||
    /^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/i.test(s) ||
    /^[0-9a-f]{12}$/i.test(s);
  if (!ok) {
    throw new PeerdialError('USAGE', `"${mac}" is not a MAC address.`, {
      hint: 'Write it as aa:bb:cc:dd:ee:ff (also aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff); `ip link` shows it on the sleeping machine.',
    });
  }
  return Buffer.from(s.replace(/[:.-]/g, ''), 'hex');
}

/** The 102-byte magic packet for `mac`. */
export function magicPacket(mac: string): Buffer {
  const bytes = parseMac(mac);
  const packet = Buffer.alloc(6 + 16 * 6, 0xff);
  for (let i = 0; i < 16; i++) bytes.copy(packet, 6 + i * 6);
  return packet;
}

export interface WakeOnLanOptions {
  /** Where to send it: a broadcast address (default 255.255.255.255) or a host. */
  address?: string;
  /** UDP port; 9 (discard) by convention, 7 also common. */
  port?: number;
  /** Local address to send from (chooses the interface). */
  bind?: string;
}

/** Sends one magic packet for `mac`; resolves once the datagram left. */
export async function sendWakeOnLan(mac: string, opts: WakeOnLanOptions = {}): Promise<{ address: string; port: number; bytes: number }> {
  const packet = magicPacket(mac);
  const address = opts.address ?? '255.255.255.255';
  const port = opts.port ?? 9;
  const socket = createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ port: 0, ...(opts.bind ? { address: opts.bind } : {}) }, () => resolve());
    });
    socket.setBroadcast(true);
    await new Promise<void>((resolve, reject) => {
      socket.send(packet, port, address, (err) =>
        err
          ? reject(
              new PeerdialError('TCP_FAILED', `could not send the Wake-on-LAN packet to ${address}:${port}: ${err.message}`, {
                hint: 'Check the wake address (the broadcast address of the sleeping machine\'s network) and that this machine is on that network.',
                cause: err,
              }),
            )
          : resolve(),
      );
    });
    return { address, port, bytes: packet.length };
  } finally {
    socket.close();
  }
}
