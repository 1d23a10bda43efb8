// Retention maths: which rows of `full_backup_metadata` may be deleted. Pure: no I/O, no clock. The seed's cleaner
// counted `overdue_day` down once per run (twice a day halved retention, it could delete every full backup and the
// binlogs the oldest kept one needed); here every decision comes from timestamps and a caller-supplied `now`, so
// the same rows, policy and `now` give the same plan however often it runs.

import { parseBinlogFileName } from '../binlog/index.ts';

export type BackupType = 'full' | 'binlog';

export interface RetentionRow {
  id: number;
  instanceId: string;
  type: BackupType;
  state: string;
  /** Age is measured from here. For a binlog, [startTime, endTime) is the span of writes it holds. */
  startTime: Date;
  /** For a full backup: its recovery point (clone END_TIME). For a binlog: the next binlog's start. */
  endTime: Date;
  objectKey: string;
  isDelete: boolean;
  /**
   * Binlog rows: the file name. Full rows: the binlog file holding the clone's consistent point (sql/004), or
   * null/absent (seed-era rows: the time rule alone decides which binlogs a full needs).
   */
  binlogFile?: string | null;
  /** Full rows: a restore test of this backup failed. It is never a protected newest full nor a roll-forward anchor. */
  verifyFailed?: boolean;
}

export interface RetentionPolicy {
  /** Days a Completed full backup is kept (counted from its startTime). */
  fullDays: number;
  /** Days a Completed binlog is kept (counted from its startTime). */
  binlogDays: number;
  /** The newest N Completed full backups of an instance are never deleted, even when expired. */
  minFullBackups: number;
  /** Keep every binlog needed to roll forward from the oldest kept full backup, even when expired. */
  keepBinlogsForOldestFull: boolean;
}

export interface ExpiryDecision {
  row: RetentionRow;
  action: 'delete' | 'keep';
  /** Says which rule decided, e.g. "kept: within retention (...)" or "expired: ...". */
  reason: string;
  /** Whole days until expiry, never negative: the value `overdue_day` shows. */
  daysLeft: number;
}

/** 7 days like the seed's `overdue_day` default; one full backup and the binlogs it needs always survive. */
export const defaultRetentionPolicy: RetentionPolicy = Object.freeze({
  fullDays: 7,
  binlogDays: 7,
  minFullBackups: 1,
  keepBinlogsForOldestFull: true,
});

const DAY_MS = 24 * 60 * 60 * 1000;

// The seed's state names (full_backup_metadata.state).
const COMPLETED = 'Completed';
const NON_FINAL_STATES: ReadonlySet<string> = new Set(['Doing', 'Done', 'Tar', 'Uploading', 'Clearing']);
const LEFT_ALONE: Readonly<Record<string, string>> = {
  Error: 'kept: state Error is left alone (failed backup, not a restorable copy; inspect manually)',
  Expiration: 'kept: state Expiration is left alone (already expired)',
};

function isValidDate(d: unknown): d is Date {
  return d instanceof Date && !Number.isNaN(d.getTime());
}

function checkDays(days: number, what: string): void {
  if (typeof days !== 'number' || !Number.isFinite(days) || days < 0) {
    throw new RangeError(`${what} must be a finite number >= 0, got ${String(days)}`);
  }
}

function checkPolicy(policy: RetentionPolicy): void {
  checkDays(policy.fullDays, 'fullDays');
  checkDays(policy.binlogDays, 'binlogDays');
  if (!Number.isInteger(policy.minFullBackups) || policy.minFullBackups < 0) {
    throw new RangeError(`minFullBackups must be an integer >= 0, got ${String(policy.minFullBackups)}`);
  }
  if (typeof policy.keepBinlogsForOldestFull !== 'boolean') {
    throw new RangeError('keepBinlogsForOldestFull must be a boolean');
  }
}

/** The moment `row` expires when kept for `days` days: startTime + days * 24 h. */
export function expiresAt(row: Pick<RetentionRow, 'startTime'>, days: number): Date {
  checkDays(days, 'days');
  if (!isValidDate(row.startTime)) throw new RangeError('row.startTime is not a valid date');
  return new Date(row.startTime.getTime() + days * DAY_MS);
}

/**
 * Whole days until `row` expires: ceil((startTime + days*24h - now) / 24h), clamped to >= 0.
 * Calendar-independent (no time zones, no DST): `days` right after the backup started, 1 up to the
 * exact moment of expiry, 0 from then on.
 */
export function daysLeft(row: Pick<RetentionRow, 'startTime'>, days: number, now: Date): number {
  if (!isValidDate(now)) throw new RangeError('now is not a valid date');
  const remaining = expiresAt(row, days).getTime() - now.getTime();
  // `+ 0` turns a -0 from Math.ceil(-0.x) into 0.
  return Math.max(0, Math.ceil(remaining / DAY_MS)) + 0;
}

function daysFor(row: RetentionRow, policy: RetentionPolicy): number {
  return row.type === 'binlog' ? policy.binlogDays : policy.fullDays;
}

/** Newest first by recovery point; ties broken by startTime, then id, so the order is deterministic. */
function newestFirst(a: RetentionRow, b: RetentionRow): number {
  return (
    b.endTime.getTime() - a.endTime.getTime() ||
    b.startTime.getTime() - a.startTime.getTime() ||
    b.id - a.id
  );
}

/** A Completed, not yet deleted row with usable timestamps: the only kind planExpiry may delete. */
function isDeletable(row: RetentionRow): boolean {
  return (
    row.state === COMPLETED &&
    !row.isDelete &&
    (row.type === 'full' || row.type === 'binlog') &&
    isValidDate(row.startTime) &&
    isValidDate(row.endTime)
  );
}

