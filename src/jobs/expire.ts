// `expire`: the daily clean-up that replaces the seed's clear_backup_overdue.py (docs/expiry.md).
// Retention comes from timestamps and ctx.now() (src/retention), so running it twice a day or skipping
// days changes nothing but the day it catches up on. Per instance:
//   1. plan every row with planExpiry (config policy, or the instance's mcb_instance_retention row);
//   2. write overdue_day = days left on every Completed row it keeps (never 0 while kept, see below);
//   3. for each row to delete: remove the object, stat it (must be NotFound), then Completed → Expiration,
//      is_delete = 1, overdue_day = 0 in one compare-and-set. A failure leaves the row untouched; the job
//      carries on with the rest and fails at the end, so BullMQ retries and the failure is visible;
//   4. list the instance's bak_/log_ objects and report those with no metadata row (never deleted).
// dryRun does steps 1 and 4 only and returns what would be done.
import { StorageError, type ObjectInfo } from '../storage/index.ts';
import {
  getInstanceRetention,
  instancesWithRowsInBucket,
  knownObjectKeys,
  liveRowSharingObject,
  objectKeyOf,
  rowsForExpiry,
  setOverdueDays,
  type ExpiryRow,
  type InstanceRetention,
} from '../metadata/expiry-queries.ts';
import { IllegalTransitionError } from '../metadata/index.ts';
import { parseObjectName } from '../naming.ts';
import { planExpiry, type RetentionPolicy, type RetentionRow } from '../retention/index.ts';
import { defineJob, PermanentJobError, type JobContext } from './types.ts';

export interface ExpirePayload {
  /** Only this instance; without it, every instance that has rows in this worker's bucket. */
  instanceId?: number;
  /** Plan and report only: no object removed, no row written. */
  dryRun?: boolean;
}

export type DecisionOutcome =
  | 'kept'
  | 'deleted'
  | 'would-delete'
  | 'delete-failed'
  | 'changed-concurrently'
  | 'other-bucket'
  /** The row expired, its object stayed: another live row uses the same object. */
  | 'expired-object-kept';

export interface ExpireDecisionReport {
  id: number;
  backupUuid: string;
  name: string;
  objectKey: string;
  type: string;
  state: string;
  startTime: string | null;
  action: 'delete' | 'keep';
  reason: string;
  daysLeft: number;
  /** The overdue_day written (or, in a dry run, that would be written); null when the row is not touched. */
  overdueDay: number | null;
  outcome: DecisionOutcome;
  error?: string;
}

export interface OrphanReport {
  key: string;
  size: number;
  lastModified: string | null;
  instanceId: number;
  reason: string;
}

export interface InstanceExpiryReport {
  instanceId: number;
  policy: RetentionPolicy;
  policySource: 'config' | 'mcb_instance_retention';
  decisions: ExpireDecisionReport[];
  /** Rows whose overdue_day changed in this run. */
  overdueUpdated: number;
  deleted: number;
  failed: number;
  orphans: OrphanReport[];
  /** Set when this instance could not be processed at all (bad override, metadata error, listing failed). */
  error?: string;
}

export interface ExpireResult {
  dryRun: boolean;
  now: string;
  bucket: string;
  instances: InstanceExpiryReport[];
  /** bak_/log_ objects of instances with no row in this bucket at all (only when run for every instance). */
  orphans: OrphanReport[];
  /** The whole-bucket scan (runs without an instance id) failed. */
  scanError?: string;
  deleted: number;
  wouldDelete: number;
  failed: number;
  orphanCount: number;
}

/** Thrown after every instance was processed when a delete (or a whole instance) failed; carries the result. */
export class ExpireFailedError extends Error {
  constructor(
    message: string,
    readonly result: ExpireResult,
  ) {
    super(message);
  }
}

function parsePayload(data: unknown): ExpirePayload {
  const d = (data ?? {}) as Record<string, unknown>;
  if (typeof d !== 'object') throw new PermanentJobError('job payload must be an object');
  const out: ExpirePayload = {};
  if (d.instanceId !== undefined && d.instanceId !== null) {
    if (typeof d.instanceId !== 'number' || !Number.isSafeInteger(d.instanceId) || d.instanceId <= 0) {
      throw new PermanentJobError('job payload: instanceId must be a positive integer');
    }
    out.instanceId = d.instanceId;
  }
  if (d.dryRun !== undefined && d.dryRun !== null) {
    if (typeof d.dryRun !== 'boolean') throw new PermanentJobError('job payload: dryRun must be a boolean');
    out.dryRun = d.dryRun;
  }
  return out;
}

