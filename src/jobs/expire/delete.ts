// Deleting what expire planned: the object first, proved gone, then the row Completed → Expiration in one
// compare-and-set. A failure leaves the row untouched and is counted; the run carries on with the rest.
import type { Logger } from '../../log/index.ts';
import { liveRowSharingObject } from '../../metadata/expiry-queries.ts';
import { IllegalTransitionError } from '../../metadata/index.ts';
import { StorageError } from '../../storage/index.ts';
import { errorMessage } from '../../errors.ts';
import type { JobContext } from '../types.ts';
import type { ExpireDecisionReport, InstanceExpiryReport } from './report.ts';

/** Removes an object and proves it is gone. Already absent counts as gone (a previous run got this far). */
async function deleteVerified(ctx: JobContext, key: string): Promise<'removed' | 'already-absent'> {
  const before = await ctx.storage.stat(key);
  if (!before) return 'already-absent';
  await ctx.storage.remove(key);
  const after = await ctx.storage.stat(key);
  if (after) throw new StorageError(`${key} is still in ${ctx.storage.location} after delete (stat found ${after.size} bytes)`);
  return 'removed';
}

/** Expires `toDelete` (entries of `report`), oldest first: each outcome goes into its entry, the counts into `report`. */
export async function deleteExpired(
  ctx: JobContext,
  report: InstanceExpiryReport,
  toDelete: ExpireDecisionReport[],
  opts: { now: Date; log: Logger },
): Promise<void> {
  const { instanceId } = report;
  const { now, log } = opts;
  const bucket = ctx.storage.bucket;
  // Oldest first: if the run stops half-way, what is left is always the newer part (keeping more is safe).
  const ordered = [...toDelete].sort((a, b) => (a.startTime ?? '').localeCompare(b.startTime ?? '') || a.id - b.id);
  for (const entry of ordered) {
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
      entry.error = errorMessage(err);
      report.failed++;
      log.error(
        { event: 'expire.delete-failed', id: entry.id, key: entry.objectKey, err: { message: entry.error } },
        `could not delete ${entry.objectKey} (row #${entry.id} left Completed, retried next run): ${entry.error}`,
      );
    }
  }
}
