// `binlog`: archive every closed binary log of this node, once, in order, with no holes (issue 3).
//
// Runs on the database host (binlogs are read from disk). Per run, under a metadata-center lock per instance:
//   1. the index (bin_index_path, else @@log_bin_index) and the server's active binlog (SHOW BINARY LOGS);
//   2. RPO: the active binlog holds transactions and opened more than max_rpo_minutes ago → FLUSH BINARY LOGS,
//      so the file that just closed is archived by this same run;
//   3. planBinlogArchive (pure): the closed binlogs after the last archived one, and a gap when the next one was
//      purged before it was archived (one visible Error row, then carry on);
//   4. each file in order: row Uploading → upload (optionally gzip) → verify size and sha256 → Completed. The batch
//      stops at the first failure (that row → Error, the job fails): the next run retries it, so no holes.
//
// Each object carries `mcb-sha256` metadata (the sha256 of the stored bytes, as full backups do), so a restore
// without the metadata center (`--from-bucket`) can verify binlogs too. Object metadata is sent before the body, so
// the digest is computed first, in one extra local pass over the closed binlog through the same codec (gzip with
// the same level is deterministic); the upload's own digest must then match it, or the object is removed and the
// file counts as changed while read.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { getCodec } from '../archive/codec.ts';
import { readEvents } from '../binlog/index.ts';
import { requireBackupKey } from '../config/index.ts';
import { listBinlogRows, objectKeyHeldByOther } from '../metadata/binlog-queries.ts';
import { MetadataError } from '../metadata/index.ts';
import type { DataNode } from '../mysql/data-node.ts';
import { backupUuidFor, binlogObjectName, humanBytes } from '../naming.ts';
import { HashingCounter, verifyStoredObject } from '../storage/index.ts';
import { describeMissing, isDoneState, planBinlogArchive, type BinlogGap } from './binlog-plan.ts';
import { defineJob, PermanentJobError, requireInt, type JobContext } from './types.ts';

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
  gap?: {
    reason: BinlogGap['reason'];
    from: string | null;
    to: string | null;
    missing: string[];
    /** False when the gap row existed already (an earlier run found the same gap). */
    recorded: boolean;
    backupUuid: string;
  };
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

interface IndexEntry {
  name: string;
  path: string;
}

