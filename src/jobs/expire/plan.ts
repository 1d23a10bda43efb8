// What expire does with each row of one instance: the policy, the retention plan, and from it the overdue_day
// updates and the rows to delete. Pure: no I/O.
import type { Config } from '../../config/index.ts';
import { objectKeyOf, type ExpiryRow, type InstanceRetention } from '../../metadata/expiry-queries.ts';
import { planExpiry, type RetentionPolicy, type RetentionRow } from '../../retention/index.ts';
import { isoOrNull } from '../../time/zone.ts';
import { PermanentJobError } from '../types.ts';
import type { ExpireDecisionReport } from './report.ts';

/** The config policy, with the instance's non-NULL overrides on top. */
export function resolvePolicy(config: Pick<Config, 'backup'>, override: InstanceRetention | undefined): RetentionPolicy {
  const b = config.backup;
  const policy: RetentionPolicy = {
    fullDays: override?.fullStorageDays ?? b.fullStorageDays,
    binlogDays: override?.binlogStorageDays ?? b.binlogStorageDays,
    minFullBackups: override?.minFullBackups ?? b.minFullBackups,
    keepBinlogsForOldestFull: b.keepBinlogsForOldestFull,
  };
  const bad = (what: string, v: number, min: number) => !Number.isInteger(v) || v < min ? `${what} = ${v} (must be an integer >= ${min})` : undefined;
  const problems = [
    bad('full_storage_days', policy.fullDays, 1),
    bad('binlog_storage_days', policy.binlogDays, 1),
    bad('min_full_backups', policy.minFullBackups, 0),
  ].filter(Boolean);
  if (problems.length) throw new PermanentJobError(`invalid retention: ${problems.join(', ')}`);
  return policy;
}

function toRetentionRow(r: ExpiryRow): RetentionRow {
  return {
    id: r.id,
    instanceId: r.tbInstanceId,
    type: r.backupType as RetentionRow['type'],
    state: r.state,
    startTime: r.startTime ?? new Date(NaN),
    endTime: r.endTime ?? new Date(NaN),
    objectKey: objectKeyOf(r),
    isDelete: r.isDelete !== 0,
    binlogFile: r.binlogFile,
    verifyFailed: r.verifyState === 'failed',
  };
}

/**
 * overdue_day for a Completed row that is kept: its days left, but at least 1. planExpiry gives 0 to a row
 * that is expired yet protected (newest full, binlog needed to roll forward); 0 is exactly what the seed's
 * cleaner deletes (`state='Completed' AND is_delete=0 AND overdue_day=0`), and dashboards read 0 as "gone
 * today". So a kept row never shows 0: 0 only ever appears on rows this job moved to Expiration.
 */
export function overdueDayFor(daysLeft: number): number {
  return Math.max(1, daysLeft);
}

interface InstancePlan {
  /** One per row, in the retention plan's order. */
  decisions: ExpireDecisionReport[];
  /** overdue_day of the kept Completed rows in this bucket. */
  overdueUpdates: Array<{ id: number; overdueDay: number }>;
  /** The entries of `decisions` to delete (rows in this bucket only). */
  toDelete: ExpireDecisionReport[];
}

/** Decides every row of one instance; rows of another bucket count for the protection rules but are not acted on. */
export function planInstance(rows: ExpiryRow[], policy: RetentionPolicy, now: Date, bucket: string, dryRun: boolean): InstancePlan {
  const byId = new Map(rows.map((r) => [r.id, r]));
  const out: InstancePlan = { decisions: [], overdueUpdates: [], toDelete: [] };
  for (const d of planExpiry(rows.map(toRetentionRow), policy, now)) {
    const row = byId.get(d.row.id)!;
    const touchable = row.state === 'Completed' && row.isDelete === 0;
    const entry: ExpireDecisionReport = {
      id: row.id,
      backupUuid: row.backupUuid,
      name: row.backupName,
      objectKey: objectKeyOf(row),
      type: row.backupType,
      state: row.state,
      startTime: isoOrNull(row.startTime),
      action: d.action,
      reason: d.reason,
      daysLeft: d.daysLeft,
      overdueDay: null,
      outcome: 'kept',
    };
    if (row.bucketName !== bucket) {
      // Another bucket's worker owns its objects.
      entry.outcome = 'other-bucket';
      entry.reason = `${d.reason}; not acted on: object is in bucket ${row.bucketName}, this worker's is ${bucket}`;
    } else if (d.action === 'delete') {
      entry.overdueDay = 0;
      entry.outcome = dryRun ? 'would-delete' : 'kept';
      out.toDelete.push(entry);
    } else if (touchable) {
      entry.overdueDay = overdueDayFor(d.daysLeft);
      out.overdueUpdates.push({ id: row.id, overdueDay: entry.overdueDay });
    }
    out.decisions.push(entry);
  }
  return out;
}
