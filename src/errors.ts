// Small error helpers every folder may use: which errors mean exit code 2, and the words of an abort and of an
// unknown thrown value.
// May import: nothing from src.

/**
 * A problem with how mcb is set up or called (config, usage, missing programs, a refused request), not with the
 * work itself: `mcb` exits with 2 for these and with 1 for any other error.
 */
export class SetupError extends Error {
  readonly exitCode = 2;
}

/** Why `signal` aborted, as words for a message: the reason's message, a string reason, or "aborted". */
export function abortReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  return r instanceof Error ? r.message : typeof r === 'string' ? r : String(r ?? 'aborted');
}

/** The Error to throw for an aborted `signal`: its reason when that is an Error. */
export function abortError(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new Error(abortReason(signal));
}

/** The message of a thrown value, whatever was thrown. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(err);
}
