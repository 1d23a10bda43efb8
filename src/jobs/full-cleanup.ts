// Stage 4 `cleanup`: remove the local clone and archive, FLUSH BINARY LOGS (as the seed did, so the binlog
// holding the recovery point closes and is archived next), then Completed. State Clearing → Completed.
import { BackupState, stageTransitions } from '../metadata/index.ts';
import { fullBackupFiles, loadFullBackupRow, parseChainPayload, removeFilesAfterFailure, removeFullBackupFiles } from './full-files.ts';
import { defineJob, PermanentJobError, type FullChainPayload } from './types.ts';

export interface CleanupResult {
  state: 'Completed';
  objectKey: string;
}

export const cleanupStage = defineJob<FullChainPayload, CleanupResult>({
  name: 'cleanup',
  parse: parseChainPayload,
  backupUuidOf: (p) => p.backupUuid,
  onFinalFailure: removeFilesAfterFailure,

  async handle({ backupUuid }, ctx) {
    const row = await loadFullBackupRow(ctx, backupUuid);
    if (!row.objectKey) throw new PermanentJobError(`backup ${backupUuid} has no verified object; the upload stage must run again`);
    const t = stageTransitions.cleanup;
    await ctx.metadata.transition(backupUuid, t.from, t.enter, { workerHost: ctx.workerHost, jobId: ctx.jobId, info: 'removing local files' });
    await removeFullBackupFiles(fullBackupFiles(row));
    const node = await ctx.connectDataNode();
    try {
      await node.flushBinaryLogs();
    } finally {
      await node.close();
    }
    const recovery = row.endTime ? row.endTime.toISOString() : 'unknown';
    await ctx.metadata.transition(backupUuid, [BackupState.Clearing], BackupState.Completed, {
      info: `completed: ${row.backupSize} in ${row.bucketName}/${row.objectKey}, recovery point ${recovery}`,
    });
    return { state: 'Completed', objectKey: row.objectKey };
  },
});
