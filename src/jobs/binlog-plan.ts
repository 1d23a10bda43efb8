// What a binlog run should archive (pure, unit-tested): the binlog index as the server lists it, the binlog rows the
// metadata center already has for the instance, and what the job read of a few files (their first event time and
// PREVIOUS_GTIDS set) and of the server (its server_uuid).
//
// The chain is kept in name order (mysql-bin.000041 follows mysql-bin.000040) within one *series*: the binlogs one
// server wrote since its last RESET BINARY LOGS. The last *done* binlog (Completed, or Expiration: archived once,
// since expired) is where the chain ends; every closed binlog after it is archived, in order. The active binlog (the
// last one in the index) is never archived.
//
// Gap: the binlog that should follow the last done one is no longer in the index (purged before it was archived)
// → one gap, naming the missing files. A new series (the server is another one, or its numbering restarted) breaks
// the chain as well: one gap saying why, and the new series is archived from its start.
import { GtidSet } from '../binlog/index.ts';
import type { BackupState } from '../metadata/states.ts';
import { instantsAtWallOf, sameWallSecond, UTC, type TimeZone } from '../time/zone.ts';

export interface ArchivedBinlog {
  binlogFile: string;
  state: BackupState;
  startTime: Date | null;
  endTime: Date | null;
  /**
   * The server whose binlog this is. null: a row the seed wrote (it recorded no server) that no run could match to
   * a file of this server yet; its start_time is when the seed uploaded it, not the binlog's first event.
   */
  serverUuid?: string | null;
  /** Its PREVIOUS_GTIDS set, when recorded. */
  gtidSet?: string | null;
}

/** What the job read from the first events of a binlog file. */
export interface BinlogHeadInfo {
  /** Seconds: the FORMAT_DESCRIPTION event's timestamp, when the server opened the file. */
  start: number;
  previousGtids: string;
}

/** The server the index belongs to, and the heads of the files `filesToInspect` names. */
export interface SeriesFacts {
  serverUuid?: string;
  heads?: ReadonlyMap<string, BinlogHeadInfo>;
  /**
   * The metadata time zone the rows' start times were read back in (UTC when absent). A DATETIME in the hour a DST
   * change repeats reads back as its earlier instant, so start times are compared as wall times in it.
   */
  timeZone?: TimeZone;
}

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

function parsed(name: string): { base: string; seq: number } {
  const p = parseBinlogName(name);
  if (!p) throw new Error(`"${name}" is not a binary log file name (<base>.<number>)`);
  return p;
}

function seqOf(name: string): number {
  return parsed(name).seq;
}

/** A row the seed wrote and no run has matched to a file yet: its server and first-event time are unknown. */
function isUnmatchedSeedRow(row: ArchivedBinlog): boolean {
  return row.serverUuid === null;
}

/**
 * The last done row. Rows that know their server come after unmatched seed rows (the seed ran before mcb, and its
 * start_time is an upload time); among each kind the one that started last (a reset numbering starts again at 1,
 * but later in time), by name when two started in the same second or when a DST fold in `zone` leaves their order
 * unknown.
 */
export function lastDone(archived: readonly ArchivedBinlog[], zone: TimeZone = UTC): ArchivedBinlog | undefined {
  let best: ArchivedBinlog | undefined;
  for (const row of archived) {
    if (!isDoneState(row.state) || !parseBinlogName(row.binlogFile)) continue;
    if (!best || comesAfter(row, best, zone)) best = row;
  }
  return best;
}

function comesAfter(row: ArchivedBinlog, other: ArchivedBinlog, zone: TimeZone): boolean {
  const seedRow = isUnmatchedSeedRow(row);
  const seedOther = isUnmatchedSeedRow(other);
  if (seedRow !== seedOther) return seedOther;
  const order = startOrder(row.startTime, other.startTime, zone);
  return order > 0 || (order === 0 && seqOf(row.binlogFile) > seqOf(other.binlogFile));
}

/**
 * 1 when `a` started after `b`, -1 before, 0 when it cannot tell: the same instant, or a read-back wall time in a
 * DST fold that may be either of two instants, one on each side of the other start.
 */
