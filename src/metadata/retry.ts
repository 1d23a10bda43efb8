// The metadata center may restart, fail over or drop off the network while a stage runs. A query that fails for
// such a connection-level reason is retried with backoff for up to [metadata-link] retry_seconds, so an outage
// shorter than that costs a stage no attempt and leaves no wrong row; an SQL error (a constraint, a syntax error,
// a lock wait) is not retried. Only pool-level queries are retried: a query on a held connection (a named lock, a
// session setting) cannot be replayed on another one.

/** Errors that say the server was not reached or went away, not that it refused the statement. */
const connectionErrorCodes: ReadonlySet<string> = new Set([
  // network (node)
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  // mysql2: the socket closed under a query, or a query was queued on a connection that had already failed
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  // the server: shutting down, out of connections, or closing an idle or killed connection
  'ER_SERVER_SHUTDOWN',
  'ER_CON_COUNT_ERROR',
  'ER_CONNECTION_KILLED',
  'ER_CLIENT_INTERACTION_TIMEOUT',
  'ER_NET_READ_ERROR',
  'ER_NET_READ_INTERRUPTED',
  'ER_NET_ERROR_ON_WRITE',
  'ER_NET_WRITE_INTERRUPTED',
]);

export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && connectionErrorCodes.has(code);
}

export const defaultRetrySeconds = 300;
const firstDelayMs = 250;
const maxDelayMs = 5000;

/** The wait before retry number `retry` (1-based): 250 ms doubling, at most 5 s. */
export function retryDelayMs(retry: number): number {
  return Math.min(maxDelayMs, firstDelayMs * 2 ** Math.max(0, retry - 1));
}

export class MetadataUnavailableError extends Error {}

export interface RetryPolicy {
  /** How long an operation keeps retrying before it fails; 0 turns retries off. */
  retrySeconds: number;
  /** Names the metadata center in the final error (user@host:port/db). */
  where: string;
  /** Aborted when the store closes or the worker gives up waiting: the retry stops at once. */
  signal?: AbortSignal;
  /** The first retry of an operation, and its recovery (for one log line each). */
  onRetry?(event: { code: string; retry: number }): void;
  onRecovered?(event: { retries: number; elapsedMs: number }): void;
}

/** Runs `op`, retrying connection-level errors until it succeeds or `policy.retrySeconds` have passed. */
export async function withConnectionRetry<T>(op: () => Promise<T>, policy: RetryPolicy): Promise<T> {
  const started = Date.now();
  for (let retry = 1; ; retry++) {
    try {
      const result = await op();
      if (retry > 1) policy.onRecovered?.({ retries: retry - 1, elapsedMs: Date.now() - started });
      return result;
    } catch (err) {
      if (!isConnectionError(err) || policy.retrySeconds <= 0) throw err;
      const code = (err as { code: string }).code;
      const delay = retryDelayMs(retry);
      const elapsed = Date.now() - started;
      if (policy.signal?.aborted) {
        throw new MetadataUnavailableError(`metadata center ${policy.where} is unreachable (${code}); stopped retrying: shutting down`, { cause: err });
      }
      if (elapsed + delay > policy.retrySeconds * 1000) {
        throw new MetadataUnavailableError(
          `metadata center ${policy.where} is unreachable (${code}); gave up after ${Math.round(elapsed / 1000)} s ([metadata-link] retry_seconds = ${policy.retrySeconds})`,
          { cause: err },
        );
      }
      if (retry === 1) policy.onRetry?.({ code, retry });
      await abortableSleep(delay, policy.signal);
    }
  }
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
