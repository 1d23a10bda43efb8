// `full`: the scheduled (or ad-hoc) start of a full backup. Checks what the seed checked, creates the
// metadata row, and enqueues the stage chain. Does no heavy work itself.
import { mkdir } from 'node:fs/promises';
import { requireBackupKey } from '../config/index.ts';
import { getCodec } from '../archive/codec.ts';
import { BackupState } from '../metadata/index.ts';
import { backupUuidFor, fullBackupObjectName } from '../naming.ts';
import { defineJob, PermanentJobError, requireInt } from './types.ts';

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
    const ownId = requireBackupKey(ctx.config, 'tbInstanceId', 'tb_instance_id');
    if (ownId !== instanceId) {
      throw new PermanentJobError(`this worker backs up instance ${ownId} ([backup-conf] tb_instance_id), not ${instanceId}`);
    }
    const instance = await ctx.metadata.getInstance(instanceId);
    if (!instance) throw new PermanentJobError(`instance ${instanceId} does not exist in tb_instance`);
    if (!instance.isClone) throw new PermanentJobError(`instance ${instanceId} (${instance.instanceId}) has is_clone = 0: backups are disabled`);

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
    await mkdir(backupPath, { recursive: true });
    const backupUuid = backupUuidFor(`full:${instanceId}:${ctx.jobId}`);
    const existing = await ctx.metadata.getBackup(backupUuid);
    if (!existing) {
      // A named lock makes check-and-insert atomic across workers: one full backup per instance at a time.
      await ctx.metadata.withLock(`mcb_full_${instanceId}`, async () => {
        const running = await ctx.metadata.runningFullBackups(instanceId);
        if (running.length) {
          const r = running[0]!;
          throw new PermanentJobError(`a full backup of instance ${instanceId} is already running: ${r.backupName} in state ${r.state} (uuid ${r.backupUuid})`);
        }
        const codec = getCodec(ctx.config.backup.compression);
        const startedAt = ctx.now();
        await ctx.metadata.createBackup({
          backupUuid,
          tbInstanceId: instanceId,
          state: BackupState.Doing,
          backupType: 'full',
          startTime: startedAt,
          backupPath,
          backupName: fullBackupObjectName(instanceId, startedAt, codec.extension),
          bucketName: bucket,
          compression: codec.name,
          overdueDay: ctx.config.backup.fullStorageDays,
          workerHost: ctx.workerHost,
          jobId: ctx.jobId,
          info: 'clone queued',
        });
      });
    }
    const row = (await ctx.metadata.getBackup(backupUuid))!;
    await ctx.startFullChain({ instanceId, backupUuid });
    ctx.log.info({ instance: instanceId, backupUuid, backupName: row.backupName }, 'full backup chain enqueued');
    return { started: true, backupUuid, backupName: row.backupName };
  },
});
