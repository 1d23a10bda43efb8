// Waiting for a condition instead of sleeping: a value to appear, or a daemon's log to record an event.
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** Calls `probe` every `intervalMs` until it returns something other than undefined/false; throws naming `what`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`);
    }
    await sleep(intervalMs);
  }
}

export type LogEvent = Record<string, unknown> & { event?: string; msg?: string };

/** The JSON lines of a daemon's log file (pino), skipping anything else. */
export function logEvents(file: string): LogEvent[] {
  if (!existsSync(file)) return [];
  const out: LogEvent[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as LogEvent);
    } catch {
      // a line being written
    }
  }
  return out;
}

/** Waits until the log holds `count` (default 1) lines with this event that match `where`; returns the last. */
export function waitForLogEvent(file: string, event: string, opts: { where?: (e: LogEvent) => boolean; count?: number; timeoutMs?: number } = {}): Promise<LogEvent> {
  return waitFor(`"${event}" in ${file}`, () => {
    const found = logEvents(file).filter((e) => e.event === event && (!opts.where || opts.where(e)));
    return found.length >= (opts.count ?? 1) ? found.at(-1) : undefined;
  }, opts.timeoutMs ?? 60_000);
}

/** Runs a test body; when it fails, the error also carries the last lines of each log (daemons' logs in CI output). */
export async function withLogsOnFailure<T>(logFiles: () => string[], body: () => Promise<T>, lines = 40): Promise<T> {
  try {
    return await body();
  } catch (err) {
    const tails = logFiles()
      .filter((f) => existsSync(f))
      .map((f) => `--- ${f} (last ${lines} lines)\n${readFileSync(f, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => l.slice(0, 400)).join('\n')}`);
    if (err instanceof Error && tails.length) err.message += `\n${tails.join('\n')}`;
    throw err;
  }
}
