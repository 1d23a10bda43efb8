// Uploads a file in parts without holding any part in memory, whatever the part size: each part is a range of the
// file, read twice. First, in file order and one part ahead of those in flight, through one small reused buffer:
// the part's MD5 (its Content-MD5), the sha256 the request is signed with where the client signs payloads (plain
// HTTP), and the whole file's sha256. Then as the request body, a stream of the range opened anew on every try;
// that second read mostly comes from the page cache (at most concurrency + 1 parts were read since). Memory is the
// streams' buffers, so a 5 TiB file in 525 MiB parts costs what a small one does.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import type { PutResult } from './index.ts';
import { putPart, putWhole, retried, uploadMultipart, type FileRangeBody, type MultipartTarget } from './multipart.ts';
import { partSizeFor } from './part-size.ts';
import { Throttle, type RateLimit } from '../streams/index.ts';

export interface FileUploadTarget extends MultipartTarget {
  /** Paces the bytes sent, over all parts in flight. */
  rate?: RateLimit;
  /** Called after each part is stored, with the bytes stored so far. */
  progress?: (bytesStored: number) => void;
}

/** Bytes read at a time by the first pass; the one buffer it uses. */
const SCAN_BYTES = 1024 * 1024;
/** Bytes read at a time for a request body. */
const SEND_CHUNK_BYTES = 64 * 1024;

interface FileRange extends FileRangeBody {
  offset: number;
}

/** Sends `file` (of `target.size` bytes when given, else its size now) to the target; returns its size and sha256. */
export async function uploadFile(file: string, target: FileUploadTarget): Promise<PutResult & { parts: number }> {
  const handle = await open(file, 'r');
  try {
    const size = (await handle.stat()).size;
    if (target.size !== undefined && size !== target.size) throw new Error(`${file} is ${size} bytes, ${target.size} were expected`);
    const partSize = partSizeFor(size, target.limits);
    const whole = createHash('sha256');
    const scan = new RangeScanner(handle, file, whole, { md5: target.partChecksums !== false, sha256: target.client.enableSHA256 });
    const body = (offset: number, length: number) => scan.range(offset, length, () => openRange(file, offset, length, target.rate));
    let stored = 0;
    const done = (length: number) => target.progress?.((stored += length));

    if (size <= partSize) {
      const range = size ? await body(0, size) : Buffer.alloc(0);
      await retried(`PUT ${target.key}`, () => putWhole(target, range, target.signal), target.signal);
      done(size);
      return { bytes: size, sha256: whole.digest('hex'), parts: 1 };
    }
    async function* ranges(): AsyncGenerator<FileRange> {
      for (let offset = 0; offset < size; offset += partSize) yield body(offset, Math.min(partSize, size - offset));
    }
    const { parts } = await uploadMultipart(target, ranges(), async (range, partNumber, uploadId, signal) => {
      const etag = await putPart(target, uploadId, partNumber, range, signal);
      done(range.length);
      return etag;
    });
    return { bytes: size, sha256: whole.digest('hex'), parts };
  } finally {
    await handle.close();
  }
}

/** The first pass: reads ranges in file order into one buffer, hashing each range and the whole file. */
class RangeScanner {
  private readonly buffer = Buffer.allocUnsafeSlow(SCAN_BYTES);
  private next = 0;

  constructor(
    private readonly handle: FileHandle,
    private readonly file: string,
    private readonly whole: Hash,
    private readonly per: { md5: boolean; sha256: boolean },
  ) {}

  async range(offset: number, length: number, openStream: () => Readable): Promise<FileRange> {
    if (offset !== this.next) throw new Error(`internal: ranges are read in file order (${offset} after ${this.next})`);
    const md5 = this.per.md5 ? createHash('md5') : undefined;
    const sha256 = this.per.sha256 ? createHash('sha256') : undefined;
    for (let at = offset; at < offset + length; ) {
      const { bytesRead } = await this.handle.read(this.buffer, 0, Math.min(this.buffer.length, offset + length - at), at);
      if (bytesRead === 0) throw new Error(`${this.file} ended at byte ${at} while being read (it was ${offset + length} bytes or more): it changed during the upload`);
      const chunk = this.buffer.subarray(0, bytesRead);
      this.whole.update(chunk);
      md5?.update(chunk);
      sha256?.update(chunk);
      at += bytesRead;
    }
    this.next = offset + length;
    return { offset, length, md5: md5?.digest(), sha256: sha256?.digest('hex'), open: openStream };
  }
}

/** A stream of exactly `length` bytes of `file` from `offset`, paced by `rate`. */
function openRange(file: string, offset: number, length: number, rate: RateLimit | undefined): Readable {
  const bytes = createReadStream(file, { start: offset, end: offset + length - 1, highWaterMark: SEND_CHUNK_BYTES });
  const checked = new ExactLength(length, file);
  // Errors reach the last stream, the request body; the request reports them.
  if (!rate) return pipeline(bytes, checked, () => undefined);
  return pipeline(bytes, checked, new Throttle(rate), () => undefined);
}

/** Fails a range that ends short (a file truncated between the two reads), which would otherwise leave the request waiting for bytes. */
class ExactLength extends Transform {
  private seen = 0;

  constructor(
    private readonly length: number,
    private readonly file: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    done(this.seen === this.length ? null : new Error(`${this.file} gave ${this.seen} bytes of a ${this.length}-byte part: it changed during the upload`));
  }
}