/** The config policy, with the instance's non-NULL overrides on top. */
export function resolvePolicy(ctx: JobContext, override: InstanceRetention | undefined): RetentionPolicy {
  const b = ctx.config.backup;
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

const iso = (d: Date | null) => (d && !Number.isNaN(d.getTime()) ? d.toISOString() : null);

function describe(err: unknown): string {
  return (err as Error)?.message ?? String(err);
}

/** Removes an object and proves it is gone. Already absent counts as gone (a previous run got this far). */
async function deleteVerified(ctx: JobContext, key: string): Promise<'removed' | 'already-absent'> {
  const before = await ctx.storage.stat(key);
  if (!before) return 'already-absent';
  await ctx.storage.remove(key);
  const after = await ctx.storage.stat(key);
  if (after) throw new StorageError(`${key} is still in ${ctx.storage.location} after delete (stat found ${after.size} bytes)`);
  return 'removed';
}

/** bak_/log_ objects in the bucket, grouped by the instance id in their name. */
async function listBackupObjects(ctx: JobContext, instanceId?: number): Promise<Map<number, ObjectInfo[]>> {
  const prefixes = instanceId === undefined ? ['bak_', 'log_'] : [`bak_${instanceId}_`, `log_${instanceId}_`];
  const out = new Map<number, ObjectInfo[]>();
  for (const prefix of prefixes) {
    for await (const obj of ctx.storage.list(prefix)) {
      const parsed = parseObjectName(obj.key);
      if (!parsed) continue;
      if (instanceId !== undefined && parsed.instanceId !== instanceId) continue;
      const list = out.get(parsed.instanceId);
      if (list) list.push(obj);
      else out.set(parsed.instanceId, [obj]);
    }
  }
  return out;
}

async function findOrphans(ctx: JobContext, instanceId: number, objects: ObjectInfo[]): Promise<OrphanReport[]> {
  const known = await knownObjectKeys(ctx.metadata, instanceId, ctx.storage.bucket);
  const orphans: OrphanReport[] = [];
  for (const obj of objects) {
    const row = known.get(obj.key);
    let reason: string | undefined;
    if (!row) reason = 'no metadata row in full_backup_metadata for this object';
    else if (row.state === 'Expiration' || row.isDelete) reason = `row #${row.id} says it was deleted (state ${row.state}, is_delete ${row.isDelete}) but the object exists`;
    if (reason) orphans.push({ key: obj.key, size: obj.size, lastModified: iso(obj.lastModified ?? null), instanceId, reason });
  }
  return orphans;
}

async function expireInstance(
  ctx: JobContext,
  instanceId: number,
  dryRun: boolean,
): Promise<InstanceExpiryReport> {
  const bucket = ctx.storage.bucket;
  const now = ctx.now();
  const override = await getInstanceRetention(ctx.metadata, instanceId);
  const policy = resolvePolicy(ctx, override);
  const report: InstanceExpiryReport = {
    instanceId,
    policy,
    policySource: override ? 'mcb_instance_retention' : 'config',
    decisions: [],
    overdueUpdated: 0,
    deleted: 0,
    failed: 0,
    orphans: [],
  };
  const log = ctx.log.child({ instance: instanceId });

  const rows = await rowsForExpiry(ctx.metadata, instanceId);
  const byId = new Map(rows.map((r) => [r.id, r]));
  const plan = planExpiry(rows.map(toRetentionRow), policy, now);

  const overdueUpdates: Array<{ id: number; overdueDay: number }> = [];
  const toDelete: ExpireDecisionReport[] = [];
  for (const d of plan) {
    const row = byId.get(d.row.id)!;
    const mine = row.bucketName === bucket;
    const touchable = row.state === 'Completed' && row.isDelete === 0;
    const entry: ExpireDecisionReport = {
      id: row.id,
      backupUuid: row.backupUuid,
      name: row.backupName,
      objectKey: objectKeyOf(row),
      type: row.backupType,
      state: row.state,
      startTime: iso(row.startTime),
      action: d.action,
      reason: d.reason,
      daysLeft: d.daysLeft,
      overdueDay: null,
      outcome: 'kept',
    };
    if (!mine) {
      // Another bucket's worker owns its objects; the row still counted for the protection rules above.
      entry.outcome = 'other-bucket';
      entry.reason = `${d.reason}; not acted on: object is in bucket ${row.bucketName}, this worker's is ${bucket}`;
    } else if (d.action === 'delete') {
      entry.overdueDay = 0;
      entry.outcome = dryRun ? 'would-delete' : 'kept';
      toDelete.push(entry);
    } else if (touchable) {
      entry.overdueDay = overdueDayFor(d.daysLeft);
      overdueUpdates.push({ id: row.id, overdueDay: entry.overdueDay });
    }
    report.decisions.push(entry);
  }

  if (!dryRun) {
    report.overdueUpdated = await setOverdueDays(ctx.metadata, overdueUpdates);
    // Oldest first: if the run stops half-way, what is left is always the newer part (keeping more is safe).
    toDelete.sort((a, b) => (a.startTime ?? '').localeCompare(b.startTime ?? '') || a.id - b.id);
    for (const entry of toDelete) {
      if (ctx.signal.aborted) throw new Error('expire interrupted (worker shutting down)');
      try {
        if (!entry.objectKey) throw new Error('row has neither object_key nor backup_name');
        const sharedWith = await liveRowSharingObject(ctx.metadata, instanceId, bucket, entry.objectKey, entry.id);
        const how = sharedWith === undefined ? await deleteVerified(ctx, entry.objectKey) : 'kept: shared';
        const kept = sharedWith === undefined ? '' : `; object kept: row #${sharedWith} uses it too`;
        try {
          await ctx.metadata.transition(entry.backupUuid, ['Completed'], 'Expiration', {
            isDelete: 1,
            overdueDay: 0,
            info: `expired by mcb ${now.toISOString()}: ${entry.reason}${kept}`,
          });
          entry.outcome = sharedWith === undefined ? 'deleted' : 'expired-object-kept';
          entry.state = 'Expiration';
          report.deleted++;
          log.info(
            { event: 'expire.deleted', id: entry.id, key: entry.objectKey, objectWas: how, reason: entry.reason },
            `${sharedWith === undefined ? 'deleted' : 'expired, kept'} ${entry.objectKey} (row #${entry.id}): ${entry.reason}${kept}`,
          );
        } catch (err) {
          if (!(err instanceof IllegalTransitionError)) throw err;
          // Someone else (a concurrent run) moved the row first; the object is gone either way.
          entry.outcome = 'changed-concurrently';
          entry.error = err.message;
          log.warn({ event: 'expire.row-changed', id: entry.id, err: err.message }, `row #${entry.id} changed while expiring it`);
        }
      } catch (err) {
        entry.outcome = 'delete-failed';
        entry.overdueDay = null;
        entry.error = describe(err);
        report.failed++;
        log.error(
          { event: 'expire.delete-failed', id: entry.id, key: entry.objectKey, err: { message: entry.error } },
          `could not delete ${entry.objectKey} (row #${entry.id} left Completed, retried next run): ${entry.error}`,
        );
      }
    }
  }

  // Listed after the deletes, so what this run removed is not reported back as lingering.
  let objects: ObjectInfo[] | undefined;
  try {
    objects = (await listBackupObjects(ctx, instanceId)).get(instanceId) ?? [];
  } catch (err) {
    report.error = `orphan scan failed: ${describe(err)}`;
  }
  if (objects) {
    report.orphans = await findOrphans(ctx, instanceId, objects);
    for (const o of report.orphans) {
      log.warn({ event: 'expire.orphan', key: o.key, size: o.size, reason: o.reason }, `orphan object ${o.key} (not deleted): ${o.reason}`);
    }
  }
  return report;
}

export async function runExpire(payload: ExpirePayload, ctx: JobContext): Promise<ExpireResult> {
  const dryRun = payload.dryRun === true;
  const bucket = ctx.storage.bucket;
  const now = ctx.now();

  const instanceIds =
    payload.instanceId !== undefined ? [payload.instanceId] : await instancesWithRowsInBucket(ctx.metadata, bucket);

  const result: ExpireResult = { dryRun, now: now.toISOString(), bucket, instances: [], orphans: [], deleted: 0, wouldDelete: 0, failed: 0, orphanCount: 0 };
  for (const instanceId of instanceIds) {
    let report: InstanceExpiryReport;
    try {
      const run = () => expireInstance(ctx, instanceId, dryRun);
      // The lock serialises two runs for the same instance (a scheduled one and an ad-hoc one); a dry run
      // writes nothing and needs none.
      report = dryRun ? await run() : await ctx.metadata.withLock(ctx.metadata.lockName('expire', instanceId), run, 120);
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      report = {
        instanceId,
        policy: { fullDays: 0, binlogDays: 0, minFullBackups: 0, keepBinlogsForOldestFull: true },
        policySource: 'config',
        decisions: [],
        overdueUpdated: 0,
        deleted: 0,
        failed: 0,
        orphans: [],
        error: describe(err),
      };
      ctx.log.error({ event: 'expire.instance-failed', instance: instanceId, err: { message: report.error } }, `expire of instance ${instanceId} failed`);
    }
    result.instances.push(report);
    result.deleted += report.deleted;
    result.failed += report.failed;
    result.wouldDelete += report.decisions.filter((d) => d.outcome === 'would-delete').length;
    result.orphanCount += report.orphans.length;
  }
  if (payload.instanceId === undefined) {
    // Objects of instances that have no row at all in this bucket: nobody else would ever report them.
    const handled = new Set(instanceIds);
    let listing = new Map<number, ObjectInfo[]>();
    try {
      listing = await listBackupObjects(ctx);
    } catch (err) {
      result.scanError = `bucket scan failed: ${describe(err)}`;
    }
    for (const [instanceId, objects] of listing) {
      if (handled.has(instanceId)) continue;
      for (const o of objects) {
        result.orphans.push({
          key: o.key,
          size: o.size,
          lastModified: iso(o.lastModified ?? null),
          instanceId,
          reason: `no metadata row: instance ${instanceId} has no rows in bucket ${bucket}`,
        });
      }
    }
    for (const o of result.orphans) ctx.log.warn({ event: 'expire.orphan', key: o.key, reason: o.reason }, `orphan object ${o.key} (not deleted)`);
    result.orphanCount += result.orphans.length;
  }
  return result;
}

export function summarise(result: ExpireResult): string {
  const broken = result.instances.filter((i) => i.error);
  const parts = [
    result.dryRun ? `${result.wouldDelete} would be deleted` : `${result.deleted} deleted`,
    `${result.failed} failed`,
    `${result.orphanCount} orphan object(s)`,
  ];
  if (broken.length) parts.push(`${broken.length} instance(s) with errors: ${broken.map((i) => `${i.instanceId}: ${i.error}`).join('; ')}`);
  if (result.scanError) parts.push(result.scanError);
  return `expire${result.dryRun ? ' (dry run)' : ''} in bucket ${result.bucket}: ${parts.join(', ')}`;
}

export const expireJob = defineJob<ExpirePayload, ExpireResult>({
  name: 'expire',
  parse: parsePayload,

  async handle(payload, ctx) {
    const result = await runExpire(payload, ctx);
    const summary = summarise(result);
    const failedDeletes = result.instances.flatMap((i) => i.decisions.filter((d) => d.outcome === 'delete-failed'));
    const broken = result.instances.filter((i) => i.error);
    if (failedDeletes.length || broken.length || result.scanError) {
      // The result would be lost with the failure: keep it as progress, so `--wait` and bull-board show it.
      await ctx.progress({ result: result as unknown as Record<string, unknown> }).catch(() => undefined);
      const details = failedDeletes.slice(0, 10).map((d) => `#${d.id} ${d.objectKey}: ${d.error}`);
      ctx.log.error({ event: 'expire.failed', summary, failedDeletes: details }, summary);
      throw new ExpireFailedError(
        `${summary}${details.length ? `; failed: ${details.join('; ')}${failedDeletes.length > 10 ? '; …' : ''}` : ''}`,
        result,
      );
    }
    ctx.log.info({ event: 'expire.done', deleted: result.deleted, wouldDelete: result.wouldDelete, orphans: result.orphanCount }, summary);
    return result;
  },
});
