// Which closed binlogs this run archives: the rows the metadata center has, matched to this server, against the index.
import { backfillSeedBinlogRows, listBinlogRows } from '../../metadata/binlog-queries.ts';
import type { BackupRow } from '../../metadata/index.ts';
import { formatInZone, type TimeZone } from '../../time/zone.ts';
import type { JobContext } from '../types.ts';
import { filesToInspect, isDoneState, type BinlogHead } from './chain.ts';
import { planBinlogArchive, type BinlogPlan } from './plan.ts';
import { entryNamed, type BinlogRun } from './run.ts';
import { binlogBackupUuid, identifyRows, type IdentifiedRow } from './series.ts';

interface BinlogChoice {
  plan: BinlogPlan;
  /** Identities (server, file, start) of the done rows: a file among them is archived already. */
  archivedHere: Set<string>;
}

export async function chooseBinlogsToArchive(run: BinlogRun): Promise<BinlogChoice> {
  const { instanceId, serverUuid, ctx } = run;
  await backfillSeedBinlogRows(ctx.metadata, instanceId);
  const rows = await identifyRows(await listBinlogRows(ctx.metadata, instanceId), run);
  const names = run.entries.map((e) => e.name);
  await abandonUploadsOfPurgedFiles(rows, names, ctx);
  const timeZone = ctx.metadata.timeZone;
  const plan = planBinlogArchive(names, rows, { serverUuid, timeZone, heads: await headsOf(filesToInspect(names, rows, timeZone), run) });
  return { plan, archivedHere: archivedIdentities(rows, timeZone) };
}

/** The row `name` is archived under, or undefined when it is archived already (a done row of it, or of its identity). */
export async function rowToArchive(
  run: BinlogRun,
  archivedHere: Set<string>,
  name: string,
  h: BinlogHead,
): Promise<{ backupUuid: string; existing: BackupRow | undefined } | undefined> {
  const { instanceId, serverUuid, ctx } = run;
  if (archivedHere.has(identity(serverUuid, name, new Date(h.start * 1000), ctx.metadata.timeZone))) return undefined;
  const backupUuid = binlogBackupUuid(instanceId, serverUuid, name, h.start);
  const existing = await ctx.metadata.getBackup(backupUuid);
  if (existing && isDoneState(existing.state)) return undefined;
  return { backupUuid, existing };
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

async function headsOf(names: string[], run: BinlogRun): Promise<Map<string, BinlogHead>> {
  const heads = new Map<string, BinlogHead>();
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
