// `binlog`: archive every closed binary log of this node, once, in order, with no holes (docs/binlog-backups.md).
//
// Runs on the database host (binlogs are read from disk). Per run, under a metadata-center lock per instance:
//   1. preconditions of point-in-time restore (log_bin, ROW, GTIDs, log_replica_updates on a replica): an unmet one
//      is an Error row and a failed job (src/binlog-archive/preconditions.ts);
//   2. the index (bin_index_path, else @@log_bin_index) and the server's active binlog (SHOW BINARY LOGS);
//   3. RPO: the active binlog holds transactions and opened more than max_rpo_minutes ago → FLUSH BINARY LOGS,
//      so the file that just closed is archived by this same run;
//   4. which server each archived row is from (src/binlog-archive/series.ts), then planBinlogArchive (pure): the
//      closed binlogs after the last archived one, and a gap when the next one was purged before it was archived or
//      the server's binlogs are a new series (another server, or a reset): one visible Error row, then carry on;
//   5. each file in order: row Uploading → every event's checksum verified → a free object name (nothing is ever
//      overwritten) → upload (optionally gzip) → verify size and sha256 → Completed. The batch stops at the first
//      failure (that row → Error, the job fails): the next run retries it, so no holes.
import path from 'node:path';
import { encodingSuffix, getCodec, type Codec } from '../archive/index.ts';
import { recordGap, type GapReport } from '../binlog-archive/gap.ts';
import { hasTransactions, headCache, readIndexUpToActive, resolveIndexPath, type BinlogHead, type IndexEntry } from '../binlog-archive/index-file.ts';
import { chooseBinlogObjectKey } from '../binlog-archive/object-key.ts';
import { pitrPreconditionFailures, recordPreconditionFailure } from '../binlog-archive/preconditions.ts';
import { binlogBackupUuid, identifyRows, type IdentifiedRow } from '../binlog-archive/series.ts';
import { binlogCompressOptions, confirmStoredBinlog, discardEncoded, encodedDigest, uploadBinlog, verifyBinlogChecksums, type EncodedDigest } from '../binlog-archive/upload.ts';
import { requireBackupKey } from '../config/index.ts';
import { backfillSeedBinlogRows, listBinlogRows } from '../metadata/binlog-queries.ts';
import { MetadataError, type BackupRow } from '../metadata/index.ts';
import type { DataNode } from '../mysql/data-node.ts';
import { binlogObjectName, humanBytes } from '../naming.ts';
import { recordBinlogCheck } from '../ops/outcomes.ts';
import { formatInZone, type TimeZone } from '../time/zone.ts';
import { filesToInspect, isDoneState, planBinlogArchive, type BinlogHeadInfo } from './binlog-plan.ts';
import { defineJob, PermanentJobError, requireInt, type JobContext } from './types.ts';

export { readBinlogHead } from '../binlog-archive/index-file.ts';

export interface BinlogPayload {
  instanceId: number;
}

export interface ArchivedBinlogInfo {
  file: string;
  objectKey: string;
  bytes: number;
  sha256: string;
  startTime: string;
  endTime: string;
}

export interface BinlogResult {
  archived: ArchivedBinlogInfo[];
  /** Closed binlogs still on the server that were already archived. */
  skipped: number;
  gap?: GapReport;
  /** FLUSH BINARY LOGS was issued for the RPO bound. */
  flushed: boolean;
  /** The binlog left open (not archived). */
  active: string;
  /** Another run of this instance held the lock: this one did nothing. */
  busy?: boolean;
}

/** Failure of one file in the batch: the files before it are archived, the ones after wait for the next run. */
export class BinlogBatchError extends Error {
  constructor(
    message: string,
    readonly archived: ArchivedBinlogInfo[],
  ) {
    super(message);
  }
}

