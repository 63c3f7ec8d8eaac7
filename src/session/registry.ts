/**
 * The live sessions of this process, and node-datachannel's cleanup().
 *
 * GC closes native objects: every live Session is referenced here until it
 * closes. cleanup() runs once when the last session has closed, so the
 * process can exit; shutdownSessions() does it at once.
 */
import { cleanup as nativeCleanup } from 'node-datachannel';

/** What the registry needs of a session. */
interface LiveSession {
  close(reason?: string): void;
}

const live = new Set<LiveSession>();
let nativeInUse = false;
let cleanupTimer: NodeJS.Timeout | undefined;

export function register(session: LiveSession): void {
  live.add(session);
  nativeInUse = true;
  if (cleanupTimer !== undefined) {
    clearTimeout(cleanupTimer);
    cleanupTimer = undefined;
  }
}

export function unregister(session: LiveSession): void {
  live.delete(session);
  if (live.size === 0 && nativeInUse && cleanupTimer === undefined) {
    // On a later tick, so that the close in progress settles first; a session
    // created in between cancels it.
    cleanupTimer = setTimeout(runCleanup, 0);
  }
}

function runCleanup(): void {
  cleanupTimer = undefined;
  if (live.size > 0 || !nativeInUse) return;
  nativeInUse = false;
  try {
    nativeCleanup();
  } catch {
    // "cleanup timeout": nothing more can be done; the process may not exit.
  }
}

/** Close every live session and release node-datachannel now, so the process can exit. */
export function shutdownSessions(): void {
  for (const session of [...live]) session.close('shut down');
  if (cleanupTimer !== undefined) clearTimeout(cleanupTimer);
  runCleanup();
}

/** Number of sessions not yet closed (for tests and diagnostics). */
export function liveSessionCount(): number {
  return live.size;
}
