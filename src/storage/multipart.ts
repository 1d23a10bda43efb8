// Uploads a stream to S3 in parts sized per upload (part-size.ts), so any object S3 takes fits its part limit (the
// minio client's putObject caps objects at 10,000 × a fixed part size and sends one part at a time). Parts go up
// `concurrency` at a time (in-flight.ts): one TCP stream rarely fills the link. Memory is one part-size buffer per
// part in flight plus the one filling; sent buffers are reused, since the garbage collector frees them late. Each
// part carries its Content-MD5 and its ETag is compared with it too (unless stored encrypted, when the ETag is no
// MD5); a part is retried through a short outage or a damaged body, and a failed upload is aborted, leaving none
// unfinished. Files go through file-upload.ts: their parts are ranges of the file, sent with the same requests.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as Minio from 'minio';
import { runInFlight } from './in-flight.ts';
import { partSizeFor, partSizeOfUnknownLength, type PartLimits } from './part-size.ts';

export interface MultipartTarget {
  client: Minio.Client;
  bucket: string;
  key: string;
  metadata: Record<string, string>;
  limits: PartLimits;
  /** Parts in flight at once (at least 1). */
  concurrency: number;
  /** Send each part's Content-MD5 and compare the ETag the server answers with (default true). */
  partChecksums?: boolean;
  /** Exact length when known: the part size is then computed once; a stream of another length fails. */
  size?: number;
  signal?: AbortSignal;
}

export interface Part {
  data: Buffer;
  last: boolean;
}

/**
 * A request body: a buffer, or a range of a file read anew on every try (file-upload.ts), with its MD5 (when part
 * checksums are on) and, for a client that signs payloads (plain HTTP), its sha256 computed beforehand.
 */
export type PartBody = Buffer | FileRangeBody;

export interface FileRangeBody {
  length: number;
  md5?: Buffer;
  sha256?: string;
  /** A new stream of exactly `length` bytes (it fails when the file has fewer). */
  open(): Readable;
}

/** Waits between tries of one request: about 7 s of outage is ridden out before the upload fails. */
const PART_RETRY_DELAYS_MS = [1000, 2000, 4000];
/** Waits before sending again a body the server refused as damaged: damage in transit is no matter of time. */
const DIGEST_RETRY_DELAYS_MS = [100, 300, 600];

/** Sends `source` to the target; returns the number of parts (1 for a plain PUT). */
export async function uploadInParts(source: AsyncIterable<Buffer>, target: MultipartTarget): Promise<{ parts: number }> {
  const sizeOf = target.size === undefined ? (n: number) => partSizeOfUnknownLength(n, target.limits) : constant(partSizeFor(target.size, target.limits));
  const buffers = new PartBuffers();
  const parts = splitIntoParts(source, sizeOf, target.size, buffers.take)[Symbol.asyncIterator]();
  const first = await parts.next();
  if (first.done) throw new Error('internal: a stream yields at least one part');
  if (first.value.last) {
    const data = first.value.data;
    await retried(`PUT ${target.key}`, () => putWhole(target, data), target.signal);
    return { parts: 1 };
  }

  return uploadMultipart(target, startingWith(first.value, parts), async (part, partNumber, uploadId, signal) => {
    if (partNumber > target.limits.maxParts) throw new Error(`the stream needs more than ${target.limits.maxParts} parts`);
    const etag = await putPart(target, uploadId, partNumber, part.data, signal);
    buffers.give(part.data);
    return etag;
  });
}

/**
 * Starts a multipart upload, sends each of `parts` with `send` (which returns the part's ETag), `concurrency` in
 * flight, and completes the upload; on any failure the upload is aborted.
 */
export async function uploadMultipart<P>(
  target: MultipartTarget,
  parts: AsyncIterable<P>,
  send: (part: P, partNumber: number, uploadId: string, signal: AbortSignal) => Promise<string>,
): Promise<{ parts: number }> {
  const headers = metadataHeaders(target.metadata);
  const uploadId = await retried(`start of the multipart upload of ${target.key}`, () => target.client.initiateNewMultipartUpload(target.bucket, target.key, headers), target.signal);
  try {
    const etags = await runInFlight(
      parts,
      async (part, index, signal) => ({ part: index + 1, etag: await send(part, index + 1, uploadId, signal) }),
      { concurrency: target.concurrency, signal: target.signal },
    );
    await retried(`completion of ${target.key}`, () => target.client.completeMultipartUpload(target.bucket, target.key, uploadId, etags), target.signal);
    return { parts: etags.length };
  } catch (err) {
    await target.client.abortMultipartUpload(target.bucket, target.key, uploadId).catch(() => undefined);
    throw err;
  }
}

