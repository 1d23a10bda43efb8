// Downloads one object as a stream of its bytes in order, with several ranged GETs in flight (one TCP stream rarely
// fills the link), pinned to the version stat saw (If-Match, and the ETag compared on every answer) so an
// overwritten object is never mixed. Memory: one `rangeBytes` buffer per range in flight or waiting, at most
// `concurrency` plus the one being consumed. A range cut by a network fault resumes from the byte where it was cut;
// any other error, an abort or the consumer leaving tears everything down. One range, or concurrency 1, is a single
// streamed GET, for servers where a range costs the whole object (moto).
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { abortError } from '../errors.ts';
import { isTransientStorageError } from './multipart.ts';
import { ObjectChangedError, StorageError, type ObjectPin, type ObjectStore } from './index.ts';

export const DEFAULT_RANGE_BYTES = 16 * 1024 * 1024;
export const DEFAULT_DOWNLOAD_CONCURRENCY = 4;

/** Waits between the tries of one range: about 7 s of outage is ridden out, as for uploads. */
const RANGE_RETRY_DELAYS_MS = [1000, 2000, 4000];

export interface RangedDownloadOptions {
  /** Ranges in flight; 1 is one streamed GET. */
  concurrency: number;
  rangeBytes?: number;
  signal?: AbortSignal;
  /** Waits before each retry of a range (tests shorten them). */
  retryDelaysMs?: number[];
}

export interface RangedDownload {
  stream: Readable;
  /** The object's length, as stat saw it. */
  size: number;
  etag?: string;
}

