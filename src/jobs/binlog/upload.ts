// Checking and storing one closed binlog. Every event's checksum is verified first: a corrupt binlog in the bucket
// would only fail at restore time. The stored bytes' sha256 goes in the object's metadata, sent before the body, so
// it is computed first through the same deterministic codec; the upload's own digest must then match it.
// Encrypted, the salt derives from the compressed bytes' digest: a retry stores identical bytes.
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Codec, CompressOptions } from '../../archive/codec.ts';
import { EncryptStream, saltForContent, type EncryptionKey } from '../../crypto/index.ts';
import { BinlogFormatError, summarizeBinlog } from '../../binlog/index.ts';
import type { JobContext } from '../types.ts';
import { ObjectMismatchError, verifyStoredObject, type PutOptions, type PutResult } from '../../storage/index.ts';
import { HashingCounter } from '../../streams/index.ts';

/** What an upload of the file will store. */
export interface EncodedDigest {
  sha256: string;
  /** Bytes stored (compressed, encrypted). */
  bytes: number;
  /** Bytes of the binlog file. */
  sourceBytes: number;
  /** Encrypted: the local file holding exactly the bytes to store (remove it with discardEncoded). */
  encodedFile?: string;
  /** Encrypted: the id of the key. */
  keyId?: string;
}

/** How the binlog job stores a file: compressed by `codec` (with `options`), then encrypted with `key` when given. */
export interface BinlogEncoding {
  codec: Codec;
  options: CompressOptions;
  key?: EncryptionKey;
  /** Where an encrypted object is written before its upload. */
  scratchDir?: string;
}

export interface StoredBinlog {
  bytes: number;
  sha256: string;
  sourceBytes: number;
}

/** The binlog failed its checksum (or format) check: it must not be archived. */
export class CorruptBinlogError extends Error {}

/** Reads every event of the file with its CRC32 checked; throws CorruptBinlogError naming the file and the position. */
export async function verifyBinlogChecksums(file: string, name: string): Promise<void> {
  try {
    await summarizeBinlog(file, { verifyChecksums: true });
  } catch (err) {
    if (!(err instanceof BinlogFormatError)) throw err;
    throw new CorruptBinlogError(`${name} is corrupt at byte offset ${err.offset} (${err.message}); nothing was uploaded`);
  }
}

/** How the binlog job compresses: the configured level and threads (the output depends on neither's timing). */
export function binlogCompressOptions(ctx: Pick<JobContext, 'config'>): CompressOptions {
  return { level: ctx.config.backup.compressionLevel, threads: ctx.config.backup.compressionThreads };
}

/** sha256 and size of what the upload will store: the file through the codec (and, encrypted, into a local file). */
export async function encodedDigest(file: string, encoding: BinlogEncoding): Promise<EncodedDigest> {
  const compress = encoding.codec.compress(encoding.options);
  if (!encoding.key) return digestThrough(file, [compress]);
  const key = encoding.key;
  const base = path.join(encoding.scratchDir ?? os.tmpdir(), `.mcb-${randomUUID()}-${path.basename(file)}`);
  const compressedFile = encoding.codec.name === 'none' ? undefined : `${base}.z`;
  const encodedFile = `${base}.enc`;
  try {
    const compressed = await digestThrough(file, [compress], compressedFile ? createWriteStream(compressedFile, { mode: 0o600 }) : undefined);
    const plain = new HashingCounter();
    const sealed = await digestThrough(compressedFile ?? file, [plain, new EncryptStream(key, { salt: saltForContent(key, compressed.sha256) })], createWriteStream(encodedFile, { mode: 0o600 }));
    if (plain.digest() !== compressed.sha256) throw new Error(`${file} changed while it was read: the two reads before its upload differ`);
    return { sha256: sealed.sha256, bytes: sealed.bytes, sourceBytes: compressed.sourceBytes, encodedFile, keyId: key.id };
  } catch (err) {
    await rm(encodedFile, { force: true });
    throw err;
  } finally {
    if (compressedFile) await rm(compressedFile, { force: true });
  }
}

/** Removes the local encoded copy an encrypted digest made. */
export async function discardEncoded(digest: EncodedDigest | undefined): Promise<void> {
  if (digest?.encodedFile) await rm(digest.encodedFile, { force: true });
}

