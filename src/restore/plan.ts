// Point-in-time restore planning (pure): which full backup and which archived binary logs restore an instance
// to a target time, or a clear reason why that cannot be done. Inputs come from metadata rows (restore.ts) or
// from object names + binlog headers (--from-bucket); this file does no I/O. A binlog held only as streamed
// segments is a candidate like any other (segments.ts builds it), its bytes coming from its segments.
import type { BackupRow } from '../metadata/index.ts';
import { compressionOfObjectName, fullBackupBaseOf, seedFullObjectName } from '../naming.ts';
import { GtidSet } from '../binlog/gtid-set.ts';
import { parseBinlogFileName } from '../binlog/index.ts';
import { formatInstant, formatLocalTime, parseInstant, UTC, type TimeZone } from '../time/zone.ts';

/**
 * A time target: `at` cut to the millisecond, `atMicros` as typed (epoch microseconds).
 * A GTID target: stop right before the first transaction of `gtids` (`include` false) or right after it.
 */
export type RestoreTarget =
  | { kind: 'latest' }
  | { kind: 'time'; at: Date; atMicros: number }
  | { kind: 'gtid'; gtids: string; include: boolean };

export interface FullCandidate {
  /** Object key in the bucket (bak_<id>_<ts>.tar.gz). */
  objectKey: string;
  bucket?: string;
  /** The recovery point (clone END_TIME). */
  endTime: Date;
  /** Whether endTime is exact (metadata) or an estimate (object name timestamp, --from-bucket without metadata). */
  endTimeExact: boolean;
  compression: string | null;
  bytes: number | null;
  sha256: string | null;
  gtidSet: string | null;
  backupUuid?: string;
  /**
   * The binlog file holding the clone's consistent point (clone_status BINLOG_FILE, stored on the full row since
   * sql/004). The chain starts there. Absent for seed-era rows and --from-bucket: the start is then chosen by time.
   */
  binlogFile?: string | null;
  binlogPosition?: number | null;
  /** When the clone started: the earliest its consistent point can be (rows without binlogFile start there). */
  startTime?: Date | null;
  /** backup_name of the row (seed: the archive's name), for `--backup NAME`. */
  name?: string;
  /** A restore test of this backup failed: never picked unless named. */
  verifyFailed?: boolean;
  /** Written by the seed's script: no checksum, no object key, recovery point = the row's end_time. */
  seedEra?: boolean;
}

/**
 * One segment object of a streamed binlog: bytes [from, to) of the file as the server wrote them, cut at a
 * transaction boundary (then compressed and encrypted like log_ objects).
 */
export interface SegmentRef {
  objectKey: string;
  bucket?: string;
  from: number;
  to: number;
  /** Bytes of the stored object (compressed, encrypted); null when unknown. */
  storedBytes: number | null;
  /** sha256 of the stored object (the row's, or its mcb-sha256 metadata); null: not verifiable. */
  sha256: string | null;
  compression: string | null;
  encrypted: boolean;
  /** The key id of an encrypted segment, when known without a request (the row's encryption_key_id). */
  encryptionKeyId?: string | null;
  /** Commit time of the segment's last transaction (the row's); unknown in --from-bucket mode. */
  lastCommitTime?: Date | null;
  /** The segment ends with the file's ROTATE or STOP event; unknown (undefined) in --from-bucket mode. */
  closesFile?: boolean;
}

export interface BinlogCandidate {
  /** The binlog file name, e.g. mysql-bin.000042. */
  file: string;
  /** The archived object; for a file held only as segments, its first segment. */
  objectKey: string;
  bucket?: string;
  /** Time of the file's first event. */
  startTime: Date;
  /** The next binlog's start; null when unknown (the newest file in --from-bucket mode before download). */
  endTime: Date | null;
  compression: string | null;
  bytes: number | null;
  sha256: string | null;
  backupUuid?: string;
  /**
   * The file is in the bucket only as streamed segments (no whole `log_` object): these, chained from byte 0, are
   * downloaded in order into one file. Absent for an archived binlog.
   */
  segments?: SegmentRef[];
}

export interface RestorePlan {
  target: RestoreTarget;
  full: FullCandidate;
  /** In replay order. Empty when the full backup alone reaches the target. */
  binlogs: BinlogCandidate[];
  /** The latest time the chosen objects can restore to (end of the last binlog, or the full's recovery point). */
  coveredUntil: Date;
  /**
   * Time targets: the archived binlogs that follow the chain, in order. The chain ends with the newest file the
   * server opened at or before the target, by the server's clock; a replica's binlog may still hold, in the next
   * file, transactions its source committed before the target. The restore reads them only when the target is not
   * reached in the chain.
   */
  following?: BinlogCandidate[];
}

