// Which server each archived binlog row belongs to, before the run plans anything.
//
//  - Rows written since sql/005 record server_uuid.
//  - Rows mcb wrote before it: their backup_uuid was derived from the instance, server_uuid, file name and first-event
//    time, so recomputing it with this server's uuid tells whether they are this server's; if so the column is
//    filled in. Otherwise their server is unknown, which is not this one.
//  - The seed's rows (no worker_host) record no server and, as start_time, the upload time. One whose file is still
//    in this server's index is this server's binlog when its object is that file: same size and same first-event
//    time (read from the object's first bytes). It is then adopted: server_uuid, start_time, end_time and gtid_set
//    are set as mcb sets them, so it counts as archived and its binlog is never uploaded again. A seed row that
//    cannot be matched stays with server_uuid NULL (see isUnmatchedSeedRow in binlog-plan.ts).
import { stat } from 'node:fs/promises';
import type { ArchivedBinlog } from '../jobs/binlog-plan.ts';
import type { JobContext } from '../jobs/types.ts';
import type { ArchivedBinlogRow } from '../metadata/binlog-queries.ts';
import { backupUuidFor } from '../naming.ts';
import { binlogStartOfObject } from '../restore/bucket.ts';
import { instantsAtWallOf, type TimeZone } from '../time/zone.ts';
import type { BinlogHead, IndexEntry } from './index-file.ts';

/** server_uuid stand-in for rows mcb wrote before sql/005 on another server. */
export const UNRECORDED_SERVER = '(a server not recorded)';

export interface SeriesContext {
  instanceId: number;
  serverUuid: string;
  /** The index up to and including the active binlog. */
  entries: IndexEntry[];
  head: (e: IndexEntry) => Promise<BinlogHead>;
}

/** A row whose serverUuid says which server it is from: null only for a seed row no file of this server matches. */
export type IdentifiedRow = ArchivedBinlogRow & ArchivedBinlog;

/** The backup uuid a binlog row of this server gets (and always got): a retried run finds its row by it. */
export function binlogBackupUuid(instanceId: number, serverUuid: string, file: string, startSeconds: number): string {
  return backupUuidFor(`binlog:${instanceId}:${serverUuid}:${file}:${startSeconds}`);
}

export async function identifyRows(rows: ArchivedBinlogRow[], ctx: JobContext, s: SeriesContext): Promise<IdentifiedRow[]> {
  const out: IdentifiedRow[] = [];
  for (const row of rows) {
    if (row.serverUuid) out.push(row);
    else if (row.workerHost !== null) out.push(await identifyMcbRow(row, ctx, s));
    else out.push(await identifySeedRow(row, ctx, s));
  }
  return out;
}

async function identifyMcbRow(row: ArchivedBinlogRow, ctx: JobContext, s: SeriesContext): Promise<IdentifiedRow> {
  const isThisServers = (start: number) => binlogBackupUuid(s.instanceId, s.serverUuid, row.binlogFile, start) === row.backupUuid;
  if (!possibleStartSeconds(row.startTime, ctx.metadata.timeZone).some(isThisServers)) return { ...row, serverUuid: UNRECORDED_SERVER };
  await ctx.metadata.update(row.backupUuid, { serverUuid: s.serverUuid });
  return { ...row, serverUuid: s.serverUuid };
}

/**
 * The first-event times (seconds) a read-back start_time may have been written from: two when its wall time is in
 * the hour a DST change repeats (it reads back as the earlier one).
 */
function possibleStartSeconds(startTime: Date | null, zone: TimeZone): number[] {
  if (!startTime || Number.isNaN(startTime.getTime())) return [];
  return instantsAtWallOf(startTime, zone).map((d) => d.getTime() / 1000);
}

async function identifySeedRow(row: ArchivedBinlogRow, ctx: JobContext, s: SeriesContext): Promise<IdentifiedRow> {
  const unmatched: IdentifiedRow = { ...row, serverUuid: null };
  const i = s.entries.findIndex((e) => e.name === row.binlogFile);
  // The active binlog (last entry) is still being written: the seed cannot have archived it whole.
  if (i < 0 || i === s.entries.length - 1 || row.state !== 'Completed' || row.bucketName !== ctx.storage.bucket) return unmatched;
  const entry = s.entries[i]!;
  const key = row.objectKey ?? row.backupName;
  const head = await s.head(entry);
  const stored = await ctx.storage.stat(key);
  if (!stored || stored.size !== (await stat(entry.path)).size) return unmatched;
  const storedStart = await objectFirstEventTime(ctx, key);
  if (storedStart !== head.start) return unmatched;
  const adopted = {
    serverUuid: s.serverUuid,
    startTime: new Date(head.start * 1000),
    endTime: new Date((await s.head(s.entries[i + 1]!)).start * 1000),
    gtidSet: head.previousGtids,
  };
  await ctx.metadata.update(row.backupUuid, adopted);
  ctx.log.info({ binlog: row.binlogFile, objectKey: key }, 'binlog archived by the seed matches this server\'s file: adopted');
  return { ...row, ...adopted };
}

/** The FORMAT_DESCRIPTION timestamp (seconds) of a stored binlog, from its first bytes; undefined when unreadable. */
async function objectFirstEventTime(ctx: JobContext, key: string): Promise<number | undefined> {
  try {
    return (await binlogStartOfObject(ctx.storage, key, ctx.config.encryption)).getTime() / 1000;
  } catch (err) {
    ctx.log.warn({ objectKey: key, err: (err as Error).message }, 'cannot read the first event of a stored binlog');
    return undefined;
  }
}
