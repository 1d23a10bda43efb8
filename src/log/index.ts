// Structured logs (pino), one JSON line per event. Secrets are redacted by path as a second line of defence;
// the first is never putting them in log objects.
// May import: nothing from src.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { debug?: boolean; quiet?: boolean; name?: string; destination?: number } = {}): Logger {
  return pino(
    {
      name: opts.name ?? 'mcb',
      level: process.env.MCB_LOG_LEVEL || (opts.debug ? 'debug' : opts.quiet ? 'warn' : 'info'),
      redact: {
        paths: ['password', '*.password', 'secretKey', '*.secretKey', 'accessKey', '*.accessKey', 'token', '*.token'],
        censor: '***',
      },
      base: { pid: process.pid },
    },
    pino.destination({ dest: opts.destination ?? 2, sync: true }),
  );
}
