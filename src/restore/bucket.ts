// Restore candidates without the metadata center (`--from-bucket`), which may be exactly what was lost: from object
// names, object metadata (`mcb-recovery-point`, `mcb-sha256`) and the binlogs' own headers (a few KB of each
// object's head, or the first 1 MiB chunk of an encrypted one; the newest binlog is read whole for its last event).
// Objects from before that metadata existed fall back to the name's timestamp (marked inexact) or go unverified,
// with a warning. Streamed segments (seg_ objects) are chained by their names alone (segments.ts); a file held only
// as segments starts at the series start in its name, and when it is the newest file its segments are read whole
// for its last commit. docs/restore.md, "Without the metadata center".
import { createWriteStream } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable, type Duplex } from 'node:stream';
import { decodersFor } from '../archive/index.ts';
import type { Keyring } from '../crypto/index.ts';
import { findRestoreStop, parseBinlogFileName, readBinlogStart, summarizeBinlog } from '../binlog/index.ts';
import { removeTree } from '../fs/contained-rm.ts';
import { localFileName } from '../fs/safe-name.ts';
import { binlogFileOfObject, parseObjectName } from '../naming.ts';
import type { ObjectStore } from '../storage/index.ts';
import { parseCompact, type TimeZone } from '../time/zone.ts';
import type { BinlogCandidate, FullCandidate } from './plan.ts';
import { downloadSegments } from './run.ts';
import { segmentedCandidates, type SegmentObject, type SegmentWarning } from './segments.ts';

const HEAD_BYTES = 64 * 1024;
/** HEAD requests in flight while the segments' checksums are read. */
const STAT_CONCURRENCY = 8;

/** Downloads (decrypted, decompressed) the whole object, or only its first `limit` bytes (then the download is dropped). */
async function fetch(store: ObjectStore, key: string, dest: string, keyring: Keyring | undefined, limit?: number): Promise<void> {
  const source = await store.getStream(key);
  const decoders = decodersFor(key, keyring) as [Duplex];
  if (!limit) {
    await pipeline(source, ...decoders, createWriteStream(dest, { mode: 0o600 }));
    return;
  }
  const chunks: Buffer[] = [];
  let n = 0;
  // Enough read: the download is aborted, which rejects the pipeline with an AbortError that is expected here.
  const stop = new AbortController();
  const collect = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      n += chunk.length;
      if (n >= limit) stop.abort();
      done();
    },
  });
  try {
    await pipeline(source, ...decoders, collect, { signal: stop.signal });
  } catch (err) {
    if (!stop.signal.aborted) throw err;
  }
  await writeFile(dest, Buffer.concat(chunks), { mode: 0o600 });
}

/** The binlog's bytes into `dest`: its object, or its segments joined as a restore joins them (each one checked). */
async function fetchBinlog(store: ObjectStore, b: BinlogCandidate, dest: string, keyring: Keyring | undefined): Promise<void> {
  if (!b.segments) return fetch(store, b.objectKey, dest, keyring);
  await downloadSegments(() => store, b, dest, { keyring });
}

/** Every `seg_<id>_` object of the instance, parsed from its name. */
async function segmentObjects(store: ObjectStore, instanceId: number): Promise<SegmentObject[]> {
  const out: SegmentObject[] = [];
  for await (const o of store.list(`seg_${instanceId}_`)) {
    const parsed = parseObjectName(o.key);
    if (!parsed || parsed.type !== 'segment' || parsed.instanceId !== instanceId) continue;
    // The file name becomes a local file name when the binlog is restored: a key holding '/' or '..' is refused.
    const file = localFileName(parsed.binlogFile, o.key);
    if (!parseBinlogFileName(file)) continue;
    out.push({
      file,
      seriesStart: parsed.seriesStart,
      objectKey: o.key,
      bucket: store.bucket,
      from: parsed.from,
      to: parsed.to,
      storedBytes: o.size,
      sha256: null,
      compression: parsed.compression,
      encrypted: parsed.encrypted,
    });
  }
  return out;
}

/** Fills each segment's sha256 and key id from its object metadata (`mcb-sha256`, `mcb-key-id`). */
async function readSegmentMetadata(store: ObjectStore, binlogs: BinlogCandidate[]): Promise<void> {
  const queue = binlogs.flatMap((b) => b.segments ?? []);
  const worker = async () => {
    for (let s = queue.shift(); s; s = queue.shift()) {
      const meta = (await store.stat(s.objectKey))?.metadata ?? {};
      const sha256 = meta['mcb-sha256'];
      s.sha256 = sha256 && /^[0-9a-f]{64}$/.test(sha256) ? sha256 : null;
      if (meta['mcb-key-id']) s.encryptionKeyId = meta['mcb-key-id'];
    }
  };
  await Promise.all(Array.from({ length: STAT_CONCURRENCY }, worker));
}

/** Where the newest binlog ends: its last event, or for a streamed file the commit time of its last transaction. */
async function endOfNewest(store: ObjectStore, newest: BinlogCandidate, local: string, keyring: Keyring | undefined): Promise<Date> {
  await fetchBinlog(store, newest, local, keyring);
  if (newest.segments) {
    const { last } = await findRestoreStop(local, { kind: 'end' });
    if (last) return new Date(Math.floor(last.commitMicros / 1000));
  }
  return new Date((await summarizeBinlog(local)).lastEventTimestamp * 1000);
}