/**
 * Cuts a stream into parts of `sizeOf(partNumber)` bytes (the last may be shorter); `last` is known without reading
 * a whole extra part ahead. An empty stream is one empty part. Each part is one buffer filled in place; with
 * `announced` (the exact length) no buffer is larger than what is left, and a stream of another length fails.
 */
export async function* splitIntoParts(
  source: AsyncIterable<Buffer>,
  sizeOf: (partNumber: number) => number,
  announced?: number,
  allocate: (size: number) => Buffer = Buffer.allocUnsafeSlow,
): AsyncGenerator<Part> {
  let partNumber = 1;
  let total = 0;
  let filling: Buffer | undefined;
  let filled = 0;
  // A full part read exactly to a chunk boundary: whether it is the last is known only when more data comes.
  let held: Buffer | undefined;
  for await (const chunk of source) {
    if (!chunk.length) continue;
    if (announced !== undefined && total + chunk.length > announced) throw new Error(`the stream is longer than the ${announced} bytes announced`);
    if (held) {
      yield { data: held, last: false };
      held = undefined;
    }
    for (let offset = 0; offset < chunk.length; ) {
      filling ??= allocate(announced === undefined ? sizeOf(partNumber) : Math.min(sizeOf(partNumber), announced - total));
      const copied = chunk.copy(filling, filled, offset);
      offset += copied;
      filled += copied;
      total += copied;
      if (filled < filling.length) continue;
      const part = filling;
      filling = undefined;
      filled = 0;
      partNumber++;
      if (offset < chunk.length) yield { data: part, last: false };
      else held = part;
    }
  }
  if (announced !== undefined && total !== announced) throw new Error(`the stream has ${total} bytes, ${announced} were announced`);
  if (held) yield { data: held, last: true };
  else if (filled > 0 || partNumber === 1) yield { data: (filling ?? Buffer.alloc(0)).subarray(0, filled), last: true };
}

/** Buffers of sent parts, handed out again for the next parts of the same size. */
class PartBuffers {
  private free: Buffer[] = [];

  readonly take = (size: number): Buffer => {
    const reused = this.free.pop();
    if (reused?.length === size) return reused;
    this.free = []; // a new part size (the last part, or the next tier of a stream of unknown length)
    return Buffer.allocUnsafeSlow(size);
  };

  /** `data` (a part, or the start of one) was sent whole and acknowledged: its buffer is free. */
  give(data: Buffer): void {
    this.free.push(Buffer.from(data.buffer, 0, data.buffer.byteLength));
  }
}

/** Network errors and the S3 answers that mean "try again later". */
export function isTransientStorageError(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  const transientCodes = ['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_SOCKET'];
  const transientS3 = ['InternalError', 'ServiceUnavailable', 'SlowDown', 'RequestTimeout', 'RequestTimeTooSkewed'];
  if (e.code && (transientCodes.includes(e.code) || transientS3.includes(e.code))) return true;
  return /socket hang up|Retryable HTTP status|aborted|premature close/i.test(e.message ?? '');
}

/** A request body that reached the server other than it was sent: refused by the server, or stored with another MD5. */
export function isDamagedBodyError(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'BadDigest' || code === 'XAmzContentSHA256Mismatch';
}

/** The server stored a body whose MD5 (its ETag) is not the one sent. */
class DamagedBodyError extends Error {
  readonly code = 'BadDigest';
}

export async function retried<T>(what: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn();
    } catch (err) {
      const delay = isDamagedBodyError(err) ? DIGEST_RETRY_DELAYS_MS[attempt] : isTransientStorageError(err) ? PART_RETRY_DELAYS_MS[attempt] : undefined;
      if (delay === undefined) {
        if (attempt > 0 && err instanceof Error) err.message = `${what}: ${err.message} (after ${attempt + 1} tries)`;
        throw err;
      }
      await sleep(delay, undefined, signal ? { signal } : undefined);
    }
  }
}

