/**
 * The call log: one JSON line per event (missed, answered, declined, ...).
 * Append-only, never rewritten: each line goes out in one write to a file
 * opened O_APPEND, so two processes appending at once interleave whole
 * lines and lose none; it needs no lock.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ensurePrivateDir } from './files.js';

export interface CallLogEntry {
  at: string;
  direction: 'in' | 'out';
  peer: string;
  callId: string;
  /** connected, missed, declined, cancelled, busy, timed-out, failed, rejected, hung-up */
  outcome: string;
  detail?: string;
  /** outcome "connected": through a TURN relay or directly (from the selected candidate pair). */
  path?: 'relayed' | 'direct';
  durationMs?: number;
}

export class CallLog {
  private readonly file: string;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'calls.jsonl');
  }

  async append(entry: CallLogEntry): Promise<void> {
    await ensurePrivateDir(path.dirname(this.file));
    const line = Buffer.from(JSON.stringify(entry) + '\n');
    const handle = await fs.open(this.file, 'a', 0o600);
    try {
      const { bytesWritten } = await handle.write(line);
      if (bytesWritten !== line.length) throw new Error(`${this.file}: short write (${bytesWritten} of ${line.length} bytes)`);
    } finally {
      await handle.close();
    }
  }

  async list(): Promise<CallLogEntry[]> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: CallLogEntry[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as CallLogEntry);
      } catch {
        // a line torn by a crash is skipped, the rest of the log stays readable
      }
    }
    return out;
  }
}