/** `zone`: the metadata time zone, which object names' timestamps are in. */
export async function candidatesFromBucket(
  store: ObjectStore,
  instanceId: number,
  zone: TimeZone,
  keyring?: Keyring,
): Promise<{ fulls: FullCandidate[]; binlogs: BinlogCandidate[]; warnings: string[]; segmentWarnings: SegmentWarning[] }> {
  const warnings: string[] = [];
  const fulls: FullCandidate[] = [];
  for await (const o of store.list(`bak_${instanceId}_`)) {
    const parsed = parseObjectName(o.key);
    if (!parsed || parsed.type !== 'full' || parsed.instanceId !== instanceId) continue;
    const meta = (await store.stat(o.key))?.metadata ?? {};
    const rp = meta['mcb-recovery-point'] ? new Date(meta['mcb-recovery-point']) : undefined;
    const exact = rp !== undefined && !Number.isNaN(rp.getTime());
    if (!exact) warnings.push(`${o.key} has no mcb-recovery-point metadata: its recovery point is estimated from the name (the clone's start)`);
    fulls.push({
      objectKey: o.key,
      bucket: store.bucket,
      endTime: exact ? rp : parseCompact(parsed.timestamp, zone),
      endTimeExact: exact,
      compression: parsed.compression,
      bytes: o.size,
      sha256: meta['mcb-sha256'] ?? null,
      gtidSet: null,
      binlogFile: meta['mcb-binlog-file'] || null,
    });
  }

  const tmp = await mkdtemp(path.join(os.tmpdir(), 'mcb-bucket-plan-'));
  try {
    const binlogs: BinlogCandidate[] = [];
    let i = 0;
    for await (const o of store.list(`log_${instanceId}_`)) {
      const parsed = parseObjectName(o.key);
      if (!parsed || parsed.type !== 'binlog' || parsed.instanceId !== instanceId) continue;
      // A reset series is archived as log_<id>_<file>.<start>: the file name is what has a sequence number.
      // The file name becomes a local file name when the binlog is restored: a key holding '/' or '..' is refused.
      const file = binlogFileOfObject(localFileName(parsed.binlogFile, o.key));
      if (!parseBinlogFileName(file)) continue;
      const sha256 = (await store.stat(o.key))?.metadata?.['mcb-sha256'] ?? null;
      const local = path.join(tmp, `head-${i++}`);
      await fetch(store, o.key, local, keyring, HEAD_BYTES);
      const start = await readBinlogStart(local);
      binlogs.push({
        file,
        objectKey: o.key,
        bucket: store.bucket,
        startTime: new Date(start.firstEventTimestamp * 1000),
        endTime: null,
        compression: parsed.compression,
        bytes: o.size,
        sha256: sha256 && /^[0-9a-f]{64}$/.test(sha256) ? sha256 : null,
      });
    }
    // Files held only as segments (a whole log_ object of the same file and series wins).
    const segmented = segmentedCandidates(await segmentObjects(store, instanceId), binlogs);
    await readSegmentMetadata(store, segmented.binlogs);
    binlogs.push(...segmented.binlogs);
    binlogs.sort((a, b) => a.startTime.getTime() - b.startTime.getTime() || parseBinlogFileName(a.file)!.seq - parseBinlogFileName(b.file)!.seq);
    for (let k = 0; k + 1 < binlogs.length; k++) {
      const a = parseBinlogFileName(binlogs[k]!.file)!;
      const b = parseBinlogFileName(binlogs[k + 1]!.file)!;
      if (a.base === b.base && b.seq === a.seq + 1 && !binlogs[k]!.segments) binlogs[k]!.endTime = binlogs[k + 1]!.startTime;
    }
    const newest = binlogs[binlogs.length - 1];
    if (newest) newest.endTime = await endOfNewest(store, newest, path.join(tmp, 'newest'), keyring);
    const unverified = binlogs.flatMap((b): Array<{ objectKey: string }> => (b.segments ? b.segments.filter((s) => !s.sha256) : b.sha256 ? [] : [b])).map((o) => o.objectKey);
    if (unverified.length) {
      const names = unverified.length > 5 ? `${unverified.slice(0, 5).join(', ')} and ${unverified.length - 5} more` : unverified.join(', ');
      warnings.push(`${unverified.length} binlog object(s) carry no mcb-sha256 metadata (archived before it was recorded) and are not checksum-verified: ${names}`);
    }
    return { fulls, binlogs, warnings, segmentWarnings: segmented.warnings };
  } finally {
    await removeTree(tmp, { within: { 'the temp dir': os.tmpdir() } });
  }
}

/** When the binlog stored under `key` was opened (its FORMAT_DESCRIPTION timestamp), from the object's first bytes. */
export async function binlogStartOfObject(store: ObjectStore, key: string, keyring?: Keyring): Promise<Date> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'mcb-binlog-head-'));
  try {
    const local = path.join(tmp, 'head');
    await fetch(store, key, local, keyring, HEAD_BYTES);
    return new Date((await readBinlogStart(local)).firstEventTimestamp * 1000);
  } finally {
    await removeTree(tmp, { within: { 'the temp dir': os.tmpdir() } });
  }
}
