// Restore candidates without the metadata center (`--from-bucket`): from object names, object metadata and the
// binlog files' own headers. The metadata DB may be exactly what was lost.
//  - Full backups: bak_<id>_<ts>.tar[.gz|.zst]. The recovery point comes from the object's `mcb-recovery-point`
//    metadata (written by the upload stage); objects uploaded before it existed fall back to the name's
//    timestamp (the clone's start, marked inexact). The sha256 comes from `mcb-sha256`.
//  - Binlogs: log_<id>_<file>[.gz|.zst]. The start time is the FORMAT_DESCRIPTION timestamp, read from the head of
//    the object (a few KB are downloaded, not the file); the end is the next file's start, and for the newest
//    file its last event (that one is downloaded whole). The sha256 comes from `mcb-sha256` (written by the binlog
//    job since it was added); the restore verifies it while downloading. Objects archived before that carry none:
//    they are named in a warning and restored unverified.
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { codecForObjectName } from '../archive/index.ts';
import { readBinlogStart, summarizeBinlog } from '../binlog/index.ts';
import { parseObjectName } from '../naming.ts';
import type { ObjectStore } from '../storage/index.ts';
import { parseCompact, type TimeZone } from '../time/zone.ts';
import { binlogSequence, type BinlogCandidate, type FullCandidate } from './plan.ts';

const HEAD_BYTES = 64 * 1024;

/** Downloads (decompressed) the whole object, or only its first `limit` bytes (then the download is dropped). */
async function fetch(store: ObjectStore, key: string, dest: string, limit?: number): Promise<void> {
  const source = await store.getStream(key);
  const decoded = codecForObjectName(key).decompress();
  if (!limit) {
    await pipeline(source, decoded, createWriteStream(dest));
    return;
  }
  source.on('error', (err) => decoded.destroy(err));
  source.pipe(decoded);
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of decoded) {
      chunks.push(chunk as Buffer);
      n += (chunk as Buffer).length;
      if (n >= limit) break;
    }
  } finally {
    source.destroy();
    decoded.destroy();
  }
  await writeFile(dest, Buffer.concat(chunks));
}

/** `zone`: the metadata time zone, which object names' timestamps are in. */
export async function candidatesFromBucket(store: ObjectStore, instanceId: number, zone: TimeZone): Promise<{ fulls: FullCandidate[]; binlogs: BinlogCandidate[]; warnings: string[] }> {
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
      let file = parsed.binlogFile;
      const reset = /^(.*\.\d+)\.(\d{9,})$/.exec(file);
      if (reset) file = reset[1]!;
      if (!binlogSequence(file)) continue;
      const sha256 = (await store.stat(o.key))?.metadata?.['mcb-sha256'] ?? null;
      const local = path.join(tmp, `head-${i++}`);
      await fetch(store, o.key, local, HEAD_BYTES);
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
    binlogs.sort((a, b) => a.startTime.getTime() - b.startTime.getTime() || binlogSequence(a.file)!.seq - binlogSequence(b.file)!.seq);
    for (let k = 0; k + 1 < binlogs.length; k++) {
      const a = binlogSequence(binlogs[k]!.file)!;
      const b = binlogSequence(binlogs[k + 1]!.file)!;
      if (a.base === b.base && b.seq === a.seq + 1) binlogs[k]!.endTime = binlogs[k + 1]!.startTime;
    }
    const newest = binlogs[binlogs.length - 1];
    if (newest) {
      const local = path.join(tmp, 'newest');
      await fetch(store, newest.objectKey, local);
      const summary = await summarizeBinlog(local);
      newest.endTime = new Date(summary.lastEventTimestamp * 1000);
    }
    const unverified = binlogs.filter((b) => !b.sha256).map((b) => b.objectKey);
    if (unverified.length) {
      const names = unverified.length > 5 ? `${unverified.slice(0, 5).join(', ')} and ${unverified.length - 5} more` : unverified.join(', ');
      warnings.push(`${unverified.length} binlog object(s) carry no mcb-sha256 metadata (archived before it was recorded) and are not checksum-verified: ${names}`);
    }
    return { fulls, binlogs, warnings };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** When the binlog stored under `key` was opened (its FORMAT_DESCRIPTION timestamp), from the object's first bytes. */
export async function binlogStartOfObject(store: ObjectStore, key: string): Promise<Date> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'mcb-binlog-head-'));
  try {
    const local = path.join(tmp, 'head');
    await fetch(store, key, local, HEAD_BYTES);
    return new Date((await readBinlogStart(local)).firstEventTimestamp * 1000);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