interface BinlogHead {
  /** Seconds: the FORMAT_DESCRIPTION event's timestamp, when the server opened the file. */
  start: number;
  previousGtids: string;
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
        lockName(ctx.metadata.link.database, instanceId),
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

/** GET_LOCK names are server-wide (and at most 64 characters): include the metadata database. */
function lockName(database: string, instanceId: number): string {
  const name = `mcb_binlog_${database}_${instanceId}`;
  return name.length <= 64 ? name : `mcb_binlog_${createHash('sha256').update(name).digest('hex').slice(0, 40)}`;
}

async function archiveBinlogs(instanceId: number, ctx: JobContext): Promise<BinlogResult> {
  const node = await ctx.connectDataNode();
  try {
    const serverUuid = await node.serverUuid();
    const indexPath = await resolveIndexPath(ctx, node);
    const basenameDir = path.dirname((await node.variable('log_bin_basename')) ?? indexPath);
    const heads = new Map<string, BinlogHead>();
    const head = async (e: IndexEntry) => {
      let h = heads.get(e.path);
      if (!h) heads.set(e.path, (h = await readBinlogHead(e.path)));
      return h;
    };

    let entries = await readIndexUpToActive(node, indexPath, basenameDir);
    let flushed = false;
    const active = entries[entries.length - 1]!;
    const maxAgeSeconds = ctx.config.backup.maxRpoMinutes * 60;
    const ageSeconds = ctx.now().getTime() / 1000 - (await head(active)).start;
    if (ageSeconds >= maxAgeSeconds && (await hasTransactions(active.path))) {
      ctx.log.info({ active: active.name, ageSeconds: Math.round(ageSeconds), maxRpoMinutes: ctx.config.backup.maxRpoMinutes }, 'RPO bound: FLUSH BINARY LOGS');
      await node.flushBinaryLogs();
      flushed = true;
      entries = await readIndexUpToActive(node, indexPath, basenameDir);
    }

    const rows = await listBinlogRows(ctx.metadata, instanceId);
    const plan = planBinlogArchive(
      entries.map((e) => e.name),
      rows,
    );
    const byName = new Map(entries.map((e, i) => [e.name, i]));
    const result: BinlogResult = { archived: [], skipped: plan.alreadyArchived.length, flushed, active: plan.active };

    if (plan.gap) {
      const first = entries[byName.get(plan.gap.firstAvailable)!]!;
      result.gap = await recordGap(instanceId, plan.gap, new Date((await head(first)).start * 1000), path.dirname(first.path), ctx);
    }

    const codec = getCodec(ctx.config.backup.binlogCompression);
    for (const name of plan.toArchive) {
      if (ctx.signal.aborted) throw new BinlogBatchError(`binlog run interrupted (worker shutting down) before ${name}`, result.archived);
      const i = byName.get(name)!;
      const entry = entries[i]!;
      const next = entries[i + 1]!; // never undefined: the active binlog is last and never in toArchive
      const h = await head(entry);
      const end = (await head(next)).start;
      const backupUuid = backupUuidFor(`binlog:${instanceId}:${serverUuid}:${name}:${h.start}`);
      const existing = await ctx.metadata.getBackup(backupUuid);
      if (existing && isDoneState(existing.state)) {
        result.skipped++;
        continue;
      }
      let objectKey = binlogObjectName(instanceId, name, codec.extension);
      if (await objectKeyHeldByOther(ctx.metadata, instanceId, objectKey, backupUuid)) {
        // A binlog of the same name from an earlier series (before a reset) is archived under this key: keep it.
        objectKey = binlogObjectName(instanceId, `${name}.${h.start}`, codec.extension);
      }
      const fields = {
        startTime: new Date(h.start * 1000),
        endTime: new Date(end * 1000),
        binlogFile: name,
        gtidSet: h.previousGtids,
        backupPath: path.dirname(entry.path),
        backupName: objectKey,
        bucketName: ctx.storage.bucket,
        compression: codec.name,
        overdueDay: ctx.config.backup.binlogStorageDays,
        workerHost: ctx.workerHost,
        jobId: ctx.jobId,
      };
      if (!existing) {
        await ctx.metadata.createBackup({ backupUuid, tbInstanceId: instanceId, state: 'Uploading', backupType: 'binlog', ...fields, info: 'uploading' });
      } else {
        await ctx.metadata.transition(backupUuid, ['Uploading', 'Error'], 'Uploading', { ...fields, info: `uploading (retry after: ${existing.info ?? existing.state})` });
      }
      try {
        const put = await uploadBinlog(entry.path, objectKey, { instanceId, backupUuid, name }, ctx);
        await ctx.metadata.transition(backupUuid, ['Uploading'], 'Completed', {
          backupBytes: put.bytes,
          backupSize: humanBytes(put.bytes),
          sha256: put.sha256,
          objectKey,
          info: `archived and verified (${ctx.config.backup.verify}); ${put.sourceBytes} bytes of binlog`,
        });
        result.archived.push({
          file: name,
          objectKey,
          bytes: put.bytes,
          sha256: put.sha256,
          startTime: fields.startTime.toISOString(),
          endTime: fields.endTime.toISOString(),
        });
        ctx.log.info({ binlog: name, objectKey, bytes: put.bytes }, 'binlog archived');
        await ctx.progress({ stage: 'binlog', archived: result.archived.length, of: plan.toArchive.length }).catch(() => undefined);
      } catch (err) {
        const reason = `archiving ${name} failed: ${(err as Error).message}`;
        await ctx.metadata.markError(backupUuid, reason, (err as Error).stack);
        const later = plan.toArchive.length - plan.toArchive.indexOf(name) - 1;
        throw new BinlogBatchError(
          `${reason} (${result.archived.length} archived before it; it and ${later} later binlog(s) will be retried by the next run)`,
          result.archived,
        );
      }
    }
    return result;
  } finally {
    await node.close();
  }
}

async function resolveIndexPath(ctx: JobContext, node: DataNode): Promise<string> {
  if (ctx.config.backup.binIndexPath) return ctx.config.backup.binIndexPath;
  if (Number(await node.variable('log_bin')) !== 1) throw new PermanentJobError(`binary logging is off on ${node.where} (log_bin = 0): there are no binlogs to archive`);
  const index = await node.variable('log_bin_index');
  if (!index) throw new PermanentJobError(`${node.where} reports no @@log_bin_index; set [backup-conf] bin_index_path`);
  return index;
}

/** The index as the server sees it, cut after the server's active binlog, which is the last entry. */
async function readIndexUpToActive(node: DataNode, indexPath: string, basenameDir: string): Promise<IndexEntry[]> {
  for (let attempt = 1; ; attempt++) {
    // SHOW BINARY LOGS first: a rotation in between only adds lines after the active one we know of.
    const logs = await node.binaryLogs();
    const serverActive = logs.at(-1)?.name;
    if (!serverActive) throw new PermanentJobError(`${node.where} lists no binary logs (SHOW BINARY LOGS is empty): is log_bin on?`);
    const entries = await readIndex(indexPath, basenameDir);
    const pos = entries.findIndex((e) => e.name === serverActive);
    if (pos >= 0) return entries.slice(0, pos + 1);
    if (attempt >= 2) {
      throw new PermanentJobError(
        `binlog index ${indexPath} does not list ${serverActive}, the active binlog of ${node.where}: is bin_index_path the index of this server?`,
      );
    }
  }
}

async function readIndex(indexPath: string, basenameDir: string): Promise<IndexEntry[]> {
  let text: string;
  try {
    text = await readFile(indexPath, 'utf8');
  } catch (err) {
    throw new PermanentJobError(`cannot read binlog index ${indexPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (the binlog job must run on the database host)`);
  }
  const entries: IndexEntry[] = [];
  for (const line of text.split('\n')) {
    const raw = line.trim();
    if (!raw) continue;
    let file = path.isAbsolute(raw) ? raw : path.resolve(path.dirname(indexPath), raw);
    // Relative entries are relative to the server's datadir; the index usually sits there, else next to the basename.
    if (!path.isAbsolute(raw) && !existsSync(file)) file = path.join(basenameDir, path.basename(raw));
    entries.push({ name: path.basename(raw), path: file });
  }
  if (!entries.length) throw new PermanentJobError(`binlog index ${indexPath} is empty`);
  return entries;
}

/** The FORMAT_DESCRIPTION timestamp and PREVIOUS_GTIDS set: the first two events. */
export async function readBinlogHead(file: string): Promise<BinlogHead> {
  let start: number | undefined;
  let previousGtids = '';
  for await (const ev of readEvents(file, { allowTruncatedTail: true })) {
    if (ev.kind === 'format_description') {
      start = ev.header.timestamp;
      continue;
    }
    if (ev.kind === 'previous_gtids') previousGtids = ev.gtidSet;
    break;
  }
  if (start === undefined) throw new Error(`${file}: no FORMAT_DESCRIPTION event`);
  return { start, previousGtids };
}

/** Whether the binlog holds anything beyond its header events (a flush of an empty binlog gains nothing). */
async function hasTransactions(file: string): Promise<boolean> {
  for await (const ev of readEvents(file, { allowTruncatedTail: true, verifyChecksums: false })) {
    if (ev.kind === 'format_description' || ev.kind === 'previous_gtids') continue;
    return true;
  }
  return false;
}

async function uploadBinlog(
  file: string,
  objectKey: string,
  ids: { instanceId: number; backupUuid: string; name: string },
  ctx: JobContext,
): Promise<{ bytes: number; sha256: string; sourceBytes: number }> {
  const codec = getCodec(ctx.config.backup.binlogCompression);
  const size = (await stat(file)).size;
  const expected = await encodedDigest(file, codec, ctx.config.backup.compressionLevel);
  const source = createReadStream(file);
  const raw = new HashingCounter();
  const compressed = codec.compress(ctx.config.backup.compressionLevel);
  source.on('error', (err) => compressed.destroy(err));
  source.pipe(raw).pipe(compressed);
  let put;
  try {
    put = await ctx.storage.putStream(objectKey, compressed, {
      size: codec.name === 'none' ? size : undefined,
      metadata: { 'mcb-instance': String(ids.instanceId), 'mcb-backup-uuid': ids.backupUuid, 'mcb-binlog-file': ids.name, 'mcb-sha256': expected.sha256 },
    });
  } finally {
    source.destroy();
  }
  if (raw.bytes !== size) {
    await ctx.storage.remove(objectKey).catch(() => undefined);
    throw new Error(`${file} changed while it was read: ${raw.bytes} bytes read, ${size} expected (is it still being written?)`);
  }
  if (put.sha256 !== expected.sha256 || expected.sourceBytes !== size) {
    await ctx.storage.remove(objectKey).catch(() => undefined);
    throw new Error(`${file} changed while it was read: uploaded sha256 ${put.sha256}, ${expected.sha256} computed before the upload`);
  }
  try {
    await verifyStoredObject(ctx.storage, objectKey, { bytes: put.bytes, sha256: put.sha256 }, ctx.config.backup.verify);
  } catch (err) {
    // A corrupt object must not stay where a restore would find it.
    await ctx.storage.remove(objectKey).catch(() => undefined);
    throw err;
  }
  return { ...put, sourceBytes: size };
}

/** sha256 and size of what the upload will store: the file through the codec. */
async function encodedDigest(file: string, codec: ReturnType<typeof getCodec>, level: number): Promise<{ sha256: string; sourceBytes: number }> {
  const raw = new HashingCounter();
  const stored = new HashingCounter();
  await pipeline(createReadStream(file), raw, codec.compress(level), stored, new Writable({ write: (_c, _e, done) => done() }));
  return { sha256: stored.digest(), sourceBytes: raw.bytes };
}

async function recordGap(instanceId: number, gap: BinlogGap, firstStart: Date, binlogDir: string, ctx: JobContext): Promise<NonNullable<BinlogResult['gap']>> {
  const from = gap.afterEnd;
  const backupUuid = backupUuidFor(`binlog-gap:${instanceId}:${gap.reason}:${gap.afterFile}:${from?.getTime() ?? 'null'}:${gap.firstAvailable}:${firstStart.getTime()}`);
  const what =
    gap.reason === 'purged'
      ? `binary log(s) ${describeMissing(gap.missing, gap.afterFile, gap.firstAvailable)} were purged from the server before they were archived`
      : `binary log numbering restarted at ${gap.firstAvailable} after ${gap.afterFile} (RESET BINARY LOGS or a new server); binlogs written before the reset and not archived are lost`;
  const info =
    `point-in-time chain broken from ${from ? from.toISOString() : 'unknown'} (end of ${gap.afterFile}) to ${firstStart.toISOString()} ` +
    `(start of ${gap.firstAvailable}): ${what}. A restore cannot reach a point inside this interval; a full backup taken after it starts a new chain.`;
  const existed = await ctx.metadata.getBackup(backupUuid);
  if (!existed) {
    await ctx.metadata.createBackup({
      backupUuid,
      tbInstanceId: instanceId,
      state: 'Error',
      backupType: 'binlog',
      startTime: from ?? undefined,
      endTime: firstStart,
      backupPath: binlogDir,
      backupName: `gap_${instanceId}_${gap.afterFile}_${gap.firstAvailable}`.slice(0, 100),
      bucketName: ctx.storage.bucket,
      overdueDay: ctx.config.backup.binlogStorageDays,
      workerHost: ctx.workerHost,
      jobId: ctx.jobId,
      info,
      errorDetail: info,
    });
    ctx.log.error({ instance: instanceId, gap }, info);
  }
  return {
    reason: gap.reason,
    from: from ? from.toISOString() : null,
    to: firstStart.toISOString(),
    missing: gap.missing,
    recorded: !existed,
    backupUuid,
  };
}
