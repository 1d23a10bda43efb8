// Where the archived chain ends (the last done row) and whether the server's binlogs still continue it (pure).
// A chain is one *series*: the binlogs one server wrote since its last RESET BINARY LOGS, in name order.
import { GtidSet, parseBinlogFileName, type BinlogFileName } from '../../binlog/index.ts';
import type { BackupState } from '../../metadata/states.ts';
import { instantsAtWallOf, isoOrNull, sameWallSecond, UTC, type TimeZone } from '../../time/zone.ts';

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
export interface BinlogHead {
  /** Seconds: the FORMAT_DESCRIPTION event's timestamp, when the server opened the file. */
  start: number;
  previousGtids: string;
}

/** The server the index belongs to, and the heads of the files `filesToInspect` names. */
export interface SeriesFacts {
  serverUuid?: string;
  heads?: ReadonlyMap<string, BinlogHead>;
  /**
   * The metadata time zone the rows' start times were read back in (UTC when absent). A DATETIME in the hour a DST
   * change repeats reads back as its earlier instant, so start times are compared as wall times in it.
   */
  timeZone?: TimeZone;
}

const doneStates: readonly string[] = ['Completed', 'Expiration'];

/** Archived once (Completed), or archived and since expired (Expiration). */
export function isDoneState(state: string): boolean {
  return doneStates.includes(state);
}

/** The parts of a binlog file name; throws for a name without a sequence number. */
function parsedBinlogName(name: string): BinlogFileName {
  const p = parseBinlogFileName(name);
  if (!p) throw new Error(`"${name}" is not a binary log file name (<base>.<number>)`);
  return p;
}

/** The sequence number of a binlog file name; throws for a name without one. */
export function seqOf(name: string): number {
  return parsedBinlogName(name).seq;
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
    if (!isDoneState(row.state) || !parseBinlogFileName(row.binlogFile)) continue;
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
  const instants = possibleStartInstants(start, zone);
  return instants.length ? instants.map((d) => d.getTime()) : [-Infinity];
}

/**
 * The instants a read-back start_time may stand for: two when its wall time is in the hour a DST change repeats
 * (it reads back as the earlier one); none for a missing or invalid (zero) DATETIME.
 */
export function possibleStartInstants(start: Date | null, zone: TimeZone): Date[] {
  return start && !Number.isNaN(start.getTime()) ? instantsAtWallOf(start, zone) : [];
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
  const l = parsedBinlogName(name);
  return index.find((n) => {
    const p = parsedBinlogName(n);
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
  const l = parsedBinlogName(last.binlogFile);
  const a = parsedBinlogName(active);
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
        detail: `${last.binlogFile} on the server started at ${isoOrNull(head.start * 1000)}, the archived ${last.binlogFile} at ${isoOrNull(last.startTime) ?? 'an unknown time'}`,
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
