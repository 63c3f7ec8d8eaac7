/**
 * Transfer rate and time left. Pure: the clock is passed in.
 *
 * The rate is measured over a sliding window (default 5 s) so that it
 * follows changes in the link without jumping at every chunk.
 */

export interface ProgressSample {
  /** Milliseconds, from the clock passed in. */
  at: number;
  /** Bytes done so far (absolute). */
  bytes: number;
}

export interface RateEstimate {
  /** Bytes per second over the window; 0 until two samples are apart in time. */
  rate: number;
  /** Seconds until `total` at the current rate; undefined when unknown. */
  etaSeconds: number | undefined;
}

/** Rate and ETA from samples ordered by time (oldest first). */
export function estimateRate(samples: readonly ProgressSample[], total?: number): RateEstimate {
  const first = samples[0];
  const last = samples[samples.length - 1];
  let rate = 0;
  if (first !== undefined && last !== undefined && last.at > first.at) {
    rate = Math.max(0, ((last.bytes - first.bytes) * 1000) / (last.at - first.at));
  }
  let etaSeconds: number | undefined;
  if (total !== undefined && last !== undefined) {
    const left = Math.max(0, total - last.bytes);
    if (left === 0) etaSeconds = 0;
    else if (rate > 0) etaSeconds = left / rate;
  }
  return { rate, etaSeconds };
}

export interface ProgressSnapshot extends RateEstimate {
  bytes: number;
  total: number | undefined;
}

export interface ProgressMeterOptions {
  /** Milliseconds; e.g. `Date.now` or `performance.now`. */
  now: () => number;
  total?: number;
  /** Width of the rate window in ms. Default 5000. */
  windowMs?: number;
  /** Least time between two reports from `report()`, in ms. Default 100. */
  intervalMs?: number;
}

/** Keeps a window of samples and decides when a progress event is worth sending. */
export class ProgressMeter {
  private samples: ProgressSample[] = [];
  private lastReport = Number.NEGATIVE_INFINITY;
  private readonly windowMs: number;
  private readonly intervalMs: number;

  constructor(private readonly opts: ProgressMeterOptions) {
    this.windowMs = opts.windowMs ?? 5000;
    this.intervalMs = opts.intervalMs ?? 100;
  }

  /** Records `bytes` (absolute) and returns the snapshot. */
  update(bytes: number): ProgressSnapshot {
    const at = this.opts.now();
    this.samples.push({ at, bytes });
    // Keep the newest sample older than the window, so the window stays full.
    while (this.samples.length > 2 && (this.samples[1]?.at ?? at) <= at - this.windowMs) this.samples.shift();
    return { bytes, total: this.opts.total, ...estimateRate(this.samples, this.opts.total) };
  }

  /** Like update(), but returns undefined when the last report is too recent (unless `force`). */
  report(bytes: number, force = false): ProgressSnapshot | undefined {
    const snapshot = this.update(bytes);
    const at = this.samples[this.samples.length - 1]?.at ?? 0;
    if (!force && at - this.lastReport < this.intervalMs) return undefined;
    this.lastReport = at;
    return snapshot;
  }
}
