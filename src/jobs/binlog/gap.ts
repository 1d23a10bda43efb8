// One visible Error row per break in the point-in-time chain (docs/binlog-backups.md "Gaps").
import path from 'node:path';
import { binlogFileName, parseBinlogFileName } from '../../binlog/index.ts';
import { backupUuidFor } from '../../naming.ts';
import { isoOrNull } from '../../time/zone.ts';
import type { BinlogGap, GapReason } from './plan.ts';
import { entryNamed, type BinlogRun } from './run.ts';

export interface GapReport {
  reason: GapReason;
  /** reset / server-changed: what showed that the server's binlogs are a new series. */
  detail?: string;
  from: string | null;
  to: string | null;
  missing: string[];
  /** False when the gap row existed already (an earlier run found the same gap). */
  recorded: boolean;
  backupUuid: string;
}

/** "mysql-bin.000005 … mysql-bin.000009 (5 files)" or the list when short. */
export function describeMissing(missing: readonly string[], from: string, to: string): string {
  const a = parseBinlogFileName(from);
  const b = parseBinlogFileName(to);
  const count = a && b && a.base === b.base ? b.seq - a.seq - 1 : missing.length;
  if (!missing.length) return 'unknown files';
  if (count <= 5) return missing.join(', ');
  return `${missing[0]} … ${binlogFileName(a!.base, b!.seq - 1, a!.digits)} (${count} files)`;
}

function whatHappened(gap: BinlogGap): string {
  switch (gap.reason) {
    case 'purged':
      return `binary log(s) ${describeMissing(gap.missing, gap.afterFile, gap.firstAvailable)} were purged from the server before they were archived`;
    case 'reset':
      return (
        `the binlog series restarted (${gap.detail ?? `numbering restarted at ${gap.firstAvailable} after ${gap.afterFile}`}): ` +
        'RESET BINARY LOGS, or a new data directory; binlogs written before it and not archived are lost, the new series is archived from its start'
      );
    case 'server-changed':
      return (
        `the worker now reads another server's binlogs (${gap.detail ?? 'server_uuid changed'}): a failover, or the worker moved to ` +
        'another replica; the new server\'s binlogs are archived from the start of its series'
      );
  }
}

/** The gap's Error row (once: a later run that finds the same gap finds its row), from the end of the chain to the next file's start. */
export async function recordGap(run: BinlogRun, gap: BinlogGap): Promise<GapReport> {
  const { instanceId, serverUuid, ctx } = run;
  const first = entryNamed(run, gap.firstAvailable);
  const firstStart = new Date((await run.head(first)).start * 1000);
  // A seed row's zero DATETIME reads back as an invalid date: the chain's end is then unknown.
  const from = isoOrNull(gap.afterEnd) === null ? null : gap.afterEnd;
  const backupUuid = backupUuidFor(`binlog-gap:${instanceId}:${gap.reason}:${gap.afterFile}:${from?.getTime() ?? 'null'}:${gap.firstAvailable}:${firstStart.getTime()}`);
  const info =
    `point-in-time chain broken from ${isoOrNull(from) ?? 'unknown'} (end of ${gap.afterFile}) to ${firstStart.toISOString()} ` +
    `(start of ${gap.firstAvailable}): ${whatHappened(gap)}. A restore cannot reach a point inside this interval; a full backup taken after it starts a new chain.`;
  const existed = await ctx.metadata.getBackup(backupUuid);
  if (!existed) {
    await ctx.metadata.createBackup({
      backupUuid,
      tbInstanceId: instanceId,
      state: 'Error',
      backupType: 'binlog',
      startTime: from ?? undefined,
      endTime: firstStart,
      backupPath: path.dirname(first.path),
      backupName: `gap_${instanceId}_${gap.afterFile}_${gap.firstAvailable}`.slice(0, 100),
      bucketName: ctx.storage.bucket,
      overdueDay: ctx.config.backup.binlogStorageDays,
      serverUuid,
      workerHost: ctx.workerHost,
      jobId: ctx.jobId,
      info,
      errorDetail: info,
    });
    ctx.log.error({ instance: instanceId, gap }, info);
  }
  return {
    reason: gap.reason,
    ...(gap.detail ? { detail: gap.detail } : {}),
    from: isoOrNull(from),
    to: firstStart.toISOString(),
    missing: gap.missing,
    recorded: !existed,
    backupUuid,
  };
}
