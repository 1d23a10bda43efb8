// What a point-in-time replay applies, decided from the downloaded binlogs before the server starts, and the
// proof afterwards that the restored server holds exactly that.
//
// The stop (a commit time, a GTID, or the end) is looked for in every file in order: the first file in which a
// transaction past the stop exists is cut at the end of the last transaction before it (mysqlbinlog
// --stop-position on the last file named), and later files are not replayed. Every GTID before the cut must
// end up in the restored server's gtid_executed, and none after it.
import path from 'node:path';
import { findRestoreStop, GtidSet, readEvents, transactionGtids, type RestoreStop, type TransactionPoint } from '../binlog/index.ts';

export interface ReplayDecision {
  /** Files to replay, in order; the last one up to stopPosition when set. */
  files: string[];
  stopPosition?: number;
  /** The last transaction replayed from binlogs (it may already be in the clone). */
  last?: TransactionPoint;
  /** GTIDs of every transaction up to the cut: the restored server must hold them all. */
  expected: GtidSet;
  /** GTIDs of the downloaded transactions after the cut: the restored server must hold none. */
  excluded: GtidSet;
  /** The stop was found (always false for `end`). */
  reached: boolean;
}

export async function decideReplay(files: readonly string[], stop: RestoreStop): Promise<ReplayDecision> {
  let expected = new GtidSet();
  let excluded = new GtidSet();
  const chosen: string[] = [];
  let last: TransactionPoint | undefined;
  let stopPosition: number | undefined;
  let reached = false;
  let previousFile: { file: string; executedAtEnd: GtidSet } | undefined;
  for (const file of files) {
    if (reached) {
      excluded = excluded.union((await transactionGtids(file)).before);
      continue;
    }
    const previous = await previousGtidsOf(file);
    if (previousFile) checkContinues(previousFile.file, previousFile.executedAtEnd, file, previous);
    const r = await findRestoreStop(file, stop, { listGtids: true });
    const { before: upToStop, after: pastStop } = r.gtids!;
    if (r.last) last = r.last;
    previousFile = { file, executedAtEnd: previous.union(upToStop).union(pastStop) };
    if (!r.reached) {
      chosen.push(file);
      expected = expected.union(upToStop);
      continue;
    }
    reached = true;
    excluded = excluded.union(pastStop);
    // When the first transaction of this file is already past the stop, nothing of it is replayed.
    if (!r.last) continue;
    chosen.push(file);
    if (r.stoppedEarly) stopPosition = r.last.endPosition;
    expected = expected.union(upToStop);
  }
  return { files: chosen, stopPosition, last, expected, excluded, reached };
}

/** A gap between two binlogs of a chain: transactions executed before `next` began that are in neither `prev` nor before it. */
export class BinlogChainGapError extends Error {
  override readonly name = 'BinlogChainGapError';
}

/**
 * `next` must continue `prev`: every GTID executed before `next` began (its PREVIOUS_GTIDS) was executed by the end
 * of `prev`. Otherwise files of another server or series were chained, or one is missing.
 */
function checkContinues(prevFile: string, executedAtEnd: GtidSet, nextFile: string, nextPrevious: GtidSet): void {
  const missing = nextPrevious.firstNotIn(executedAtEnd);
  if (missing) {
    throw new BinlogChainGapError(
      `gap in the binlog chain between ${path.basename(prevFile)} and ${path.basename(nextFile)}: ${missing} was executed before the second began but is in neither (files of another server or series, or a missing file)`,
    );
  }
}

/** The PREVIOUS_GTIDS of a binlog: every GTID the server had executed before this file began. */
export async function previousGtidsOf(file: string): Promise<GtidSet> {
  for await (const ev of readEvents(file, { allowTruncatedTail: true })) {
    if (ev.kind === 'format_description') continue;
    return ev.kind === 'previous_gtids' ? GtidSet.parse(ev.gtidSet) : new GtidSet();
  }
  return new GtidSet();
}

/**
 * Before replay: the chain must start at or before the clone's consistent point, i.e. every GTID executed before
 * the first binlog began is in the clone. Returns the first GTID that is not, or undefined.
 */
export function firstGtidMissingFromClone(firstBinlogPrevious: GtidSet, cloneExecuted: GtidSet): string | undefined {
  return firstBinlogPrevious.firstNotIn(cloneExecuted);
}

/** After replay: the first expected GTID the server lacks, and the first excluded one it holds. */
export function checkReplayed(executed: GtidSet, decision: Pick<ReplayDecision, 'expected' | 'excluded'>): { missing?: string; extra?: string } {
  const missing = decision.expected.firstNotIn(executed);
  const extra = decision.excluded.intersection(executed).firstNotIn(new GtidSet());
  return { ...(missing ? { missing } : {}), ...(extra ? { extra } : {}) };
}
