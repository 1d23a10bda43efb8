// Object storage behind one small interface, so MinIO, Ceph, AWS and moto behave the same to the rest of
// the code, and a fault-injecting or encrypting store can wrap it.
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as Minio from 'minio';
import type { OssConfig } from '../config/index.ts';

export interface ObjectInfo {
  key: string;
  size: number;
  lastModified?: Date;
  metadata: Record<string, string>;
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
  /** Streams `body` to `key`, hashing as it goes. On failure no partial object or upload is left behind. */
  putStream(key: string, body: Readable, opts?: { size?: number; metadata?: Record<string, string> }): Promise<PutResult>;
  stat(key: string): Promise<ObjectInfo | undefined>;
  getStream(key: string): Promise<Readable>;
  remove(key: string): Promise<void>;
  list(prefix?: string): AsyncIterable<ObjectInfo>;
}

export class StorageError extends Error {}

/** Counts and hashes the bytes that pass through it. */
export class HashingCounter extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    done(null, chunk);
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}

export class MinioObjectStore implements ObjectStore {
  readonly location: string;
  private readonly client: Minio.Client;

  constructor(
    config: OssConfig,
    readonly bucket: string,
  ) {
    this.client = new Minio.Client({
      endPoint: config.endPoint,
      port: config.port,
      useSSL: config.useSSL,
      accessKey: config.accessKey,
      secretKey: config.secretKey,
      region: config.region,
      partSize: config.partSizeBytes,
    });
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

  async putStream(key: string, body: Readable, opts: { size?: number; metadata?: Record<string, string> } = {}): Promise<PutResult> {
    const counter = new HashingCounter();
    const metadata = { ...opts.metadata };
    try {
      if (opts.size === 0) {
        // An empty stream of unknown length makes the minio client send MalformedXML; send an empty buffer.
        body.resume();
        await this.client.putObject(this.bucket, key, Buffer.alloc(0), 0, metadata);
      } else {
        const piped = body.pipe(counter);
        body.on('error', (err) => counter.destroy(err));
        await this.client.putObject(this.bucket, key, piped, opts.size, metadata);
      }
    } catch (err) {
      await this.client.removeIncompleteUpload(this.bucket, key).catch(() => undefined);
      throw new StorageError(`upload of ${key} to ${this.location} failed: ${describe(err)}`);
    }
    return { bytes: counter.bytes, sha256: counter.digest() };
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await this.client.statObject(this.bucket, key);
      return { key, size: s.size, lastModified: s.lastModified, metadata: normaliseMetadata(s.metaData) };
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

  async remove(key: string): Promise<void> {
    try {
      await this.client.removeObject(this.bucket, key);
    } catch (err) {
      throw new StorageError(`delete of ${key} at ${this.location} failed: ${describe(err)}`);
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

/**
 * Checks a stored object against what was sent. 'size' trusts the server's size; 'download' re-reads the
 * object and compares sha256, which catches servers that store parts out of order with the right size.
 */
export async function verifyStoredObject(store: ObjectStore, key: string, expected: Expected, mode: 'size' | 'download'): Promise<void> {
  const info = await store.stat(key);
  if (!info) throw new StorageError(`verification failed: ${key} is not in ${store.location} after upload`);
  if (info.size !== expected.bytes) {
    throw new StorageError(`verification failed: ${key} is ${info.size} bytes in storage, ${expected.bytes} were sent`);
  }
  if (mode === 'size') return;
  const counter = new HashingCounter();
  await pipeline(await store.getStream(key), counter, async function* (source) {
    for await (const _ of source) {
      // drain: only the hash is wanted
    }
  });
  const sha = counter.digest();
  if (sha !== expected.sha256) {
    throw new StorageError(`verification failed: ${key} reads back with sha256 ${sha}, ${expected.sha256} was sent`);
  }
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
