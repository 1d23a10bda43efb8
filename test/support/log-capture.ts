// A pino logger whose lines the test can read, and act on the moment they are written: pino writes to a plain
// stream synchronously, so a hook runs before the logging code goes on (e.g. fill a disk right after a stage
// logged that its free-space check passed).
import { pino, type Logger } from 'pino';

export interface LogEvent {
  level: number;
  msg: string;
  event?: string;
  stage?: string;
  [key: string]: unknown;
}

export interface CapturedLog {
  log: Logger;
  events: LogEvent[];
  /** Runs `hook` on every later line; returns a function that removes it. */
  on(hook: (e: LogEvent) => void): () => void;
  /** The lines with this `event` field. */
  named(event: string): LogEvent[];
}

export function captureLog(name = 'test-worker'): CapturedLog {
  const events: LogEvent[] = [];
  const hooks = new Set<(e: LogEvent) => void>();
  const log = pino(
    { name, level: 'debug' },
    {
      write(line: string) {
        const e = JSON.parse(line) as LogEvent;
        events.push(e);
        if (process.env.MCB_TEST_LOG) process.stderr.write(line);
        for (const hook of hooks) hook(e);
      },
    },
  );
  return {
    log,
    events,
    on(hook) {
      hooks.add(hook);
      return () => hooks.delete(hook);
    },
    named: (event) => events.filter((e) => e.event === event),
  };
}
