// What a binlog run should archive, decided from names only (pure, unit-tested): the binlog index as the server
// lists it, and the binlog rows the metadata center already has for the instance.
//
// The chain is kept in name order (mysql-bin.000041 follows mysql-bin.000040). The last *done* binlog (Completed,
// or Expiration: archived once, since expired) is where the chain ends; every closed binlog after it is archived,
// in order. The active binlog (the last one in the index) is never archived.
//
// Gap: the binlog that should follow the last done one is no longer in the index (purged before it was archived)
// → one gap, naming the missing files. Reset: the numbering went backwards (RESET BINARY LOGS, or a new datadir
// on the same host) → the chain is broken as well, and the new numbering is archived from its start.
import type { BackupState } from '../metadata/states.ts';

export interface ArchivedBinlog {
  binlogFile: string;
  state: BackupState;
  startTime: Date | null;
  endTime: Date | null;
}

export interface BinlogGap {
  reason: 'purged' | 'reset';
  /** The last binlog archived before the gap. */
  afterFile: string;
  /** Its end_time: the last moment the chain covers. */
  afterEnd: Date | null;
  /** The first binlog still on the server after the gap (may be the active one). */
  firstAvailable: string;
  /** Files known to be lost (purged case, same base name): e.g. mysql-bin.000005, mysql-bin.000006. */
  missing: string[];
}

export interface BinlogPlan {
  /** The binlog being written: never archived. */
  active: string;
  /** Closed binlogs to archive, in order. */
  toArchive: string[];
  /** Closed binlogs in the index already done (Completed or Expiration). */
  alreadyArchived: string[];
  gap?: BinlogGap;
}

const doneStates: readonly string[] = ['Completed', 'Expiration'];

export function isDoneState(state: string): boolean {
  return doneStates.includes(state);
}

/** `mysql-bin.000042` → { base: 'mysql-bin', seq: 42, width: 6 }. */
export function parseBinlogName(name: string): { base: string; seq: number; width: number } | undefined {
  const m = /^(.*)\.(\d+)$/.exec(name);
  if (!m) return undefined;
  return { base: m[1]!, seq: Number(m[2]), width: m[2]!.length };
}

function seqOf(name: string): number {
  const p = parseBinlogName(name);
  if (!p) throw new Error(`"${name}" is not a binary log file name (<base>.<number>)`);
  return p.seq;
}

/**
 * The last done row: the one that started last (a reset numbering starts again at 1, but later in time), by
 * name when two started in the same second.
 */
export function lastDone(archived: readonly ArchivedBinlog[]): ArchivedBinlog | undefined {
  let best: ArchivedBinlog | undefined;
  for (const row of archived) {
    if (!isDoneState(row.state) || !parseBinlogName(row.binlogFile)) continue;
    if (!best) {
      best = row;
      continue;
    }
    const a = row.startTime?.getTime() ?? -Infinity;
    const b = best.startTime?.getTime() ?? -Infinity;
    if (a > b || (a === b && seqOf(row.binlogFile) > seqOf(best.binlogFile))) best = row;
  }
  return best;
}

/**
 * @param index binlog file names (no directory) in index order; the last one is the active binlog.
 * @param archived this instance's binlog rows (any state).
 */
export function planBinlogArchive(index: readonly string[], archived: readonly ArchivedBinlog[]): BinlogPlan {
  if (!index.length) throw new Error('the binlog index is empty: is log_bin on?');
  for (const name of index) seqOf(name);
  const active = index[index.length - 1]!;
  const closed = index.slice(0, -1);
  const doneNames = new Set(archived.filter((r) => isDoneState(r.state)).map((r) => r.binlogFile));
  const last = lastDone(archived);

  if (!last) {
    // First run (or nothing ever completed): the whole index but the active binlog.
    return { active, toArchive: closed.filter((n) => !doneNames.has(n)), alreadyArchived: closed.filter((n) => doneNames.has(n)) };
  }

  const lastSeq = seqOf(last.binlogFile);
  if (seqOf(active) < lastSeq) {
    // Numbering went backwards: a new series. Archive it from the start; the caller checks each file's identity.
    return {
      active,
      toArchive: [...closed],
      alreadyArchived: [],
      gap: { reason: 'reset', afterFile: last.binlogFile, afterEnd: last.endTime, firstAvailable: index[0]!, missing: [] },
    };
  }

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
  const a = parseBinlogName(from);
  const b = parseBinlogName(to);
  if (!a || !b || a.base !== b.base) return [];
  const out: string[] = [];
  for (let s = a.seq + 1; s < b.seq && out.length < max; s++) out.push(`${a.base}.${String(s).padStart(a.width, '0')}`);
  return out;
}

/** "mysql-bin.000005 … mysql-bin.000009 (5 files)" or the list when short. */
export function describeMissing(missing: readonly string[], from: string, to: string): string {
  const a = parseBinlogName(from);
  const b = parseBinlogName(to);
  const count = a && b && a.base === b.base ? b.seq - a.seq - 1 : missing.length;
  if (!missing.length) return 'unknown files';
  if (count <= 5) return missing.join(', ');
  return `${missing[0]} … ${a!.base}.${String(b!.seq - 1).padStart(a!.width, '0')} (${count} files)`;
}
