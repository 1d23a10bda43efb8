// Downloads one object as a stream of its bytes in order, with several ranged GETs in flight: one TCP stream
// rarely fills the link to an S3 server, a few do. The object is pinned to the version stat saw (its ETag, sent
// as If-Match and compared on every answer), so a download never mixes two versions of an overwritten object.
// Memory: each range in flight or waiting for its turn is one buffer of `rangeBytes`, at most `concurrency` of
// them plus the one being handed to the consumer. A range cut by a network fault is asked again from the byte
// where it was cut, a few times; any other error, an abort or the consumer going away tears everything down.
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { isTransientStorageError } from './multipart.ts';
import { ObjectChangedError, StorageError, type ObjectPin, type ObjectStore } from './index.ts';

export const DEFAULT_RANGE_BYTES = 16 * 1024 * 1024;
export const DEFAULT_DOWNLOAD_CONCURRENCY = 4;

/** Waits between the tries of one range: about 7 s of outage is ridden out, as for uploads. */
const RANGE_RETRY_DELAYS_MS = [1000, 2000, 4000];

export interface RangedDownloadOptions {
  /** Ranges in flight (at least 1). */
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
  const pin: ObjectPin = { size: info.size, etag: info.etag };
  return { stream: new RangedReadable(store, key, pin, opts), size: info.size, etag: info.etag };
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
  private readonly rangeBytes: number;
  private readonly concurrency: number;
  private readonly retryDelays: number[];
  private nextToStart = 0;
  private nextToPush = 0;
  private wanted = false;
  private readonly onAbort = () => this.destroy(abortError(this.opts.signal!));

  constructor(
    private readonly store: ObjectStore,
    private readonly key: string,
    private readonly pin: ObjectPin,
    private readonly opts: RangedDownloadOptions,
  ) {
    super({ highWaterMark: 0 });
    this.rangeBytes = Math.max(1, opts.rangeBytes ?? DEFAULT_RANGE_BYTES);
    this.concurrency = Math.max(1, Math.floor(opts.concurrency));
    this.retryDelays = opts.retryDelaysMs ?? RANGE_RETRY_DELAYS_MS;
    // A small object (or an empty one) is one range: one plain GET.
    for (let offset = 0; offset < pin.size || this.ranges.length === 0; offset += this.rangeBytes) {
      this.ranges.push({ offset, length: Math.min(this.rangeBytes, pin.size - offset), filled: 0, done: false });
    }
    opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  override _read(): void {
    this.wanted = true;
    this.startRanges();
    this.pushReady();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.opts.signal?.removeEventListener('abort', this.onAbort);
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
      this.wanted = false;
      if (data.length) this.wanted = this.push(data);
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
        const delay = this.retryDelays[attempt];
        if (err instanceof ObjectChangedError) throw err;
        if (delay === undefined || !isTransient(err)) throw this.failure(range, err, attempt + 1);
        try {
          await sleep(delay, undefined, this.opts.signal ? { signal: this.opts.signal } : undefined);
        } catch {
          return; // aborted: onAbort destroys the stream
        }
      }
    }
  }

  /** Reads the rest of `range` (from where an earlier try was cut) into its buffer. */
  private async readInto(range: Range): Promise<void> {
    const body = await this.store.getRange(this.key, range.offset + range.filled, range.length - range.filled, this.pin);
    if (this.destroyed) {
      body.destroy();
      return;
    }
    range.body = body;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (range.filled + chunk.length > range.length) {
          throw new StorageError(`the server sent more than the ${range.length} bytes asked for`);
        }
        chunk.copy(range.buffer!, range.filled);
        range.filled += chunk.length;
      }
    } finally {
      range.body = undefined;
    }
    if (range.filled < range.length) throw new ShortRangeError(`the answer ended after ${range.filled} of ${range.length} bytes`);
  }

  private failure(range: Range, err: unknown, tries: number): StorageError {
    const e = err as { code?: string; message?: string };
    const why = [e.code, e.message].filter(Boolean).join(': ') || String(err);
    const bytes = `bytes ${range.offset}-${range.offset + range.length - 1}`;
    return new StorageError(`download of ${this.key} from ${this.store.location} failed (${bytes}, ${tries} ${tries === 1 ? 'try' : 'tries'}): ${why}`);
  }
}

/** A response shorter than asked for without an error (a connection closed early). */
class ShortRangeError extends Error {}

function isTransient(err: unknown): boolean {
  return err instanceof ShortRangeError || isTransientStorageError(err);
}

function abortError(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new Error(String(r ?? 'aborted'));
}
