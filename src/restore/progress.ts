// The progress lines of a long download: every few seconds the share of the object read, the rate, the time spent
// and the time left; one closing line with the totals. A download shorter than the interval prints only that one.

const MB = 1_000_000;

export interface ProgressSample {
  bytes: number;
  total: number;
  elapsedMs: number;
}

export function formatProgress(what: string, s: ProgressSample): string {
  const seconds = s.elapsedMs / 1000;
  const rate = seconds > 0 ? s.bytes / MB / seconds : 0;
  const percent = s.total > 0 ? (100 * s.bytes) / s.total : 100;
  const eta = rate > 0 ? (s.total - s.bytes) / MB / rate : undefined;
  return `${what}: ${percent.toFixed(1)}% of ${(s.total / MB).toFixed(1)} MB, ${rate.toFixed(1)} MB/s, ${formatDuration(seconds)} elapsed${eta === undefined ? '' : `, about ${formatDuration(eta)} left`}`;
}

export function formatDone(what: string, s: ProgressSample): string {
  const seconds = s.elapsedMs / 1000;
  const rate = seconds > 0 ? s.bytes / MB / seconds : 0;
  return `${what}: ${(s.bytes / MB).toFixed(1)} MB in ${seconds.toFixed(1)} s (${rate.toFixed(1)} MB/s)`;
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

export interface ProgressReporter {
  /** Stops the periodic lines; `completed` prints the closing one. */
  stop(completed: boolean): void;
}

/** Prints `formatProgress` of `bytes()` every `everyMs` until stopped. */
export function reportProgress(what: string, total: number, bytes: () => number, log: (line: string) => void, everyMs = 5000): ProgressReporter {
  const started = Date.now();
  const sample = (): ProgressSample => ({ bytes: bytes(), total, elapsedMs: Date.now() - started });
  const timer = setInterval(() => log(formatProgress(what, sample())), everyMs);
  timer.unref();
  return {
    stop(completed) {
      clearInterval(timer);
      if (completed) log(formatDone(what, sample()));
    },
  };
}
