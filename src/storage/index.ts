// Object storage behind one small interface, so MinIO, Ceph, AWS and moto behave the same to the rest of
// the code, and a fault-injecting or encrypting store can wrap it. Owns our multipart upload (parts in flight,
// each with its Content-MD5, sized per object), parallel ranged downloads pinned to one ETag, and the verification
// that tells a wrong stored object from a read error.
// May import: config, streams.
import type { IncomingMessage } from 'node:http';
import { pipeline as streamPipeline, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import * as Minio from 'minio';
import type { OssConfig, VerifyMode } from '../config/index.ts';
import { uploadFile } from './file-upload.ts';
import { uploadInParts, type MultipartTarget } from './multipart.ts';
import { PartSizeError, S3_LIMITS } from './part-size.ts';
import { HashingCounter, RateLimit, throttle } from '../streams/index.ts';

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified?: Date;
  metadata: Record<string, string>;
  /** The server's ETag (quotes stripped), which changes when the object is overwritten. */
  etag?: string;
}

/** The version of an object a download reads (from stat): its size and ETag. */
export interface ObjectPin {
  size: number;
  etag?: string;
}

export interface PutResult {
  bytes: number;
  sha256: string;
}

export interface ObjectStore {
  readonly bucket: string;
  /** Where the store is, for messages (never includes credentials). */
  readonly location: string;
  /** Throws StorageError when the endpoint is unreachable or the bucket does not exist. */
  checkBucket(): Promise<void>;
  /**
   * Streams `body` to `key`, hashing as it goes. On failure the upload is aborted; only when the store is
   * unreachable for the abort too may an unfinished upload stay (removeIncompleteUploads clears it later).
   */
  putStream(key: string, body: Readable, opts?: PutOptions): Promise<PutResult>;
  /**
   * Uploads the file at `path` as putStream does a stream (same checks, retries, abort, rate limit, result), with
   * no part held in memory: each part is sent as a range read from the file. With `size`, a file of another size
   * is refused.
   */
  putFile(key: string, path: string, opts?: PutFileOptions): Promise<PutResult>;
  stat(key: string): Promise<ObjectInfo | undefined>;
  getStream(key: string): Promise<Readable>;
  /**
   * `length` bytes of `key` from `offset` (the whole object in one plain GET when that is all of it), only while
   * the object is still `pin`: an overwritten or deleted object is refused with ObjectChangedError. Other
   * errors are the client's own (their network codes kept, so the caller can tell what to retry).
   */
  getRange(key: string, offset: number, length: number, pin: ObjectPin): Promise<Readable>;
  remove(key: string): Promise<void>;
  /** Aborts every unfinished multipart upload of `key` (left by a killed or cut-off earlier upload). */
  removeIncompleteUploads(key: string): Promise<number>;
  list(prefix?: string): AsyncIterable<ObjectInfo>;
}

export interface PutOptions {
  /** The exact length, when known: the part size is computed from it. */
  size?: number;
  metadata?: Record<string, string>;
  signal?: AbortSignal;
  /** Send every part's MD5 for the server to check (default true; `verify = size` turns it off). */
  partChecksums?: boolean;
}

export interface PutFileOptions extends PutOptions {
  /** Called as parts are stored, with the bytes stored so far. */
  progress?: (bytesStored: number) => void;
}

export class StorageError extends Error {}

/** The stored object is not what was sent (absent, another size, another sha256): it must not be kept. */
export class ObjectMismatchError extends StorageError {}

/** The object changed (overwritten, deleted) while it was being downloaded: the bytes read are of no one version. */
export class ObjectChangedError extends StorageError {}

export class MinioObjectStore implements ObjectStore {
  readonly location: string;
  private readonly client: Minio.Client;
  /** For requests whose body is a stream: the client's own retry would send the spent stream again. */
  private readonly streamingClient: Minio.Client;
  private readonly minPartBytes: number;
  private readonly maxParts: number;
  private readonly uploadConcurrency: number;
  private readonly maxUploadMbPerS: number;

  constructor(
    config: OssConfig,
    readonly bucket: string,
  ) {
    const options: Minio.ClientOptions = {
      endPoint: config.endPoint,
      port: config.port,
      useSSL: config.useSSL,
      accessKey: config.accessKey,
      secretKey: config.secretKey,
      region: config.region,
    };
    this.client = new Minio.Client(options);
    this.streamingClient = new Minio.Client({ ...options, retryOptions: { disableRetry: true } });
    this.minPartBytes = config.partSizeBytes;
    this.maxParts = config.maxParts ?? S3_LIMITS.maxParts;
    this.uploadConcurrency = config.uploadConcurrency ?? 4;
    this.maxUploadMbPerS = config.maxUploadMbPerS ?? 0;
    this.location = `${config.useSSL ? 'https' : 'http'}://${config.endPoint}:${config.port}/${bucket}`;
  }