export const binlogJob = defineJob<BinlogPayload, BinlogResult>({
  name: 'binlog',
  parse: (data) => ({ instanceId: requireInt(data, 'instanceId') }),

  async handle({ instanceId }, ctx) {
    const ownId = requireBackupKey(ctx.config, 'tbInstanceId', 'tb_instance_id');
    if (ownId !== instanceId) {
      throw new PermanentJobError(`this worker archives the binlogs of instance ${ownId} ([backup-conf] tb_instance_id), not ${instanceId}`);
    }
    const instance = await ctx.metadata.getInstance(instanceId);
    if (!instance) throw new PermanentJobError(`instance ${instanceId} does not exist in tb_instance`);
    if (!instance.isClone) throw new PermanentJobError(`instance ${instanceId} (${instance.instanceId}) has is_clone = 0: backups are disabled`);

    let entered = false;
    try {
      return await ctx.metadata.withLock(
        ctx.metadata.lockName('binlog', instanceId),
        async () => {
          entered = true;
          return await archiveBinlogs(instanceId, ctx);
        },
        5,
      );
    } catch (err) {
      if (!entered && err instanceof MetadataError) {
        ctx.log.info({ instance: instanceId }, 'another binlog run of this instance is in progress; nothing to do');
        return { archived: [], skipped: 0, flushed: false, active: '', busy: true };
      }
      throw err;
    }
  },
});

/** What one run knows about the server it reads. */
interface RunState {
  instanceId: number;
  serverUuid: string;
  entries: IndexEntry[];
  head: (e: IndexEntry) => Promise<BinlogHead>;
  codec: Codec;
  ctx: JobContext;
}

async function archiveBinlogs(instanceId: number, ctx: JobContext): Promise<BinlogResult> {
  const node = await ctx.connectDataNode();
  try {
    const serverUuid = await node.serverUuid();
    await checkPreconditions(instanceId, serverUuid, node, ctx);
    const indexPath = await resolveIndexPath(ctx, node);
    const basenameDir = path.dirname((await node.variable('log_bin_basename')) ?? indexPath);
    const head = headCache();
    const { entries, flushed } = await indexAfterRpoFlush(node, indexPath, basenameDir, head, ctx);
    const run: RunState = { instanceId, serverUuid, entries, head, codec: getCodec(ctx.config.backup.binlogCompression), ctx };

    await backfillSeedBinlogRows(ctx.metadata, instanceId);
    const rows = await identifyRows(await listBinlogRows(ctx.metadata, instanceId), ctx, run);
    const names = entries.map((e) => e.name);
    await abandonUploadsOfPurgedFiles(rows, names, ctx);
    const timeZone = ctx.metadata.timeZone;
    const plan = planBinlogArchive(names, rows, { serverUuid, timeZone, heads: await headsOf(filesToInspect(names, rows, timeZone), run) });
    const result: BinlogResult = { archived: [], skipped: plan.alreadyArchived.length, flushed, active: plan.active };

    if (plan.gap) {
      const first = entryNamed(run, plan.gap.firstAvailable);
      result.gap = await recordGap(instanceId, plan.gap, new Date((await head(first)).start * 1000), path.dirname(first.path), serverUuid, ctx);
    }

    const archivedHere = archivedIdentities(rows, timeZone);
    for (const name of plan.toArchive) {
      if (ctx.signal.aborted) throw new BinlogBatchError(`binlog run interrupted (worker shutting down) before ${name}`, result.archived);
      const entry = entryNamed(run, name);
      const h = await head(entry);
      if (archivedHere.has(identity(serverUuid, name, new Date(h.start * 1000), timeZone))) {
        result.skipped++;
        continue;
      }
      const backupUuid = binlogBackupUuid(instanceId, serverUuid, name, h.start);
      const existing = await ctx.metadata.getBackup(backupUuid);
      if (existing && isDoneState(existing.state)) {
        result.skipped++;
        continue;
      }
      try {
        result.archived.push(await archiveOne(run, entry, h, backupUuid, existing));
        await ctx.progress({ stage: 'binlog', archived: result.archived.length, of: plan.toArchive.length }).catch(() => undefined);
      } catch (err) {
        const later = plan.toArchive.length - plan.toArchive.indexOf(name) - 1;
        throw new BinlogBatchError(
          `${(err as Error).message} (${result.archived.length} archived before it; it and ${later} later binlog(s) will be retried by the next run)`,
          result.archived,
        );
      }
    }
    // Every closed binlog is archived now: binlog staleness counts from here, also when nothing was new.
    await recordBinlogCheck(ctx.metadata, instanceId, ctx.now());
    return result;
  } finally {
    await node.close();
  }
}

