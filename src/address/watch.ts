/**
 * Noticing that this machine's addresses changed, without busy polling:
 * on Linux the kernel tells us (`ip -o monitor address`, netlink); where
 * that is not available we look every few minutes. A link hook
 * (`peerdial address-changed`, from ppp/NetworkManager/dhcpcd) can also
 * say so at once. Changes are debounced, and only a change in the set of
 * announceable addresses counts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { interfaceAddresses, type DetectedAddress } from './interfaces.js';
import { isAnnounceable } from './classify.js';

export interface AddressWatchOptions {
  signal: AbortSignal;
  onChange: (now: DetectedAddress[], before: DetectedAddress[]) => void;
  /** Where addresses come from (tests pass their own). */
  read?: () => DetectedAddress[];
  debounceMs?: number;
  /** Fallback look interval when the kernel cannot tell us. */
  fallbackMs?: number;
  /** The monitor command; default `ip -o monitor address`. */
  monitor?: string[] | null;
}

export function announceableKey(list: DetectedAddress[]): string {
  return list
    .filter((a) => isAnnounceable(a.scope))
    .map((a) => a.ip)
    .sort()
    .join(',');
}

export interface AddressWatcher {
  /** Something outside says the address changed: look now. */
  poke(): void;
  /** How changes are noticed: 'netlink' or 'polling'. */
  readonly mode: 'netlink' | 'polling';
}

export function watchAddresses(o: AddressWatchOptions): AddressWatcher {
  const read = o.read ?? (() => interfaceAddresses());
  let current = read();
  let timer: NodeJS.Timeout | undefined;
  const look = () => {
    timer = undefined;
    if (o.signal.aborted) return;
    const next = read();
    if (announceableKey(next) !== announceableKey(current)) {
      const before = current;
      current = next;
      o.onChange(next, before);
    } else current = next;
  };
  const poke = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(look, o.debounceMs ?? 1000);
  };
  let child: ChildProcess | undefined;
  let poller: NodeJS.Timeout | undefined;
  let mode: 'netlink' | 'polling' = 'polling';
  const monitor = o.monitor === undefined ? (process.platform === 'linux' ? ['ip', '-o', 'monitor', 'address'] : null) : o.monitor;
  if (monitor) {
    try {
      child = spawn(monitor[0]!, monitor.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
      mode = 'netlink';
      child.stdout!.on('data', () => poke());
      child.on('error', () => startPolling());
      child.on('exit', () => {
        if (!o.signal.aborted) startPolling();
      });
      child.unref();
      (child.stdout as unknown as { unref?: () => void }).unref?.();
    } catch {
      startPolling();
    }
  } else startPolling();
  function startPolling() {
    mode = 'polling';
    if (poller || o.signal.aborted) return;
    poller = setInterval(look, o.fallbackMs ?? 300_000);
    poller.unref();
  }
  o.signal.addEventListener('abort', () => {
    if (timer) clearTimeout(timer);
    if (poller) clearInterval(poller);
    child?.kill();
  }, { once: true });
  return {
    poke,
    get mode() {
      return mode;
    },
  };
}