  async checkBucket(): Promise<void> {
    let exists: boolean;
    try {
      exists = await this.client.bucketExists(this.bucket);
    } catch (err) {
      throw new StorageError(`object storage ${this.location} is unreachable or refused the request: ${describe(err)}`);
    }
    if (!exists) throw new StorageError(`bucket "${this.bucket}" does not exist at ${this.location}; create it or fix bucket_name`);
  }

  async putStream(key: string, body: Readable, opts: PutOptions = {}): Promise<PutResult> {
    const counter = new HashingCounter();
    // The throttle paces the bytes cut into parts, hence the bytes sent, whatever the parts in flight.
    streamPipeline(body, throttle(this.maxUploadMbPerS), counter, () => undefined);
    try {
      await uploadInParts(counter, this.uploadTarget(this.client, key, opts));
    } catch (err) {
      counter.destroy();
      body.destroy();
      throw this.uploadError(key, err);
    }
    return { bytes: counter.bytes, sha256: counter.digest() };
  }

  async putFile(key: string, path: string, opts: PutFileOptions = {}): Promise<PutResult> {
    try {
      const { bytes, sha256 } = await uploadFile(path, {
        ...this.uploadTarget(this.streamingClient, key, opts),
        rate: this.maxUploadMbPerS ? new RateLimit(this.maxUploadMbPerS * 1024 * 1024) : undefined,
        progress: opts.progress,
      });
      return { bytes, sha256 };
    } catch (err) {
      throw this.uploadError(key, err);
    }
  }

  private uploadTarget(client: Minio.Client, key: string, opts: PutOptions): MultipartTarget {
    return {
      client,
      bucket: this.bucket,
      key,
      metadata: { ...opts.metadata },
      limits: { minPartBytes: this.minPartBytes, maxParts: this.maxParts },
      concurrency: this.uploadConcurrency,
      partChecksums: opts.partChecksums ?? true,
      size: opts.size,
      signal: opts.signal,
    };
  }

  private uploadError(key: string, err: unknown): StorageError {
    if (err instanceof PartSizeError) return new StorageError(`upload of ${key} to ${this.location} refused: ${err.message}`);
    return new StorageError(`upload of ${key} to ${this.location} failed: ${describe(err)}`);
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await this.client.statObject(this.bucket, key);
      return { key, size: s.size, lastModified: s.lastModified, metadata: normaliseMetadata(s.metaData), etag: s.etag || undefined };
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'NotFound' || code === 'NoSuchKey') return undefined;
      throw new StorageError(`stat of ${key} at ${this.location} failed: ${describe(err)}`);
    }
  }

  async getStream(key: string): Promise<Readable> {
    try {
      return await this.client.getObject(this.bucket, key);
    } catch (err) {
      throw new StorageError(`download of ${key} from ${this.location} failed: ${describe(err)}`);
    }
  }

  async getRange(key: string, offset: number, length: number, pin: ObjectPin): Promise<Readable> {
    const whole = offset === 0 && length === pin.size;
    const headers: Record<string, string> = pin.etag ? { 'if-match': `"${pin.etag}"` } : {};
    if (!whole) headers.range = `bytes=${offset}-${offset + length - 1}`;
    let res: IncomingMessage;
    try {
      res = await this.client.makeRequestAsync({ method: 'GET', bucketName: this.bucket, objectName: key, headers }, '', [200, 206]);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'PreconditionFailed') throw new ObjectChangedError(`${key} in ${this.location} was overwritten during the download (its ETag is no longer ${pin.etag})`);
      if (code === 'NoSuchKey' || code === 'NotFound') throw new ObjectChangedError(`${key} was removed from ${this.location} during the download`);
      throw err;
    }
    // Servers that ignore If-Match still name the version they serve.
    const etag = String(res.headers.etag ?? '').replace(/"/g, '');
    if (pin.etag && etag && etag !== pin.etag) {
      res.destroy();
      throw new ObjectChangedError(`${key} in ${this.location} was overwritten during the download (ETag ${pin.etag}, now ${etag})`);
    }
    if (!whole && res.statusCode !== 206) {
      res.destroy();
      throw new StorageError(`${this.location} answered a range request for ${key} with the whole object (HTTP ${res.statusCode})`);
    }
    return res;
  }

  async remove(key: string): Promise<void> {
    try {
      await this.client.removeObject(this.bucket, key);
    } catch (err) {
      throw new StorageError(`delete of ${key} at ${this.location} failed: ${describe(err)}`);
    }
  }

  async removeIncompleteUploads(key: string): Promise<number> {
    try {
      // The listing query itself: listIncompleteUploads also lists each upload's parts, which some servers
      // (moto) answer in a form the client cannot parse.
      const uploads: string[] = [];
      let markers = { key: '', uploadId: '' };
      for (;;) {
        const page = await this.client.listIncompleteUploadsQuery(this.bucket, key, markers.key, markers.uploadId, '');
        for (const u of page.uploads) if (u.key === key) uploads.push(u.uploadId);
        if (!page.isTruncated) break;
        markers = { key: page.nextKeyMarker, uploadId: page.nextUploadIdMarker };
      }
      for (const id of uploads) await this.client.abortMultipartUpload(this.bucket, key, id);
      return uploads.length;
    } catch (err) {
      throw new StorageError(`removing unfinished uploads of ${key} at ${this.location} failed: ${describe(err)}`);
    }
  }

  async *list(prefix = ''): AsyncIterable<ObjectInfo> {
    const stream = this.client.listObjectsV2(this.bucket, prefix, true);
    try {
      for await (const item of stream as AsyncIterable<{ name?: string; size: number; lastModified?: Date }>) {
        if (item.name) yield { key: item.name, size: item.size, lastModified: item.lastModified, metadata: {} };
      }
    } catch (err) {
      throw new StorageError(`listing ${this.location}/${prefix}* failed: ${describe(err)}`);
    }
  }
}