/**
 * A run that died between its upload and Completed leaves its row Uploading; the next run retries it, unless the
 * file left the server meanwhile. Such a row can never finish: say so (Error) rather than show it running forever.
 * Runs of an instance hold its lock, so no row here is being uploaded right now.
 */
async function abandonUploadsOfPurgedFiles(rows: readonly { backupUuid: string; binlogFile: string; state: string }[], index: readonly string[], ctx: JobContext): Promise<void> {
  const onServer = new Set(index);
  for (const row of rows) {
    if (row.state !== 'Uploading' || onServer.has(row.binlogFile)) continue;
    const reason = `abandoned: ${row.binlogFile} left the server's binlog index (purged) before its upload finished; it is not archived`;
    await ctx.metadata.markError(row.backupUuid, reason, reason);
    ctx.log.error({ binlog: row.binlogFile, backupUuid: row.backupUuid }, reason);
  }
}

/** Refuses to archive (an Error row per unmet condition, and a failed job) what could not be replayed to a point in time. */
async function checkPreconditions(instanceId: number, serverUuid: string, node: DataNode, ctx: JobContext): Promise<void> {
  const failures = pitrPreconditionFailures(await node.binlogSettings());
  if (!failures.length) return;
  for (const f of failures) await recordPreconditionFailure(instanceId, serverUuid, f, ctx);
  throw new PermanentJobError(`binlog archiving refused on ${node.where}: ${failures.map((f) => f.message).join('; ')}`);
}

/** The index, after FLUSH BINARY LOGS when the active binlog holds transactions older than max_rpo_minutes. */
async function indexAfterRpoFlush(
  node: DataNode,
  indexPath: string,
  basenameDir: string,
  head: (e: IndexEntry) => Promise<BinlogHead>,
  ctx: JobContext,
): Promise<{ entries: IndexEntry[]; flushed: boolean }> {
  const entries = await readIndexUpToActive(node, indexPath, basenameDir);
  const active = entries[entries.length - 1]!;
  const maxAgeSeconds = ctx.config.backup.maxRpoMinutes * 60;
  const ageSeconds = ctx.now().getTime() / 1000 - (await head(active)).start;
  if (ageSeconds < maxAgeSeconds || !(await hasTransactions(active.path))) return { entries, flushed: false };
  ctx.log.info({ active: active.name, ageSeconds: Math.round(ageSeconds), maxRpoMinutes: ctx.config.backup.maxRpoMinutes }, 'RPO bound: FLUSH BINARY LOGS');
  await node.flushBinaryLogs();
  return { entries: await readIndexUpToActive(node, indexPath, basenameDir), flushed: true };
}

function entryNamed(run: RunState, name: string): IndexEntry {
  const entry = run.entries.find((e) => e.name === name);
  if (!entry) throw new Error(`${name} is not in the binlog index`);
  return entry;
}

async function headsOf(names: string[], run: RunState): Promise<Map<string, BinlogHeadInfo>> {
  const heads = new Map<string, BinlogHeadInfo>();
  for (const name of names) heads.set(name, await run.head(entryNamed(run, name)));
  return heads;
}

/**
 * "Already archived": a done row of the same server, file name and first-event time. The time is the wall second
 * in the metadata zone: a start_time in the hour a DST change repeats reads back as the earlier of its two instants.
 */