async function digestThrough(file: string, transforms: Duplex[], sink?: NodeJS.WritableStream): Promise<EncodedDigest> {
  const raw = new HashingCounter();
  const stored = new HashingCounter();
  await pipeline(createReadStream(file), raw, ...(transforms as [Duplex]), stored, sink ?? new Writable({ write: (_c, _e, done) => done() }));
  return { sha256: stored.digest(), bytes: stored.bytes, sourceBytes: raw.bytes };
}

export interface UploadIds {
  instanceId: number;
  backupUuid: string;
  name: string;
}

/** Sends the file to `objectKey` (a key chosen free: nothing is overwritten) and verifies what was stored. */
export async function uploadBinlog(
  file: string,
  objectKey: string,
  expected: EncodedDigest,
  codec: Codec,
  ids: UploadIds,
  ctx: JobContext,
): Promise<StoredBinlog> {
  const size = (await stat(file)).size;
  const opts: PutOptions = {
    partChecksums: ctx.config.backup.verify !== 'size',
    metadata: {
      'mcb-instance': String(ids.instanceId),
      'mcb-backup-uuid': ids.backupUuid,
      'mcb-binlog-file': ids.name,
      'mcb-sha256': expected.sha256,
      ...(expected.keyId ? { 'mcb-key-id': expected.keyId } : {}),
    },
  };
  // Uncompressed or already encoded, a file is the object: its parts are sent as ranges of it (no part held in memory).
  const put = expected.encodedFile
    ? { ...(await ctx.storage.putFile(objectKey, expected.encodedFile, opts)), sourceBytes: expected.sourceBytes }
    : codec.name === 'none'
      ? await putWhole(file, objectKey, opts, ctx)
      : await putCompressed(file, objectKey, codec, opts, ctx);
  if (put.sourceBytes !== size) {
    await ctx.storage.remove(objectKey).catch(() => undefined);
    throw new Error(`${file} changed while it was read: ${put.sourceBytes} bytes read, ${size} expected (is it still being written?)`);
  }
  if (put.sha256 !== expected.sha256 || expected.sourceBytes !== size) {
    await ctx.storage.remove(objectKey).catch(() => undefined);
    throw new Error(`${file} changed while it was read: uploaded sha256 ${put.sha256}, ${expected.sha256} computed before the upload`);
  }
  try {
    await verifyStoredObject(ctx.storage, objectKey, { bytes: put.bytes, sha256: put.sha256 }, ctx.config.backup.verify);
  } catch (err) {
    // A corrupt object must not stay where a restore would find it; one that could not be read back (a network
    // fault) is kept, and the next run verifies it again instead of uploading it twice.
    if (err instanceof ObjectMismatchError) await ctx.storage.remove(objectKey).catch(() => undefined);
    throw err;
  }
  return { bytes: put.bytes, sha256: put.sha256, sourceBytes: size };
}

async function putWhole(file: string, objectKey: string, opts: PutOptions, ctx: JobContext): Promise<PutResult & { sourceBytes: number }> {
  const put = await ctx.storage.putFile(objectKey, file, opts);
  return { ...put, sourceBytes: put.bytes };
}

/** The file through the codec, streamed; `sourceBytes` is what was read of the file. */
async function putCompressed(file: string, objectKey: string, codec: Codec, opts: PutOptions, ctx: JobContext): Promise<PutResult & { sourceBytes: number }> {
  const source = createReadStream(file);
  const raw = new HashingCounter();
  const compressed = codec.compress(binlogCompressOptions(ctx));
  source.on('error', (err) => compressed.destroy(err));
  source.pipe(raw).pipe(compressed);
  try {
    return { ...(await ctx.storage.putStream(objectKey, compressed, opts)), sourceBytes: raw.bytes };
  } finally {
    source.destroy();
  }
}

/** An earlier attempt of this row stored exactly these bytes already: verify them instead of uploading again. */
export async function confirmStoredBinlog(objectKey: string, expected: EncodedDigest, ctx: JobContext): Promise<StoredBinlog> {
  try {
    await verifyStoredObject(ctx.storage, objectKey, { bytes: expected.bytes, sha256: expected.sha256 }, ctx.config.backup.verify);
  } catch (err) {
    // It is this row's own object (its mcb-backup-uuid): removing a wrong one lets the next run upload it again;
    // one that could not be read is kept for the next run to verify.
    if (err instanceof ObjectMismatchError) await ctx.storage.remove(objectKey).catch(() => undefined);
    throw err;
  }
  return { bytes: expected.bytes, sha256: expected.sha256, sourceBytes: expected.sourceBytes };
}