/** Stats `key` and opens its download; nothing is requested until the stream is read. */
export async function openRangedDownload(store: ObjectStore, key: string, opts: RangedDownloadOptions): Promise<RangedDownload> {
  opts.signal?.throwIfAborted();
  const info = await store.stat(key);
  if (!info) throw new StorageError(`download of ${key} from ${store.location} failed: the object does not exist`);
  const source: Source = { store, key, pin: { size: info.size, etag: info.etag }, retryDelays: opts.retryDelaysMs ?? RANGE_RETRY_DELAYS_MS };
  const rangeBytes = Math.max(1, opts.rangeBytes ?? DEFAULT_RANGE_BYTES);
  const concurrency = Math.max(1, Math.floor(opts.concurrency));
  const stream = concurrency === 1 || info.size <= rangeBytes ? streamedDownload(source) : new RangedReadable(source, rangeBytes, concurrency);
  if (opts.signal) {
    const signal = opts.signal;
    const onAbort = () => stream.destroy(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    stream.once('close', () => signal.removeEventListener('abort', onAbort));
  }
  return { stream, size: info.size, etag: info.etag };
}

interface Source {
  store: ObjectStore;
  key: string;
  pin: ObjectPin;
  retryDelays: number[];
}

/** One GET read as it comes; a cut is resumed from the byte reached (the tries count afresh after a range's worth). */
function streamedDownload(src: Source): Readable {
  const { size } = src.pin;
  // Closing the stream ends the generator only at its next yield: no request may start meanwhile.
  const closed = new AbortController();
  async function* bytes(): AsyncGenerator<Buffer> {
    let offset = 0;
    let failedAt = -DEFAULT_RANGE_BYTES;
    for (let attempt = 0; !closed.signal.aborted; attempt++) {
      try {
        const body = await src.store.getRange(src.key, offset, size - offset, src.pin);
        if (closed.signal.aborted) {
          body.destroy();
          return;
        }
        for await (const chunk of body as AsyncIterable<Buffer>) {
          if (offset + chunk.length > size) throw new StorageError(`the server sent more than the ${size} bytes of the object`);
          offset += chunk.length;
          yield chunk;
        }
        if (offset < size) throw new ShortRangeError(`the answer ended after ${offset} of ${size} bytes`);
        return;
      } catch (err) {
        if (offset - failedAt >= DEFAULT_RANGE_BYTES) {
          attempt = 0;
          failedAt = offset;
        }
        await pauseBeforeRetry(src, err, attempt, `bytes ${offset}-${size - 1}`, closed.signal);
      }
    }
  }
  const stream = Readable.from(bytes(), { objectMode: false });
  stream.once('close', () => closed.abort());
  return stream;
}

/** Throws the error unless it is worth another try, then waits before it. */
async function pauseBeforeRetry(src: Source, err: unknown, attempt: number, what: string, closed: AbortSignal): Promise<void> {
  if (err instanceof ObjectChangedError) throw err;
  const delay = src.retryDelays[attempt];
  if (delay === undefined || !isTransient(err)) {
    const e = err as { code?: string; message?: string };
    const why = [e.code, e.message].filter(Boolean).join(': ') || String(err);
    const tries = attempt + 1;
    throw new StorageError(`download of ${src.key} from ${src.store.location} failed (${what}, ${tries} ${tries === 1 ? 'try' : 'tries'}): ${why}`);
  }
  await sleep(delay, undefined, { signal: closed });
}

interface Range {
  offset: number;
  length: number;
  buffer?: Buffer;
  filled: number;
  done: boolean;
  /** The response being read, destroyed on tear-down. */
  body?: Readable;
}

class RangedReadable extends Readable {
  private readonly ranges: Range[] = [];
  private nextToStart = 0;
  private nextToPush = 0;
  private wanted = false;
  private readonly teardown = new AbortController();

  constructor(
    private readonly src: Source,
    rangeBytes: number,
    private readonly concurrency: number,
  ) {
    super({ highWaterMark: 0 });
    for (let offset = 0; offset < src.pin.size; offset += rangeBytes) {
      this.ranges.push({ offset, length: Math.min(rangeBytes, src.pin.size - offset), filled: 0, done: false });
    }
  }

  override _read(): void {
    this.wanted = true;
    this.startRanges();
    this.pushReady();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.teardown.abort();
    for (const r of this.ranges) {
      r.body?.destroy();
      r.buffer = undefined;
    }
    done(err);
  }

  /** Keeps `concurrency` ranges fetched or fetching ahead of the consumer. */
  private startRanges(): void {
    while (!this.destroyed && this.nextToStart < this.ranges.length && this.nextToStart < this.nextToPush + this.concurrency) {
      const range = this.ranges[this.nextToStart++]!;
      this.fetch(range).then(
        () => this.pushReady(),
        (err: unknown) => this.destroy(err as Error),
      );
    }
  }

  private pushReady(): void {
    while (this.wanted && !this.destroyed && this.ranges[this.nextToPush]?.done) {
      const range = this.ranges[this.nextToPush++]!;
      const data = range.buffer!;
      range.buffer = undefined;
      this.wanted = this.push(data);
      if (this.nextToPush === this.ranges.length) {
        this.push(null);
        return;
      }
      this.startRanges();
    }
  }

  private async fetch(range: Range): Promise<void> {
    range.buffer = Buffer.allocUnsafe(range.length);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.readInto(range);
        range.done = true;
        return;
      } catch (err) {
        if (this.destroyed) return;
        await pauseBeforeRetry(this.src, err, attempt, `bytes ${range.offset}-${range.offset + range.length - 1}`, this.teardown.signal).catch((e: unknown) => {
          if (!this.destroyed) throw e;
        });
        if (this.destroyed) return;
      }
    }
  }

  /** Reads the rest of `range` (from where an earlier try was cut) into its buffer. */
  private async readInto(range: Range): Promise<void> {
    const { store, key, pin } = this.src;
    const body = await store.getRange(key, range.offset + range.filled, range.length - range.filled, pin);
    if (this.destroyed) {
      body.destroy();
      return;
    }
    range.body = body;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (range.filled + chunk.length > range.length) throw new StorageError(`the server sent more than the ${range.length} bytes asked for`);
        chunk.copy(range.buffer!, range.filled);
        range.filled += chunk.length;
      }
    } finally {
      range.body = undefined;
    }
    if (range.filled < range.length) throw new ShortRangeError(`the answer ended after ${range.filled} of ${range.length} bytes`);
  }
}

/** A response shorter than asked for without an error (a connection closed early). */
class ShortRangeError extends Error {}

function isTransient(err: unknown): boolean {
  return err instanceof ShortRangeError || isTransientStorageError(err);
}
