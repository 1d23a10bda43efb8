// What a binlog run should archive (pure): every closed binlog after the last done one, in order; the active binlog
// (last in the index) never. A purged next file or a new series is a gap: reported once, then archiving carries on.
import { binlogFileName, parseBinlogFileName } from '../../binlog/index.ts';
import { isDoneState, lastDone, seqOf, seriesBreak, type ArchivedBinlog, type SeriesFacts } from './chain.ts';

export type GapReason = 'purged' | 'reset' | 'server-changed';

export interface BinlogGap {
  reason: GapReason;
  /** The last binlog archived before the gap. */
  afterFile: string;
  /** Its end_time: the last moment the chain covers. */
  afterEnd: Date | null;
  /** The first binlog still on the server after the gap (may be the active one). */
  firstAvailable: string;
  /** Files known to be lost (purged case, same base name): e.g. mysql-bin.000005, mysql-bin.000006. */
  missing: string[];
  /** reset / server-changed: what showed that the server's binlogs are a new series. */
  detail?: string;
}

export interface BinlogPlan {
  /** The binlog being written: never archived. */
  active: string;
  /** Closed binlogs to archive, in order (the job still skips those archived already, by server, name and start). */
  toArchive: string[];
  /** Closed binlogs in the index already done (Completed or Expiration). */
  alreadyArchived: string[];
  gap?: BinlogGap;
}

/**
 * @param index binlog file names (no directory) in index order; the last one is the active binlog.
 * @param archived this instance's binlog rows (any state).
 * @param facts the server's server_uuid and the heads of the files filesToInspect() names.
 */
export function planBinlogArchive(index: readonly string[], archived: readonly ArchivedBinlog[], facts: SeriesFacts = {}): BinlogPlan {
  if (!index.length) throw new Error('the binlog index is empty: is log_bin on?');
  for (const name of index) seqOf(name);
  const active = index[index.length - 1]!;
  const closed = index.slice(0, -1);
  const last = lastDone(archived, facts.timeZone);

  if (!last) {
    // First run (or nothing ever completed): the whole index but the active binlog.
    const doneNames = new Set(archived.filter((r) => isDoneState(r.state)).map((r) => r.binlogFile));
    return { active, toArchive: closed.filter((n) => !doneNames.has(n)), alreadyArchived: closed.filter((n) => doneNames.has(n)) };
  }

  const broken = seriesBreak(last, index, facts);
  if (broken) {
    // A new series: archive it from its start. The job skips files of it that are archived already.
    return {
      active,
      toArchive: [...closed],
      alreadyArchived: [],
      gap: { reason: broken.reason, detail: broken.detail, afterFile: last.binlogFile, afterEnd: last.endTime, firstAvailable: index[0]!, missing: [] },
    };
  }

  const lastSeq = seqOf(last.binlogFile);
  const doneNames = new Set(archived.filter((r) => isDoneState(r.state)).map((r) => r.binlogFile));
  const after = index.filter((n) => seqOf(n) > lastSeq);
  const toArchive = closed.filter((n) => seqOf(n) > lastSeq);
  const alreadyArchived = closed.filter((n) => seqOf(n) <= lastSeq && doneNames.has(n));
  const plan: BinlogPlan = { active, toArchive, alreadyArchived };
  const first = after[0];
  if (first && seqOf(first) > lastSeq + 1) {
    plan.gap = {
      reason: 'purged',
      afterFile: last.binlogFile,
      afterEnd: last.endTime,
      firstAvailable: first,
      missing: missingBetween(last.binlogFile, first),
    };
  }
  return plan;
}

/** The file names strictly between two binlogs of the same series (at most 50 listed). */
export function missingBetween(from: string, to: string, max = 50): string[] {
  const a = parseBinlogFileName(from);
  const b = parseBinlogFileName(to);
  if (!a || !b || a.base !== b.base) return [];
  const out: string[] = [];
  for (let s = a.seq + 1; s < b.seq && out.length < max; s++) out.push(binlogFileName(a.base, s, a.digits));
  return out;
}
