// One segment into the bucket: bytes [from, to) of a spooled binlog, compressed with binlog_compression and
// encrypted when [encryption] has a key (archive's encoders, as every object), written to a scratch file first so
// the stored bytes' sha256 goes in the object's `mcb-sha256` metadata; then the stored object is verified and its row
// recorded (row after object: an object without a row is removed by the binlog job later).
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Duplex } from 'node:stream';
import { encoders, encodingSuffix, getCodec, type Encoding } from '../archive/index.ts';
import type { BinlogFileHead, SegmentScan } from '../binlog/index.ts';
import type { Config } from '../config/index.ts';
import { insertBinlogSegment } from '../metadata/binlog-segments.ts';
import type { MetadataStore } from '../metadata/index.ts';
import { binlogSegmentObjectName } from '../naming.ts';
import { ObjectMismatchError, verifyStoredObject, type ObjectStore } from '../storage/index.ts';
import { HashingCounter } from '../streams/index.ts';
import type { Spool } from './spool.ts';

export interface SegmentTarget {
  config: Config;
  storage: ObjectStore;
  metadata: MetadataStore;
  instanceId: number;
  spool: Spool;
}

export interface SegmentSource {
  /** The binlog's name (on the server and in the spool). */
  file: string;
  head: BinlogFileHead;
  from: number;
  scan: SegmentScan;
  serverUuid: string | null;
}

export interface UploadedSegment {
  objectKey: string;
  storedBytes: number;
  sha256: string;
  /** Commit time of the segment's last transaction. */
  lastCommitTime: Date | null;
}

function segmentEncoding(config: Config): Encoding {
  return { codec: getCodec(config.backup.binlogCompression), key: config.encryption.current };
}

/** Stores the segment and records its row; throws (the spool is kept, the next interval tries again) on any failure. */
export async function uploadSegment(t: SegmentTarget, s: SegmentSource, now: Date, signal?: AbortSignal): Promise<UploadedSegment> {
  const { config, storage } = t;
  const to = s.scan.end;
  const encoding = segmentEncoding(config);
  const lastCommitTime = s.scan.lastCommitMicros === null ? null : new Date(Math.floor(s.scan.lastCommitMicros / 1000));
  const objectKey = binlogSegmentObjectName(t.instanceId, s.file, s.head.seriesStart, s.from, to, encodingSuffix(encoding));
  const scratch = t.spool.scratchFile(randomUUID());
  try {
    const stored = await encodeRange(t.spool.pathOf(s.file), s.from, to, encoding, config, scratch);
    const put = await storage.putFile(objectKey, scratch, {
      size: stored.bytes,
      partChecksums: config.backup.verify !== 'size',
      signal,
      metadata: {
        'mcb-instance': String(t.instanceId),
        'mcb-binlog-file': s.file,
        'mcb-segment': `${s.head.seriesStart}:${s.from}-${to}`,
        'mcb-sha256': stored.sha256,
        ...(encoding.key ? { 'mcb-key-id': encoding.key.id } : {}),
      },
    });
    if (put.sha256 !== stored.sha256 || put.bytes !== stored.bytes) {
      await storage.remove(objectKey).catch(() => undefined);
      throw new Error(`${objectKey}: sent ${put.bytes} bytes with sha256 ${put.sha256}, ${stored.bytes} bytes with ${stored.sha256} were encoded`);
    }
    try {
      await verifyStoredObject(storage, objectKey, stored, config.backup.verify);
    } catch (err) {
      if (err instanceof ObjectMismatchError) await storage.remove(objectKey).catch(() => undefined);
      throw err;
    }
    await insertBinlogSegment(t.metadata, {
      instanceId: t.instanceId,
      binlogFile: s.file,
      seriesStart: s.head.seriesStart,
      serverUuid: s.serverUuid,
      startPos: s.from,
      endPos: to,
      closesFile: s.scan.closesFile,
      objectKey,
      bucketName: storage.bucket,
      compression: encoding.codec.name,
      storedBytes: stored.bytes,
      sha256: stored.sha256,
      encryptionKeyId: encoding.key?.id ?? null,
      firstGtid: s.scan.firstGtid,
      lastGtid: s.scan.lastGtid,
      lastCommitTime,
      createdAt: now,
    });
    return { objectKey, storedBytes: stored.bytes, sha256: stored.sha256, lastCommitTime };
  } finally {
    await rm(scratch, { force: true });
  }
}

/** Bytes [from, to) of `file` through the encoders into `out`; sha256 and size of what was written. */
async function encodeRange(file: string, from: number, to: number, encoding: Encoding, config: Config, out: string): Promise<{ bytes: number; sha256: string }> {
  const raw = new HashingCounter();
  const stored = new HashingCounter();
  const steps = encoders(encoding, { level: config.backup.compressionLevel, threads: config.backup.compressionThreads });
  await pipeline(createReadStream(file, { start: from, end: to - 1 }), raw, ...(steps as [Duplex]), stored, createWriteStream(out, { mode: 0o600 }));
  if (raw.bytes !== to - from) throw new Error(`${file}: read ${raw.bytes} bytes of [${from}, ${to}), the spool file is shorter than its scan`);
  return { bytes: stored.bytes, sha256: stored.digest() };
}
