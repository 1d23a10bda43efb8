// bak_/log_ objects in the bucket that no live metadata row accounts for. Reported, never deleted: only a row
// says an object is a backup that may go.
import { errorMessage } from '../../errors.ts';
import type { Logger } from '../../log/index.ts';
import { knownObjectKeys } from '../../metadata/expiry-queries.ts';
import { parseObjectName } from '../../naming.ts';
import type { ObjectInfo } from '../../storage/index.ts';
import { isoOrNull } from '../../time/zone.ts';
import type { JobContext } from '../types.ts';
import type { InstanceExpiryReport, OrphanReport } from './report.ts';

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

function orphan(obj: ObjectInfo, instanceId: number, reason: string): OrphanReport {
  return { key: obj.key, size: obj.size, lastModified: isoOrNull(obj.lastModified), instanceId, reason };
}

async function findOrphans(ctx: JobContext, instanceId: number, objects: ObjectInfo[]): Promise<OrphanReport[]> {
  const known = await knownObjectKeys(ctx.metadata, instanceId, ctx.storage.bucket);
  const orphans: OrphanReport[] = [];
  for (const obj of objects) {
    const row = known.get(obj.key);
    let reason: string | undefined;
    if (!row) reason = 'no metadata row in full_backup_metadata for this object';
    else if (row.state === 'Expiration' || row.isDelete) reason = `row #${row.id} says it was deleted (state ${row.state}, is_delete ${row.isDelete}) but the object exists`;
    if (reason) orphans.push(orphan(obj, instanceId, reason));
  }
  return orphans;
}

/** The instance's orphans into `report` (a failed listing into its error); run after the deletes, so what they removed is not reported. */
export async function scanInstanceOrphans(ctx: JobContext, report: InstanceExpiryReport, log: Logger): Promise<void> {
  const { instanceId } = report;
  let objects: ObjectInfo[] | undefined;
  try {
    objects = (await listBackupObjects(ctx, instanceId)).get(instanceId) ?? [];
  } catch (err) {
    report.error = `orphan scan failed: ${errorMessage(err)}`;
  }
  if (objects) {
    report.orphans = await findOrphans(ctx, instanceId, objects);
    for (const o of report.orphans) {
      log.warn({ event: 'expire.orphan', key: o.key, size: o.size, reason: o.reason }, `orphan object ${o.key} (not deleted): ${o.reason}`);
    }
  }
}

/** Objects of instances not in `handled` (no row at all in this bucket): nobody else would ever report them. */
export async function orphansOfOtherInstances(ctx: JobContext, handled: ReadonlySet<number>): Promise<{ orphans: OrphanReport[]; scanError?: string }> {
  let listing = new Map<number, ObjectInfo[]>();
  let scanError: string | undefined;
  try {
    listing = await listBackupObjects(ctx);
  } catch (err) {
    scanError = `bucket scan failed: ${errorMessage(err)}`;
  }
  const orphans: OrphanReport[] = [];
  for (const [instanceId, objects] of listing) {
    if (handled.has(instanceId)) continue;
    for (const o of objects) orphans.push(orphan(o, instanceId, `no metadata row: instance ${instanceId} has no rows in bucket ${ctx.storage.bucket}`));
  }
  for (const o of orphans) ctx.log.warn({ event: 'expire.orphan', key: o.key, reason: o.reason }, `orphan object ${o.key} (not deleted)`);
  return { orphans, ...(scanError !== undefined ? { scanError } : {}) };
}
