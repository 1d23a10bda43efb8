// Which server each archived binlog row is from, before the run plans anything. Rows since sql/005 record
// server_uuid; older mcb rows are recognised by their backup_uuid (derived from it). A seed row (no worker_host,
// start_time = upload time) is adopted when its object is the file of that name in this server's index (same size
// and first-event time), so it counts as archived; otherwise its server stays unknown (null).
import { stat } from 'node:fs/promises';
import { errorMessage } from '../../errors.ts';
import type { ArchivedBinlogRow } from '../../metadata/binlog-queries.ts';
import { backupUuidFor } from '../../naming.ts';
import { binlogStartOfObject } from '../../restore/bucket.ts';
import type { JobContext } from '../types.ts';
import { possibleStartInstants, type ArchivedBinlog } from './chain.ts';
import type { BinlogRun } from './run.ts';

/** server_uuid stand-in for rows mcb wrote before sql/005 on another server. */
export const UNRECORDED_SERVER = '(a server not recorded)';

/** A row whose serverUuid says which server it is from: null only for a seed row no file of this server matches. */
export type IdentifiedRow = ArchivedBinlogRow & ArchivedBinlog;

/** The backup uuid a binlog row of this server gets (and always got): a retried run finds its row by it. */
export function binlogBackupUuid(instanceId: number, serverUuid: string, file: string, startSeconds: number): string {
  return backupUuidFor(`binlog:${instanceId}:${serverUuid}:${file}:${startSeconds}`);
}

export async function identifyRows(rows: ArchivedBinlogRow[], run: BinlogRun): Promise<IdentifiedRow[]> {
  const out: IdentifiedRow[] = [];
  for (const row of rows) {
    if (row.serverUuid) out.push(row);
    else if (row.workerHost !== null) out.push(await identifyMcbRow(row, run));
    else out.push(await identifySeedRow(row, run));
  }
  return out;
}

async function identifyMcbRow(row: ArchivedBinlogRow, run: BinlogRun): Promise<IdentifiedRow> {
  const isThisServers = (start: number) => binlogBackupUuid(run.instanceId, run.serverUuid, row.binlogFile, start) === row.backupUuid;
  if (!possibleStartInstants(row.startTime, run.ctx.metadata.timeZone).some((d) => isThisServers(d.getTime() / 1000))) return { ...row, serverUuid: UNRECORDED_SERVER };
  await run.ctx.metadata.update(row.backupUuid, { serverUuid: run.serverUuid });
  return { ...row, serverUuid: run.serverUuid };
}


async function identifySeedRow(row: ArchivedBinlogRow, run: BinlogRun): Promise<IdentifiedRow> {
  const { ctx, entries } = run;
  const unmatched: IdentifiedRow = { ...row, serverUuid: null };
  const i = entries.findIndex((e) => e.name === row.binlogFile);
  // The active binlog (last entry) is still being written: the seed cannot have archived it whole.
  if (i < 0 || i === entries.length - 1 || row.state !== 'Completed' || row.bucketName !== ctx.storage.bucket) return unmatched;
  const entry = entries[i]!;
  const key = row.objectKey ?? row.backupName;
  const head = await run.head(entry);
  const stored = await ctx.storage.stat(key);
  if (!stored || stored.size !== (await stat(entry.path)).size) return unmatched;
  const storedStart = await objectFirstEventTime(ctx, key);
  if (storedStart !== head.start) return unmatched;
  const adopted = {
    serverUuid: run.serverUuid,
    startTime: new Date(head.start * 1000),
    endTime: new Date((await run.head(entries[i + 1]!)).start * 1000),
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
    ctx.log.warn({ objectKey: key, err: errorMessage(err) }, 'cannot read the first event of a stored binlog');
    return undefined;
  }
}
