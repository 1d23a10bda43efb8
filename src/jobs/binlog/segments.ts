// The streamer's segments of a binlog that is now archived whole go once that archive's row is Completed (uploaded
// and verified): objects first, then rows, so a failure halfway leaves rows the next run finds again. Objects a
// crash left without a row (uploaded, not yet recorded) are found by their name's prefix.
import { errorMessage } from '../../errors.ts';
import { listBinlogRows } from '../../metadata/binlog-queries.ts';
import { binlogFileKey, deleteBinlogSegments, listBinlogSegments, seriesStartOf, type BinlogSegment } from '../../metadata/binlog-segments.ts';
import { binlogSegmentObjectPrefix } from '../../naming.ts';
import type { BinlogRun } from './run.ts';

/** Removes the segments of every archived file; returns how many objects went. Never throws: the next run retries. */
export async function removeSegmentsOfArchivedFiles(run: Pick<BinlogRun, 'instanceId' | 'ctx'>): Promise<number> {
  const { instanceId, ctx } = run;
  try {
    const segments = await listBinlogSegments(ctx.metadata, instanceId);
    if (!segments.length) return 0;
    const archived = new Set(
      (await listBinlogRows(ctx.metadata, instanceId))
        .filter((r) => r.state === 'Completed' && r.startTime && !Number.isNaN(r.startTime.getTime()))
        .map((r) => binlogFileKey(r.binlogFile, seriesStartOf(r.startTime!))),
    );
    let removed = 0;
    for (const group of groupByFile(segments).values()) {
      const { binlogFile, seriesStart } = group[0]!;
      if (!archived.has(binlogFileKey(binlogFile, seriesStart))) continue;
      for await (const o of ctx.storage.list(binlogSegmentObjectPrefix(instanceId, binlogFile, seriesStart))) {
        await ctx.storage.remove(o.key);
        removed++;
      }
      await deleteBinlogSegments(ctx.metadata, group.map((s) => s.id));
      ctx.log.info({ binlog: binlogFile, segments: group.length }, `segments of ${binlogFile} removed: the whole file is archived`);
    }
    return removed;
  } catch (err) {
    ctx.log.warn({ err: { message: errorMessage(err) } }, 'removing the segments of archived binlogs failed; the next run tries again');
    return 0;
  }
}

function groupByFile(segments: BinlogSegment[]): Map<string, BinlogSegment[]> {
  const out = new Map<string, BinlogSegment[]>();
  for (const s of segments) {
    const k = binlogFileKey(s.binlogFile, s.seriesStart);
    out.set(k, [...(out.get(k) ?? []), s]);
  }
  return out;
}