export type PlanRefusal = 'no-full' | 'too-early' | 'too-late' | 'gap';

export class RestorePlanError extends Error {
  override readonly name = 'RestorePlanError';
  constructor(
    readonly reason: PlanRefusal,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Parses `latest` or a time, `YYYY-MM-DD HH:MM:SS[.ffffff]` (space or `T`) in `zone`, or with its own `Z`/`±HH:MM`
 * (parseInstant). Throws TimeError saying what is wrong (no such date, a wall time skipped by DST, …).
 */
export function parseTarget(text: string, zone: TimeZone): RestoreTarget {
  if (text.trim().toLowerCase() === 'latest') return { kind: 'latest' };
  const { date, micros } = parseInstant(text, zone);
  return { kind: 'time', at: date, atMicros: micros };
}

/** `latest`, or the target instant with its offset: `2026-12-01 15:04:05 +08:00 (Asia/Shanghai)`. */
export function describeTarget(t: RestoreTarget, zone: TimeZone = UTC): string {
  if (t.kind === 'gtid') return `${t.include ? 'through' : 'just before'} GTID ${t.gtids}`;
  return t.kind === 'latest' ? 'latest' : formatInstant(t.atMicros, zone);
}

/** By start time (a reset numbering starts again at 1, later in time), then by number within a base name. */
function compareBinlogs(a: BinlogCandidate, b: BinlogCandidate): number {
  const byTime = a.startTime.getTime() - b.startTime.getTime();
  if (byTime) return byTime;
  const x = parseBinlogFileName(a.file);
  const y = parseBinlogFileName(b.file);
  if (x && y && x.base === y.base) return x.seq - y.seq;
  return a.file.localeCompare(b.file);
}

/**
 * The object of a full row: object_key (ours), else the seed's archive name. The seed's script recorded the
 * archive (`bak_<id>_<ts>.tar.gz`) or its folder (`bak_<id>_<ts>`) in backup_name.
 */
export function fullObjectKeyOf(row: Pick<BackupRow, 'objectKey' | 'backupName'>): string | undefined {
  return row.objectKey || seedFullObjectName(row.backupName);
}

/** Metadata rows → candidates: Completed, not deleted, with an object (ours, or the seed's by name). */
export function candidatesFromRows(rows: BackupRow[]): { fulls: FullCandidate[]; binlogs: BinlogCandidate[] } {
  const live = rows.filter((r) => r.state === 'Completed' && !r.isDelete);
  const usable = live.filter((r) => r.objectKey);
  const fulls = live
    .filter((r) => r.backupType === 'full' && r.endTime && fullObjectKeyOf(r))
    .map<FullCandidate>((r) => ({
      objectKey: fullObjectKeyOf(r)!,
      bucket: r.bucketName,
      endTime: r.endTime!,
      endTimeExact: true,
      compression: r.compression ?? compressionOfObjectName(fullObjectKeyOf(r)!),
      bytes: r.backupBytes,
      sha256: r.sha256,
      gtidSet: r.gtidSet,
      backupUuid: r.backupUuid,
      binlogFile: r.binlogFile || null,
      binlogPosition: r.binlogPosition ?? null,
      startTime: r.startTime,
      name: r.backupName,
      verifyFailed: r.verifyState === 'failed',
      seedEra: !r.objectKey,
    }));
  const seen = new Set<string>();
  const binlogs: BinlogCandidate[] = [];
  for (const r of [...usable].sort((a, b) => a.id - b.id)) {
    if (r.backupType !== 'binlog' || !r.binlogFile || !r.startTime) continue;
    const key = `${r.binlogFile}@${r.startTime.getTime()}`;
    if (seen.has(key)) continue;
    seen.add(key);
    binlogs.push({
      file: r.binlogFile,
      objectKey: r.objectKey!,
      bucket: r.bucketName,
      startTime: r.startTime,
      endTime: r.endTime,
      compression: r.compression,
      bytes: r.backupBytes,
      sha256: r.sha256,
      backupUuid: r.backupUuid,
    });
  }
  return { fulls, binlogs };
}

/** Whether `name` names this full: its object key, its backup_name, its uuid, or the key without extension. */
function namesFull(f: FullCandidate, name: string): boolean {
  return [f.objectKey, f.name, f.backupUuid, fullBackupBaseOf(f.objectKey)].includes(name);
}

/**
 * The full backup to restore from: the one named by `backup`, else the newest one at or before the target whose
 * restore test did not fail (a backup known to be bad is never chosen silently).
 */
function chooseFull(all: FullCandidate[], target: RestoreTarget, backup: string | undefined, zone: TimeZone): FullCandidate {
  const fulls = [...all].sort((a, b) => a.endTime.getTime() - b.endTime.getTime());
  if (!fulls.length) throw new RestorePlanError('no-full', 'no Completed full backup is archived for this instance: nothing to restore from');
  const atOrBefore = (f: FullCandidate) => {
    if (target.kind === 'time') return f.endTime.getTime() <= target.at.getTime();
    // A clone that already holds the GTID cannot be rolled forward to just before it (unknown sets: the replay proof decides).
    if (target.kind === 'gtid' && f.gtidSet) return GtidSet.parse(f.gtidSet).intersection(GtidSet.parse(target.gtids)).isEmpty();
    return true;
  };
  if (backup !== undefined) {
    const named = fulls.find((f) => namesFull(f, backup));
    if (!named) throw new RestorePlanError('no-full', `no Completed full backup named ${backup} (give its object key, backup_name or backup uuid; see mcb backups list --type full)`);
    if (!atOrBefore(named)) {
      throw new RestorePlanError('too-early', `target ${describeTarget(target, zone)} is before the recovery point ${formatLocalTime(named.endTime, zone)} of ${named.objectKey}`);
    }
    return named;
  }
  const good = fulls.filter((f) => !f.verifyFailed);
  const failedNames = fulls.filter((f) => f.verifyFailed).map((f) => f.objectKey);
  const eligible = good.filter(atOrBefore);
  if (eligible.length) return eligible[eligible.length - 1]!;
  const failedEligible = fulls.filter((f) => f.verifyFailed && atOrBefore(f));
  if (failedEligible.length) {
    const names = failedEligible.map((f) => f.objectKey).join(', ');
    throw new RestorePlanError(
      'no-full',
      `every full backup that can reach ${describeTarget(target, zone)} failed its restore test (${names}); to restore from one anyway, name it with --backup NAME`,
    );
  }
  const oldest = (good[0] ?? fulls[0])!;
  throw new RestorePlanError(
    'too-early',
    `target ${describeTarget(target, zone)} is before the oldest full backup: ${oldest.objectKey} has recovery point ${formatLocalTime(oldest.endTime, zone)}; choose a time at or after it` +
      (failedNames.length ? ` (full backups that failed their restore test are not counted: ${failedNames.join(', ')})` : ''),
  );
}

/**
 * Picks the full backup (chooseFull) and the binlogs that cover
 * (recovery point, target]; for `latest`, the newest full and every archived binlog after it.
 * Throws RestorePlanError (no-full, too-early, too-late, gap) with a message a DBA can act on.
 */
export function planRestore(input: {
  fulls: FullCandidate[];
  binlogs: BinlogCandidate[];
  target: RestoreTarget;
  backup?: string;
  /** The zone times in refusal messages are written in (the metadata time zone); UTC when absent. */
  zone?: TimeZone;
}): RestorePlan {
  const zone = input.zone ?? UTC;
  const { target } = input;
  const binlogs = [...input.binlogs].sort(compareBinlogs);
  const full = chooseFull(input.fulls, target, input.backup, zone);
  const fullEnd = full.endTime.getTime();

  // The clone's consistent point is in full.binlogFile, at or before END_TIME: when the log rotated in between,
  // the file that started last before END_TIME is a later one, and the transactions between the consistent point
  // and the rotation would be skipped. So an anchored full starts its chain at its own file (and even a target at
  // exactly END_TIME replays from there: those transactions are not in the clone).
  const anchored = Boolean(full.binlogFile);
  const anchorArchived = anchored && binlogs.some((b) => b.file === full.binlogFile && b.startTime.getTime() <= fullEnd);
  // A target exactly at the recovery point needs no binlog only when that point is exact (the clone's own file is
  // known); seed-era and --from-bucket end times may be later than the clone's consistent point.
  if (target.kind === 'time' && target.at.getTime() === fullEnd && anchored && !anchorArchived) {
    return { target, full, binlogs: [], coveredUntil: full.endTime };
  }
  if (!binlogs.length) {
    if (target.kind === 'latest') return { target, full, binlogs: [], coveredUntil: full.endTime };
    throw new RestorePlanError(
      'too-late',
      `target ${describeTarget(target, zone)} is after the full backup ${full.objectKey} (recovery point ${formatLocalTime(full.endTime, zone)}) and no binlog is archived to reach it`,
    );
  }

  let first = -1;
  if (anchored) {
    // The archived file of that name that started at or before the recovery point (after a reset the name may
    // exist in an older series too: that one ended before the clone and is not it).
    for (let i = 0; i < binlogs.length; i++) {
      if (binlogs[i]!.file === full.binlogFile && binlogs[i]!.startTime.getTime() <= fullEnd) first = i;
    }
    if (first < 0) {
      throw new RestorePlanError(
        'gap',
        `gap in the binlog chain: ${full.binlogFile}, which holds the clone's consistent point (position ${full.binlogPosition ?? '?'}) of ${full.objectKey}, is not archived; the transactions after the clone are in no archive`,
      );
    }
  } else {
    // Rows without the clone's binlog file (seed era, --from-bucket): the consistent point lies between the
    // clone's start and its recorded end, so the chain starts at the newest binlog that surely started before the
    // clone did (what the clone already holds is left out of the replay by GTID, and the restore checks that the
    // first binlog's previous GTIDs are in the clone). Both times are whole seconds (a binlog's truncated, a
    // DATETIME possibly rounded up), so "surely before" is two seconds before. Without a start time: the newest
    // binlog that started before the recovery point, same-second boundaries taken inclusively.
    const cloneStart = full.startTime?.getTime();
    if (cloneStart !== undefined && !Number.isNaN(cloneStart)) {
      for (let i = 0; i < binlogs.length; i++) if (binlogs[i]!.startTime.getTime() <= cloneStart - 2000) first = i;
    }
    if (first < 0) for (let i = 0; i < binlogs.length; i++) if (binlogs[i]!.startTime.getTime() < fullEnd) first = i;
    if (first < 0 && binlogs[0]!.startTime.getTime() === fullEnd) first = 0;
  }
  if (first < 0) {
    const b = binlogs[0]!;
    throw new RestorePlanError(
      'gap',
      `gap in the binlog chain: the oldest archived binlog ${b.file} starts at ${formatLocalTime(b.startTime, zone)}, after the recovery point ${formatLocalTime(full.endTime, zone)} of ${full.objectKey}; the transactions in between are in no archive`,
    );
  }

  // The last binlog needed: for a time, the newest one that started at or before it.
  let last = binlogs.length - 1;
  if (target.kind === 'time') {
    last = first;
    for (let i = first; i < binlogs.length; i++) if (binlogs[i]!.startTime.getTime() <= target.at.getTime()) last = i;
  }

  const chain = binlogs.slice(first, last + 1);
  for (let i = 1; i < chain.length; i++) {
    const gap = chainGap(chain[i - 1]!, chain[i]!, zone);
    if (gap) throw new RestorePlanError('gap', gap);
  }
  const following: BinlogCandidate[] = [];
  if (target.kind === 'time') {
    for (let i = last + 1, prev = chain[chain.length - 1]!; i < binlogs.length && !chainGap(prev, binlogs[i]!, zone); prev = binlogs[i]!, i++) following.push(binlogs[i]!);
  }

  const lastBinlog = chain[chain.length - 1]!;
  const binlogEnd = lastBinlog.endTime ?? lastBinlog.startTime;
  const coveredUntil = binlogEnd.getTime() > fullEnd ? binlogEnd : full.endTime;
  if (target.kind === 'time' && coveredUntil.getTime() < target.at.getTime()) {
    const segments = lastBinlog.segments;
    const what = segments?.length
      ? `the last transaction in the bucket: ${lastBinlog.file} is there only as streamed segments, up to byte ${segments[segments.length - 1]!.to} (last commit ${formatLocalTime(coveredUntil, zone)}); nothing committed after that was uploaded (is the streamer running?), choose an earlier time`
      : `the end of the newest archived binlog ${lastBinlog.file} (${formatLocalTime(coveredUntil, zone)}); archive newer binlogs first or choose an earlier time`;
    throw new RestorePlanError('too-late', `target ${describeTarget(target, zone)} is after ${what}`);
  }
  return { target, full, binlogs: chain, coveredUntil, following };
}

/** Why `next` does not follow `prev` in one binlog series, or undefined when it does. */
function chainGap(prev: BinlogCandidate, next: BinlogCandidate, zone: TimeZone): string | undefined {
  const a = parseBinlogFileName(prev.file);
  const b = parseBinlogFileName(next.file);
  if (!a || !b || a.base !== b.base || b.seq !== a.seq + 1) {
    const missing = a && b && a.base === b.base && b.seq > a.seq + 1 ? `${b.seq - a.seq - 1} binlog file(s) between them are not archived` : 'they are not consecutive files';
    return `gap in the binlog chain between ${prev.file} and ${next.file}: ${missing}`;
  }
  const segments = prev.segments;
  if (segments?.length && segments[segments.length - 1]!.closesFile === false) {
    return `gap in the binlog chain: the end of ${prev.file} is not in the bucket (its streamed segments reach byte ${segments[segments.length - 1]!.to} and do not close the file, and the file is not archived whole), but ${next.file} follows it`;
  }
  if (prev.endTime && prev.endTime.getTime() !== next.startTime.getTime()) {
    return `gap in the binlog chain: ${prev.file} ends at ${formatLocalTime(prev.endTime, zone)} but ${next.file} starts at ${formatLocalTime(next.startTime, zone)}`;
  }
  return undefined;
}