function identity(serverUuid: string, file: string, start: Date, zone: TimeZone): string {
  return `${serverUuid}\n${file}\n${formatInZone(start, zone)}`;
}

function archivedIdentities(rows: IdentifiedRow[], zone: TimeZone): Set<string> {
  const out = new Set<string>();
  for (const r of rows) {
    if (r.serverUuid && r.startTime && !Number.isNaN(r.startTime.getTime()) && isDoneState(r.state)) out.add(identity(r.serverUuid, r.binlogFile, r.startTime, zone));
  }
  return out;
}

/** One file: row Uploading → checksums → a free name → upload and verify → Completed; a failure leaves the row Error. */
async function archiveOne(run: RunState, entry: IndexEntry, h: BinlogHead, backupUuid: string, existing: BackupRow | undefined): Promise<ArchivedBinlogInfo> {
  const { instanceId, serverUuid, codec, ctx } = run;
  const name = entry.name;
  const key = ctx.config.encryption.current;
  const suffix = encodingSuffix({ codec, key });
  const next = run.entries[run.entries.indexOf(entry) + 1]!; // never undefined: the active binlog is last and never archived
  const fields = {
    startTime: new Date(h.start * 1000),
    endTime: new Date((await run.head(next)).start * 1000),
    binlogFile: name,
    gtidSet: h.previousGtids,
    serverUuid,
    backupPath: path.dirname(entry.path),
    backupName: binlogObjectName(instanceId, name, suffix),
    bucketName: ctx.storage.bucket,
    compression: codec.name,
    encryptionKeyId: key?.id ?? null,
    overdueDay: ctx.config.backup.binlogStorageDays,
    workerHost: ctx.workerHost,
    jobId: ctx.jobId,
  };
  if (!existing) {
    await ctx.metadata.createBackup({ backupUuid, tbInstanceId: instanceId, state: 'Uploading', backupType: 'binlog', ...fields, info: 'uploading' });
  } else {
    await ctx.metadata.transition(backupUuid, ['Uploading', 'Error'], 'Uploading', { ...fields, info: `uploading (retry after: ${existing.info ?? existing.state})` });
  }
  let expected: EncodedDigest | undefined;
  try {
    await verifyBinlogChecksums(entry.path, name);
    expected = await encodedDigest(entry.path, { codec, key, options: binlogCompressOptions(ctx), scratchDir: ctx.config.backup.backupPath });
    const choice = await chooseBinlogObjectKey(ctx.storage, ctx.metadata, {
      instanceId,
      backupUuid,
      file: name,
      startSeconds: h.start,
      extension: suffix,
      bytes: expected.bytes,
      sha256: expected.sha256,
    });
    if (choice.key !== fields.backupName) await ctx.metadata.update(backupUuid, { backupName: choice.key });
    const put = choice.alreadyStored
      ? await confirmStoredBinlog(choice.key, expected, ctx)
      : await uploadBinlog(entry.path, choice.key, expected, codec, { instanceId, backupUuid, name }, ctx);
    await ctx.metadata.transition(backupUuid, ['Uploading'], 'Completed', {
      backupBytes: put.bytes,
      backupSize: humanBytes(put.bytes),
      sha256: put.sha256,
      objectKey: choice.key,
      info: `archived and verified (${ctx.config.backup.verify}); ${put.sourceBytes} bytes of binlog${choice.alreadyStored ? ', stored by an earlier attempt' : ''}`,
    });
    ctx.log.info({ binlog: name, objectKey: choice.key, bytes: put.bytes }, 'binlog archived');
    return { file: name, objectKey: choice.key, bytes: put.bytes, sha256: put.sha256, startTime: fields.startTime.toISOString(), endTime: fields.endTime.toISOString() };
  } catch (err) {
    const reason = `archiving ${name} failed: ${(err as Error).message}`;
    await ctx.metadata.markError(backupUuid, reason, (err as Error).stack);
    throw new Error(reason, { cause: err });
  } finally {
    await discardEncoded(expected);
  }
}