/** keep_binlogs_for_oldest_full, by file: the binlog is the anchor full's consistent-point file or a later one of the same series. */
function atOrAfterAnchorFile(binlog: RetentionRow, anchor: RetentionRow): boolean {
  if (!anchor.binlogFile || !binlog.binlogFile) return false;
  const a = parseBinlogFileName(anchor.binlogFile);
  const b = parseBinlogFileName(binlog.binlogFile);
  if (!a || !b || a.base !== b.base || b.seq < a.seq) return false;
  // A file that ended before the clone began cannot hold its consistent point (an older series before a reset).
  return binlog.endTime.getTime() > anchor.startTime.getTime();
}

/**
 * One decision per row given, in the same order; each instance (`instanceId`) is planned on its own, by the rules
 * of docs/expiry.md: only Completed rows not yet deleted expire, `days` after startTime; the newest minFullBackups
 * good fulls are kept; with keepBinlogsForOldestFull, so are the binlogs the oldest kept full needs to roll forward.
 */
export function planExpiry(rows: RetentionRow[], policy: RetentionPolicy, now: Date): ExpiryDecision[] {
  checkPolicy(policy);
  if (!isValidDate(now)) throw new RangeError('now is not a valid date');
  const nowMs = now.getTime();

  const isExpired = (row: RetentionRow): boolean =>
    nowMs >= row.startTime.getTime() + daysFor(row, policy) * DAY_MS;

  // Per instance: which Completed fulls are protected by min_full_backups, and the oldest kept full
  // (the anchor binlogs are kept for).
  const protectedFulls = new Set<RetentionRow>();
  const anchorByInstance = new Map<string, RetentionRow>();
  const fullsByInstance = new Map<string, RetentionRow[]>();
  for (const row of rows) {
    if (row.type !== 'full' || !isDeletable(row)) continue;
    const list = fullsByInstance.get(row.instanceId);
    if (list) list.push(row);
    else fullsByInstance.set(row.instanceId, [row]);
  }
  for (const [instanceId, fulls] of fullsByInstance) {
    // A full whose restore test failed cannot be restored from: it must not take the place of a good one. The
    // newest minFullBackups such fulls are still kept while fewer than minFullBackups good (verified or untested)
    // fulls are newer, so that when good backups stop coming the last ones and their binlogs are not all deleted.
    const sorted = [...fulls].sort(newestFirst);
    let goodNewer = 0;
    let failedKept = 0;
    for (const f of sorted) {
      if (!f.verifyFailed) {
        if (goodNewer < policy.minFullBackups) protectedFulls.add(f);
        goodNewer++;
      } else if (goodNewer < policy.minFullBackups && failedKept < policy.minFullBackups) {
        protectedFulls.add(f);
        failedKept++;
      }
    }
    const kept = sorted.filter((f) => protectedFulls.has(f) || !isExpired(f));
    const oldestKept = kept[kept.length - 1];
    // No kept Completed full (none exists, or minFullBackups = 0 and all expired): there is nothing to
    // roll forward from, so no anchor, and this instance's binlogs simply follow their own retention
    // (kept while not expired, deleted once expired).
    if (oldestKept) anchorByInstance.set(instanceId, oldestKept);
  }

  return rows.map((row): ExpiryDecision => {
    const keep = (reason: string, left: number): ExpiryDecision => ({ row, action: 'keep', reason, daysLeft: left });

    const days = daysFor(row, policy);
    if (!isValidDate(row.startTime) || !isValidDate(row.endTime)) {
      // Age unknown: never delete; report the full retention rather than 0 so nothing that still reads
      // overdue_day (such as the seed's cleaner) takes it for expired.
      return keep('kept: invalid start_time/end_time, age unknown', Math.ceil(days));
    }
    const left = daysLeft(row, days, now);

    if (row.type !== 'full' && row.type !== 'binlog') {
      return keep(`kept: unknown backup type ${JSON.stringify(row.type)}`, left);
    }
    if (row.isDelete) return keep('kept: already deleted (is_delete=1)', left);
    if (NON_FINAL_STATES.has(row.state)) return keep(`kept: state ${row.state} is not final`, left);
    const leftAlone = LEFT_ALONE[row.state];
    if (leftAlone !== undefined) return keep(leftAlone, left);
    if (row.state !== COMPLETED) return keep(`kept: unknown state ${JSON.stringify(row.state)}`, left);

    const expiry = expiresAt(row, days).toISOString();
    if (!isExpired(row)) {
      return keep(`kept: within retention (expires ${expiry}, retention ${days} d)`, left);
    }

    if (row.type === 'full') {
      if (protectedFulls.has(row) && row.verifyFailed) {
        return keep(
          `kept: its restore test failed, but fewer than min_full_backups=${policy.minFullBackups} verified full backups are newer; expired ${expiry}`,
          left,
        );
      }
      if (protectedFulls.has(row)) {
        return keep(
          `kept: newest completed full backup (min_full_backups=${policy.minFullBackups}), expired ${expiry}`,
          left,
        );
      }
    } else if (policy.keepBinlogsForOldestFull) {
      const anchor = anchorByInstance.get(row.instanceId);
      if (anchor && (row.endTime.getTime() > anchor.endTime.getTime() || atOrAfterAnchorFile(row, anchor))) {
        return keep(
          `kept: needed to roll forward from full backup #${anchor.id} (recovery point ${anchor.endTime.toISOString()})`,
          left,
        );
      }
    }

    return {
      row,
      action: 'delete',
      reason: `expired: completed ${row.type} backup started ${row.startTime.toISOString()}, expired ${expiry}, retention ${days} d`,
      daysLeft: left,
    };
  });
}