/** Sends the whole object in one PUT (one try: the caller retries). */
export async function putWhole(target: MultipartTarget, body: PartBody, signal?: AbortSignal): Promise<void> {
  const md5 = md5Of(target, body);
  const res = await send(target, { method: 'PUT', bucketName: target.bucket, objectName: target.key, headers: { ...metadataHeaders(target.metadata), ...md5Header(md5) } }, body, signal);
  await drain(res);
  if (md5) checkStoredMd5(res, md5);
}

/** Sends one part, retried; returns its ETag. */
export async function putPart(target: MultipartTarget, uploadId: string, partNumber: number, body: PartBody, signal: AbortSignal): Promise<string> {
  const md5 = md5Of(target, body);
  return retried(
    `part ${partNumber} of ${target.key}`,
    async () => {
      const query = `partNumber=${partNumber}&uploadId=${uriEscape(uploadId)}`;
      const res = await send(target, { method: 'PUT', bucketName: target.bucket, objectName: target.key, query, headers: md5Header(md5) }, body, signal);
      await drain(res);
      if (md5) checkStoredMd5(res, md5);
      return etagOf(res);
    },
    signal,
  );
}

function md5Of(target: MultipartTarget, body: PartBody): Buffer | undefined {
  if (target.partChecksums === false) return undefined;
  return Buffer.isBuffer(body) ? createHash('md5').update(body).digest() : body.md5;
}

type RequestOptions = Parameters<Minio.Client['makeRequestAsync']>[0];

/**
 * One request with `body`. A file range is a stream of known length, signed with its sha256 where the client signs
 * payloads (plain HTTP; over HTTPS it sends UNSIGNED-PAYLOAD); aborting `signal` cuts it off.
 */
async function send(target: MultipartTarget, options: RequestOptions, body: PartBody, signal?: AbortSignal): Promise<IncomingMessage> {
  if (Buffer.isBuffer(body)) return target.client.makeRequestAsync(options, body, [200]);
  const signed = target.client.enableSHA256;
  if (signed && !body.sha256) throw new Error('internal: a client that signs payloads needs the sha256 of a file range');
  const stream = body.open();
  const stop = () => signal && stream.destroy(signal.reason instanceof Error ? signal.reason : new Error('upload aborted'));
  if (signal?.aborted) stop();
  signal?.addEventListener('abort', stop, { once: true });
  try {
    const headers = { ...options.headers, 'content-length': String(body.length) };
    return await target.client.makeRequestStreamAsync({ ...options, headers }, stream, signed ? body.sha256! : '', [200], '');
  } finally {
    signal?.removeEventListener('abort', stop);
    stream.destroy();
  }
}

function md5Header(md5: Buffer | undefined): Record<string, string> {
  return md5 ? { 'Content-MD5': md5.toString('base64') } : {};
}

/**
 * S3 and most stores answer with the MD5 of the stored body as its ETag (not for encrypted objects: SSE-KMS, SSE-C
 * and some stores' SSE-S3, which all say so in x-amz-server-side-encryption headers, and check Content-MD5 anyway).
 */
function checkStoredMd5(res: IncomingMessage, md5: Buffer): void {
  if (Object.keys(res.headers).some((h) => h.startsWith('x-amz-server-side-encryption'))) return;
  const etag = etagOf(res).toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(etag) || etag === md5.toString('hex')) return;
  throw new DamagedBodyError(`stored with MD5 ${etag}, ${md5.toString('hex')} was sent (damaged in transit)`);
}

function etagOf(res: IncomingMessage): string {
  return String(res.headers.etag ?? '').replace(/^(W\/)?"|"$/g, '').replace(/&quot;/g, '');
}

function drain(res: IncomingMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    res.on('end', resolve).on('error', reject);
    res.resume();
  });
}

/** `first`, then the rest of `rest`; closing it closes `rest`. */
async function* startingWith<T>(first: T, rest: AsyncIterator<T>): AsyncGenerator<T> {
  try {
    yield first;
    for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
  } finally {
    await rest.return?.();
  }
}

export function metadataHeaders(metadata: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata).map(([k, v]) => [`x-amz-meta-${k}`, v]));
}

/** RFC 3986 escaping of a query value, as S3's signature expects. */
function uriEscape(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function constant(n: number): () => number {
  return () => n;
}
