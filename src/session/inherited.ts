/**
 * UDP sockets a child process inherited from its parent.
 *
 * libjuice opens its sockets without close-on-exec, so every child process
 * started while a call is up (a session process, ffmpeg, a hook) holds a
 * copy of that call's UDP socket. The port then stays bound after the call
 * closes it, and a connection that must take the same port again (the
 * offerer's fresh connection for the answer, a kept answer) cannot. A session
 * process starts with no UDP socket of its own, so it closes every UDP
 * socket it finds among its descriptors before anything else.
 */
import { closeSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';

/** Inodes of the UDP sockets of this network namespace (/proc/net/udp, udp6). */
function udpInodes(): Set<string> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue; // no IPv6, or not Linux
    }
    for (const line of text.split('\n').slice(1)) {
      const inode = line.trim().split(/\s+/)[9];
      if (inode && inode !== '0') inodes.add(inode);
    }
  }
  return inodes;
}

/** Close every inherited UDP socket descriptor (Linux; elsewhere nothing). Returns how many. */
export function closeInheritedUdpSockets(): number {
  let fds: string[];
  try {
    fds = readdirSync('/proc/self/fd');
  } catch {
    return 0;
  }
  const udp = udpInodes();
  let closed = 0;
  for (const name of fds) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd <= 2) continue;
    let target = '';
    try {
      target = readlinkSync(`/proc/self/fd/${name}`);
    } catch {
      continue;
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (!inode || !udp.has(inode)) continue;
    try {
      closeSync(fd);
      closed++;
    } catch {
      // gone already
    }
  }
  return closed;
}