function startOrder(a: Date | null, b: Date | null, zone: TimeZone): number {
  const as = possibleStarts(a, zone);
  const bs = possibleStarts(b, zone);
  if (Math.min(...as) > Math.max(...bs)) return 1;
  if (Math.max(...as) < Math.min(...bs)) return -1;
  return 0;
}

function possibleStarts(start: Date | null, zone: TimeZone): number[] {
  return start && !Number.isNaN(start.getTime()) ? instantsAtWallOf(start, zone).map((d) => d.getTime()) : [-Infinity];
}

/** The index files whose heads planBinlogArchive compares with the last done row: it, and the first file after it. */
export function filesToInspect(index: readonly string[], archived: readonly ArchivedBinlog[], zone: TimeZone = UTC): string[] {
  const last = lastDone(archived, zone);
  if (!last) return [];
  const out: string[] = [];
  if (index.includes(last.binlogFile)) out.push(last.binlogFile);
  const next = firstAfter(index, last.binlogFile);
  if (next) out.push(next);
  return out;
}

/** The first index file of the same base numbered after `name`. */
function firstAfter(index: readonly string[], name: string): string | undefined {
  const l = parsed(name);
  return index.find((n) => {
    const p = parsed(n);
    return p.base === l.base && p.seq > l.seq;
  });
}

/** Whether a binlog whose PREVIOUS_GTIDS is `next` can follow one whose PREVIOUS_GTIDS is `prev` on one server. */
export function gtidsContinue(prev: string, next: string): boolean {
  try {
    return GtidSet.parse(prev).isSubsetOf(GtidSet.parse(next));
  } catch {
    return true; // unreadable sets prove nothing
  }
}

const when = (d: Date | null) => (d ? d.toISOString() : 'an unknown time');
const fromSeconds = (s: number) => new Date(s * 1000).toISOString();

/**
 * Why the server's binlogs are not the series `last` belongs to, or undefined when they continue it. Without facts
 * (no server_uuid, no heads) only the numbering is compared.
 */
export function seriesBreak(
  last: ArchivedBinlog,
  index: readonly string[],
  facts: SeriesFacts = {},
): { reason: 'reset' | 'server-changed'; detail: string } | undefined {
  const active = index[index.length - 1]!;
  const { serverUuid, heads, timeZone = UTC } = facts;
  if (serverUuid && last.serverUuid && last.serverUuid !== serverUuid) {
    return { reason: 'server-changed', detail: `the server's server_uuid is ${serverUuid}, ${last.binlogFile} was archived from ${last.serverUuid}` };
  }
  const l = parsed(last.binlogFile);
  const a = parsed(active);
  if (a.base !== l.base) return { reason: 'reset', detail: `the binlog base name is now ${a.base}, ${last.binlogFile} was archived` };
  if (a.seq < l.seq) return { reason: 'reset', detail: `numbering went backwards: the active binlog is ${active}, ${last.binlogFile} was archived` };

  if (index.includes(last.binlogFile)) {
    if (serverUuid && isUnmatchedSeedRow(last)) {
      return {
        reason: 'reset',
        detail: `${last.binlogFile} on the server is not the binlog the seed archived under that name (its object is missing or holds another file)`,
      };
    }
    const head = heads?.get(last.binlogFile);
    if (head && last.startTime && !sameWallSecond(new Date(head.start * 1000), last.startTime, timeZone)) {
      return {
        reason: 'reset',
        detail: `${last.binlogFile} on the server started at ${fromSeconds(head.start)}, the archived ${last.binlogFile} at ${when(last.startTime)}`,
      };
    }
    return undefined;
  }

  const next = firstAfter(index, last.binlogFile);
  const head = next ? heads?.get(next) : undefined;
  if (next && head && last.gtidSet && !gtidsContinue(last.gtidSet, head.previousGtids)) {
    return {
      reason: 'reset',
      detail: `the GTIDs executed before ${next} (${head.previousGtids || 'none'}) do not include those executed before the archived ${last.binlogFile} (${last.gtidSet})`,
    };
  }
  return undefined;
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
