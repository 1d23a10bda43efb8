// Runs an asynchronous step on each item of a sequence with a bounded number in flight, the way the parts of a
// multipart upload are sent: the next item is taken (and may be read and filled) while the slots are busy, so at
// most `concurrency` items are in flight plus the one waiting for a slot. Results come back in the items' order,
// whatever order the steps finish in.

export interface InFlightOptions {
  /** Steps running at once (at least 1). */
  concurrency: number;
  /** Aborting stops taking items and aborts the running steps' signal; the abort reason is thrown. */
  signal?: AbortSignal;
}

const STOPPED = Symbol('stopped');

/**
 * Calls `step(item, index, signal)` for each item, at most `concurrency` at a time. On the first failure (of a step,
 * of the sequence, or an abort) no further item is taken or started, the signal given to the running steps is
 * aborted, and once every running step has settled the first error is thrown: nothing is left running behind.
 */
export async function runInFlight<T, R>(
  items: AsyncIterable<T>,
  step: (item: T, index: number, signal: AbortSignal) => Promise<R>,
  opts: InFlightOptions,
): Promise<R[]> {
  if (!Number.isSafeInteger(opts.concurrency) || opts.concurrency < 1) throw new RangeError(`concurrency must be a whole number of 1 or more, got ${opts.concurrency}`);
  const stop = new AbortController();
  let failure: { error: unknown } | undefined;
  const fail = (error: unknown) => {
    failure ??= { error };
    if (!stop.signal.aborted) stop.abort(error);
  };
  const onOuterAbort = () => fail(opts.signal!.reason);
  if (opts.signal?.aborted) onOuterAbort();
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const stopped = new Promise<typeof STOPPED>((resolve) => {
    if (stop.signal.aborted) resolve(STOPPED);
    stop.signal.addEventListener('abort', () => resolve(STOPPED), { once: true });
  });

  const results: R[] = [];
  const running = new Set<Promise<void>>();
  const iterator = items[Symbol.asyncIterator]();
  let pendingNext = false;
  try {
    for (let index = 0; !stop.signal.aborted; index++) {
      const next = iterator.next();
      pendingNext = true;
      const got = await Promise.race([next, stopped]);
      if (got === STOPPED) {
        next.catch(() => undefined);
        break;
      }
      pendingNext = false;
      if (got.done) break;
      while (running.size >= opts.concurrency && !stop.signal.aborted) await Promise.race([...running, stopped]);
      if (stop.signal.aborted) break;
      const task: Promise<void> = step(got.value, index, stop.signal).then(
        (result) => {
          results[index] = result;
        },
        fail,
      );
      const tracked = task.finally(() => running.delete(tracked));
      running.add(tracked);
    }
  } catch (err) {
    pendingNext = false;
    fail(err);
  } finally {
    await Promise.all(running);
    opts.signal?.removeEventListener('abort', onOuterAbort);
    // Lets the sequence release what it holds; with a read still pending (a stalled source) the caller's
    // destroying the source ends it instead.
    if (failure) {
      const closing = iterator.return?.();
      if (pendingNext) closing?.catch(() => undefined);
      else await closing?.catch(() => undefined);
    }
  }
  if (failure) throw failure.error;
  return results;
}
