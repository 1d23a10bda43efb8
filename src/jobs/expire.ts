// `expire`: the daily clean-up that replaces the seed's clear_backup_overdue.py (docs/expiry.md).
// Retention comes from timestamps and ctx.now(), so running it twice a day or skipping days changes nothing but
// the day it catches up on. Per instance: plan every row (expire/plan.ts); write overdue_day on the Completed rows
// it keeps; delete the expired ones (expire/delete.ts); report the objects no row accounts for (expire/orphans.ts).
// A failed delete does not stop the run: the job fails at the end, so BullMQ retries and the failure is visible.
// dryRun plans and reports only.
import { errorMessage } from '../errors.ts';
import { getInstanceRetention, instancesWithRowsInBucket, rowsForExpiry, setOverdueDays } from '../metadata/expiry-queries.ts';
import { deleteExpired } from './expire/delete.ts';
import { orphansOfOtherInstances, scanInstanceOrphans } from './expire/orphans.ts';
import { planInstance, resolvePolicy } from './expire/plan.ts';
import {
  addInstanceReport,
  emptyInstanceReport,
  ExpireFailedError,
  failedInstanceReport,
  summarise,
  type ExpireResult,
  type InstanceExpiryReport,
} from './expire/report.ts';
import { defineJob, PermanentJobError, type JobContext } from './types.ts';

export interface ExpirePayload {
  /** Only this instance; without it, every instance that has rows in this worker's bucket. */
  instanceId?: number;
  /** Plan and report only: no object removed, no row written. */
  dryRun?: boolean;
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

async function expireInstance(ctx: JobContext, instanceId: number, dryRun: boolean): Promise<InstanceExpiryReport> {
  const now = ctx.now();
  const override = await getInstanceRetention(ctx.metadata, instanceId);
  const policy = resolvePolicy(ctx.config, override);
  const report = emptyInstanceReport(instanceId, policy, override ? 'mcb_instance_retention' : 'config');
  const log = ctx.log.child({ instance: instanceId });

  const rows = await rowsForExpiry(ctx.metadata, instanceId);
  const plan = planInstance(rows, policy, now, ctx.storage.bucket, dryRun);
  report.decisions = plan.decisions;
  if (!dryRun) {
    report.overdueUpdated = await setOverdueDays(ctx.metadata, plan.overdueUpdates);
    await deleteExpired(ctx, report, plan.toDelete, { now, log });
  }
  await scanInstanceOrphans(ctx, report, log);
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
      report = failedInstanceReport(instanceId, errorMessage(err));
      ctx.log.error({ event: 'expire.instance-failed', instance: instanceId, err: { message: report.error } }, `expire of instance ${instanceId} failed`);
    }
    addInstanceReport(result, report);
  }
  if (payload.instanceId === undefined) {
    const scan = await orphansOfOtherInstances(ctx, new Set(instanceIds));
    if (scan.scanError !== undefined) result.scanError = scan.scanError;
    result.orphans.push(...scan.orphans);
    result.orphanCount += result.orphans.length;
  }
  return result;
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
