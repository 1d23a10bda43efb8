// `full`: the scheduled (or ad-hoc) start of a full backup. Checks what the seed checked, creates the
// metadata row, and enqueues the stage chain. Does no heavy work itself.
import { mkdir } from 'node:fs/promises';
import { requireBackupKey } from '../config/index.ts';
import { encodingSuffix, getCodec } from '../archive/index.ts';
import { BackupState, type BackupRow } from '../metadata/index.ts';
import { sweepFailedBackupFiles } from './full-files.ts';
import { backupUuidFor, fullBackupObjectName } from '../naming.ts';
import { defineJob, PermanentJobError, requireInt, requireOwnEnabledInstance, type JobContext } from './types.ts';

export interface FullPayload {
  instanceId: number;
}

export type FullResult =
  | { started: true; backupUuid: string; backupName: string }
  | { started: false; skipped: true; reason: string };

export const fullJob = defineJob<FullPayload, FullResult>({
  name: 'full',
  parse: (data) => ({ instanceId: requireInt(data, 'instanceId') }),

  async handle({ instanceId }, ctx) {
    const instance = await requireOwnEnabledInstance(ctx, instanceId, 'backs up');

    const node = await ctx.connectDataNode();
    try {
      await node.assertClonePluginActive().catch((err: Error) => {
        throw new PermanentJobError(err.message);
      });
      if (ctx.config.backup.isCluster && !(await node.isReadOnly())) {
        const reason = `skipped: ${instance.instanceId} is a primary (read_only = 0) and is_cluster = on; backups run on replicas`;
        ctx.log.info({ instance: instanceId, reason }, 'full backup skipped');
        return { started: false, skipped: true, reason };
      }
    } finally {
      await node.close();
    }

    const backupPath = requireBackupKey(ctx.config, 'backupPath', 'backup_path');
    const bucket = requireBackupKey(ctx.config, 'bucketName', 'bucket_name');
    await mkdir(backupPath, { recursive: true, mode: 0o700 });
    const backupUuid = backupUuidFor(`full:${instanceId}:${ctx.jobId}`);
    // A named lock makes check, insert and enqueue atomic across workers: one full backup per instance at a
    // time, and any row seen under the lock has its chain in Redis unless something lost it.
    await ctx.metadata.withLock(ctx.metadata.lockName('full', instanceId), async () => {
      if (!(await ctx.metadata.getBackup(backupUuid))) {
        for (const r of await ctx.metadata.runningFullBackups(instanceId)) {
          if (await ctx.isFullChainAlive({ instanceId, backupUuid: r.backupUuid })) {
            throw new PermanentJobError(`a full backup of instance ${instanceId} is already running: ${r.backupName} in state ${r.state} (uuid ${r.backupUuid})`);
          }
          await abandonOrphan(ctx, r);
        }
        const swept = await sweepFailedBackupFiles(ctx, instanceId);
        if (swept.length) ctx.log.info({ event: 'full.swept', instance: instanceId, backups: swept }, `removed local files of failed backups ${swept.join(', ')}`);
        const codec = getCodec(ctx.config.backup.compression);
        // The key is chosen here, with the name: a key rotated mid-chain does not rename the backup.
        const key = ctx.config.encryption.current;
        const suffix = encodingSuffix({ codec, key });
        const startedAt = await unusedStartTime(ctx, instanceId, suffix);
        await ctx.metadata.createBackup({
          backupUuid,
          tbInstanceId: instanceId,
          state: BackupState.Doing,
          backupType: 'full',
          startTime: startedAt,
          backupPath,
          backupName: fullBackupObjectName(instanceId, startedAt, ctx.metadata.timeZone, suffix),
          bucketName: bucket,
          compression: codec.name,
          encryptionKeyId: key?.id ?? null,
          overdueDay: ctx.config.backup.fullStorageDays,
          workerHost: ctx.workerHost,
          jobId: ctx.jobId,
          info: 'clone queued',
        });
      }
      // Also when the row exists: a retried start job may have died between the insert and this line.
      await ctx.startFullChain({ instanceId, backupUuid });
    });
    const row = (await ctx.metadata.getBackup(backupUuid))!;
    ctx.log.info({ instance: instanceId, backupUuid, backupName: row.backupName }, 'full backup chain enqueued');
    return { started: true, backupUuid, backupName: row.backupName };
  },
});

/**
 * Object and file names carry the start time in whole seconds, so a backup started in the same second as the
 * last one (a failed start retried at once) would share its files and object name: wait for the next second.
 */
async function unusedStartTime(ctx: JobContext, instanceId: number, extension: string): Promise<Date> {
  for (let tries = 0; ; tries++) {
    const at = ctx.now();
    const name = fullBackupObjectName(instanceId, at, ctx.metadata.timeZone, extension);
    if (!(await ctx.metadata.backupNameTaken(name))) return at;
    if (tries === 2) throw new PermanentJobError(`backup name ${name} is already used by another row; start the backup again in a second`);
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
  }
}

/**
 * A row still "running" whose stage jobs are gone from Redis (a worker killed twice mid-stage, a flushed Redis,
 * a removed job) would block every later full backup. It is marked Error, saying why; the sweep that follows
 * removes its files.
 */
async function abandonOrphan(ctx: JobContext, row: BackupRow): Promise<void> {
  await ctx.metadata.markError(
    row.backupUuid,
    `abandoned: no stage job of this backup is left in Redis (worker or Redis lost it while in state ${row.state}); a new full backup replaced it`,
  );
  ctx.log.warn({ event: 'full.orphan', instance: row.tbInstanceId, backupUuid: row.backupUuid, state: row.state }, `backup ${row.backupName} had no live stage job: marked Error`);
}