function normaliseMetadata(meta: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta ?? {})) out[k.toLowerCase().replace(/^x-amz-meta-/, '')] = String(v);
  return out;
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return [e.code, e.message].filter(Boolean).join(': ') || String(err);
}

export interface Expected {
  bytes: number;
  sha256: string;
}

/** Tries of reading an object back, and the waits between them. */
const READ_BACK_DELAYS_MS = [500, 1500];

/**
 * Checks a stored object's size and `mcb-sha256` against what was sent (under 'parts' each part was checked on its
 * way up by Content-MD5). 'download' also re-reads it, which catches parts stored out of order with the right size.
 * Throws ObjectMismatchError when the object is wrong (remove it), a plain StorageError when it could not be read
 * back after retries (a network fault: the object may be good, keep it).
 */
export async function verifyStoredObject(store: ObjectStore, key: string, expected: Expected, mode: VerifyMode): Promise<void> {
  const info = await store.stat(key);
  if (!info) throw new ObjectMismatchError(`verification failed: ${key} is not in ${store.location} after upload`);
  if (info.size !== expected.bytes) {
    throw new ObjectMismatchError(`verification failed: ${key} is ${info.size} bytes in storage, ${expected.bytes} were sent`);
  }
  const declared = info.metadata['mcb-sha256'];
  if (declared !== undefined && declared !== expected.sha256) {
    throw new ObjectMismatchError(`verification failed: ${key} is stored with sha256 ${declared}, ${expected.sha256} was sent`);
  }
  if (mode !== 'download') return;
  const read = await readBack(store, key);
  if (read.bytes !== expected.bytes) {
    throw new ObjectMismatchError(`verification failed: ${key} reads back as ${read.bytes} bytes, ${expected.bytes} were sent`);
  }
  if (read.sha256 !== expected.sha256) {
    throw new ObjectMismatchError(`verification failed: ${key} reads back with sha256 ${read.sha256}, ${expected.sha256} was sent`);
  }
}

/** sha256 and length of the whole object; a read cut by an error is retried, then reported as a StorageError. */
async function readBack(store: ObjectStore, key: string): Promise<PutResult> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await downloadTo(store, key, drain());
    } catch (err) {
      const delay = READ_BACK_DELAYS_MS[attempt];
      if (delay === undefined) {
        throw new StorageError(`verification could not read ${key} back from ${store.location} (${attempt + 1} tries, the object is kept): ${describe(err)}`);
      }
      await sleep(delay);
    }
  }
}

function drain(): NodeJS.WritableStream {
  return new Writable({ write: (_chunk, _enc, done) => done() });
}

export type StoredObjectMatch = 'absent' | 'identical' | 'different';

/**
 * What `key` holds compared with an upload about to be made: nothing; that very upload (same size, same `mcb-sha256`
 * metadata and, when `owner` is given, the same `mcb-backup-uuid`: an earlier attempt of the same backup); or
 * anything else, which must not be overwritten. An object without `mcb-sha256` (the seed's) is never identical.
 */
export async function compareStoredObject(store: ObjectStore, key: string, expected: Expected & { owner?: string }): Promise<StoredObjectMatch> {
  const info = await store.stat(key);
  if (!info) return 'absent';
  const sameContent = info.size === expected.bytes && info.metadata['mcb-sha256'] === expected.sha256;
  const sameOwner = expected.owner === undefined || info.metadata['mcb-backup-uuid'] === expected.owner;
  return sameContent && sameOwner ? 'identical' : 'different';
}

/** Downloads `key` to a writable, returning the sha256 and byte count of what was read. */
export async function downloadTo(store: ObjectStore, key: string, sink: NodeJS.WritableStream): Promise<PutResult> {
  const counter = new HashingCounter();
  await pipeline(await store.getStream(key), counter, sink);
  return { bytes: counter.bytes, sha256: counter.digest() };
}
