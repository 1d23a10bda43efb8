// `binlog`: archive every closed binary log of this node, once, in order, with no holes (docs/binlog-backups.md).
// Runs on the database host (it reads the binlogs from disk), under a metadata-center lock per instance. The steps
// are in ./binlog/; a failed file stops the batch (its row is Error, the job fails) and the next run retries it.
import { getCodec } from '../archive/index.ts';
import { errorMessage } from '../errors.ts';
import { recordBinlogCheck } from '../metadata/job-outcomes.ts';
import { MetadataError } from '../metadata/index.ts';
import { archiveBinlogFile, type ArchivedBinlogInfo } from './binlog/archive-file.ts';
import { chooseBinlogsToArchive, rowToArchive } from './binlog/choose.ts';
import { recordGap, type GapReport } from './binlog/gap.ts';
import { binlogIndexReader, headCache } from './binlog/index-file.ts';
import { requirePitrPreconditions } from './binlog/preconditions.ts';
import { flushForRpo } from './binlog/rpo-flush.ts';
import { entryNamed, type BinlogRun } from './binlog/run.ts';
import { removeSegmentsOfArchivedFiles } from './binlog/segments.ts';
import { defineJob, requireInt, requireOwnEnabledInstance, type JobContext } from './types.ts';

export interface BinlogPayload {
  instanceId: number;
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
    await requireOwnEnabledInstance(ctx, instanceId, 'archives the binlogs of');
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

async function archiveBinlogs(instanceId: number, ctx: JobContext): Promise<BinlogResult> {
  const node = await ctx.connectDataNode();
  try {
    const serverUuid = await node.serverUuid();
    await requirePitrPreconditions(instanceId, serverUuid, node, ctx);
    const readIndex = await binlogIndexReader(ctx, node);
    const head = headCache();
    const { entries, flushed } = await flushForRpo(instanceId, node, readIndex, head, ctx);
    const run: BinlogRun = { instanceId, serverUuid, entries, head, codec: getCodec(ctx.config.backup.binlogCompression), ctx };

    const { plan, archivedHere } = await chooseBinlogsToArchive(run);
    const result: BinlogResult = { archived: [], skipped: plan.alreadyArchived.length, flushed, active: plan.active };
    if (plan.gap) result.gap = await recordGap(run, plan.gap);

    for (const name of plan.toArchive) {
      if (ctx.signal.aborted) throw new BinlogBatchError(`binlog run interrupted (worker shutting down) before ${name}`, result.archived);
      const entry = entryNamed(run, name);
      const h = await head(entry);
      const row = await rowToArchive(run, archivedHere, name, h);
      if (!row) {
        result.skipped++;
        continue;
      }
      try {
        result.archived.push(await archiveBinlogFile(run, entry, h, row));
        await ctx.progress({ stage: 'binlog', archived: result.archived.length, of: plan.toArchive.length }).catch(() => undefined);
      } catch (err) {
        const later = plan.toArchive.length - plan.toArchive.indexOf(name) - 1;
        throw new BinlogBatchError(
          `${errorMessage(err)} (${result.archived.length} archived before it; it and ${later} later binlog(s) will be retried by the next run)`,
          result.archived,
        );
      }
    }
    // Every closed binlog is archived now: binlog staleness counts from here, also when nothing was new.
    await recordBinlogCheck(ctx.metadata, instanceId, ctx.now());
    await removeSegmentsOfArchivedFiles(run);
    return result;
  } finally {
    await node.close();
  }
}
