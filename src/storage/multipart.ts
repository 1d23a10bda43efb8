// Uploads a stream to S3 in parts sized per upload (part-size.ts), so any object S3 takes fits its part limit;
// the minio client's own putObject uses one fixed part size when one is configured (capping objects at
// 10,000 × part_size_mb) and numbers parts from 2. Each part request is retried through a short network
// outage; a longer one fails the upload, which is then aborted, so no unfinished upload is left behind.
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as Minio from 'minio';
import { partSizeFor, partSizeOfUnknownLength, type PartLimits } from './part-size.ts';

export interface MultipartTarget {
  client: Minio.Client;
  bucket: string;
  key: string;
  metadata: Record<string, string>;
  limits: PartLimits;
  /** Exact length when known: the part size is then computed once; a stream of another length fails. */
  size?: number;
  signal?: AbortSignal;
}

export interface Part {
  data: Buffer;
  last: boolean;
}

/** Waits between tries of one request: about 7 s of outage is ridden out before the upload fails. */
const PART_RETRY_DELAYS_MS = [1000, 2000, 4000];

/** Sends `source` to the target; returns the number of parts (1 for a plain PUT). */
export async function uploadInParts(source: AsyncIterable<Buffer>, target: MultipartTarget): Promise<{ parts: number }> {
  const sizeOf = target.size === undefined ? (n: number) => partSizeOfUnknownLength(n, target.limits) : constant(partSizeFor(target.size, target.limits));
  const parts = splitIntoParts(source, sizeOf)[Symbol.asyncIterator]();
  const first = await parts.next();
  if (first.done) throw new Error('internal: a stream yields at least one part');
  if (first.value.last) {
    checkLength(target, first.value.data.length);
    await retried(`PUT ${target.key}`, () => putWhole(target, first.value.data), target.signal);
    return { parts: 1 };
  }

  const headers = metadataHeaders(target.metadata);
  const uploadId = await retried(`start of the multipart upload of ${target.key}`, () => target.client.initiateNewMultipartUpload(target.bucket, target.key, headers), target.signal);
  try {
    const etags: Array<{ part: number; etag: string }> = [];
    let sent = 0;
    for (let next: IteratorResult<Part> = first; !next.done; next = await parts.next()) {
      target.signal?.throwIfAborted();
      const partNumber = etags.length + 1;
      if (partNumber > target.limits.maxParts) throw new Error(`the stream needs more than ${target.limits.maxParts} parts`);
      sent += next.value.data.length;
      if (next.value.last) checkLength(target, sent);
      const data = next.value.data;
      const uploaded = await retried(
        `part ${partNumber} of ${target.key}`,
        () => target.client.uploadPart({ bucketName: target.bucket, objectName: target.key, uploadID: uploadId, partNumber, headers: {} }, data),
        target.signal,
      );
      etags.push({ part: partNumber, etag: uploaded.etag });
    }
    await retried(`completion of ${target.key}`, () => target.client.completeMultipartUpload(target.bucket, target.key, uploadId, etags), target.signal);
    return { parts: etags.length };
  } catch (err) {
    await target.client.abortMultipartUpload(target.bucket, target.key, uploadId).catch(() => undefined);
    throw err;
  }
}

/**
 * Cuts a stream into parts of `sizeOf(partNumber)` bytes (the last may be shorter); `last` is known without reading
 * a whole extra part ahead. An empty stream is one empty part.
 */
export async function* splitIntoParts(source: AsyncIterable<Buffer>, sizeOf: (partNumber: number) => number): AsyncGenerator<Part> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let partNumber = 1;
  // A full part read exactly to a chunk boundary: whether it is the last is known only when more data comes.
  let held: Buffer | undefined;
  for await (const chunk of source) {
    if (!chunk.length) continue;
    if (held) {
      yield { data: held, last: false };
      held = undefined;
    }
    pending.push(chunk);
    pendingBytes += chunk.length;
    while (pendingBytes >= sizeOf(partNumber)) {
      const all = Buffer.concat(pending);
      const part = all.subarray(0, sizeOf(partNumber));
      const rest = all.subarray(part.length);
      pending = rest.length ? [rest] : [];
      pendingBytes = rest.length;
      partNumber++;
      if (rest.length) yield { data: part, last: false };
      else held = part;
    }
  }
  if (held) yield { data: held, last: true };
  else if (pendingBytes > 0 || partNumber === 1) yield { data: Buffer.concat(pending), last: true };
}

/** Network errors and the S3 answers that mean "try again later". */
export function isTransientStorageError(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  const transientCodes = ['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_SOCKET'];
  const transientS3 = ['InternalError', 'ServiceUnavailable', 'SlowDown', 'RequestTimeout', 'RequestTimeTooSkewed'];
  if (e.code && (transientCodes.includes(e.code) || transientS3.includes(e.code))) return true;
  return /socket hang up|Retryable HTTP status|aborted|premature close/i.test(e.message ?? '');
}

async function retried<T>(what: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn();
    } catch (err) {
      const delay = PART_RETRY_DELAYS_MS[attempt];
      if (delay === undefined || !isTransientStorageError(err)) {
        if (attempt > 0 && err instanceof Error) err.message = `${what}: ${err.message} (after ${attempt + 1} tries)`;
        throw err;
      }
      await sleep(delay, undefined, signal ? { signal } : undefined);
    }
  }
}

async function putWhole(target: MultipartTarget, data: Buffer): Promise<void> {
  const res = await target.client.makeRequestAsync(
    { method: 'PUT', bucketName: target.bucket, objectName: target.key, headers: metadataHeaders(target.metadata) },
    data,
    [200],
  );
  await drain(res);
}

function drain(res: IncomingMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    res.on('end', resolve).on('error', reject);
    res.resume();
  });
}

function metadataHeaders(metadata: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata).map(([k, v]) => [`x-amz-meta-${k}`, v]));
}

function checkLength(target: MultipartTarget, bytes: number): void {
  if (target.size !== undefined && bytes !== target.size) throw new Error(`the stream has ${bytes} bytes, ${target.size} were announced`);
}

function constant(n: number): () => number {
  return () => n;
}
