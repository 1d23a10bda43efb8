// Stage 4 `cleanup`: remove the local clone and archive, FLUSH BINARY LOGS (as the seed did, so the binlog
// holding the recovery point closes and is archived next), then Completed. State Clearing → Completed.
import { BackupState } from '../metadata/index.ts';
import { defineFullStage, fullBackupFiles, removeFullBackupFiles } from './full-files.ts';
import { PermanentJobError } from './types.ts';

export interface CleanupResult {
  state: 'Completed';
  objectKey: string;
}

export const cleanupStage = defineFullStage<CleanupResult>({
  name: 'cleanup',
  info: 'removing local files',
  precondition(row) {
    if (!row.objectKey) throw new PermanentJobError(`backup ${row.backupUuid} has no verified object; the upload stage must run again`);
  },
  async run(row, { backupUuid }, ctx) {
    await removeFullBackupFiles(fullBackupFiles(row));
    // The backup is verified in storage by now: a node that cannot be reached for the flush must not turn it
    // into an Error row that restore and expiry would ignore. The next binlog run rotates on its own (RPO).
    let flushNote = '';
    try {
      const node = await ctx.connectDataNode();
      try {
        await node.flushBinaryLogs();
      } finally {
        await node.close();
      }
    } catch (err) {
      flushNote = `; FLUSH BINARY LOGS failed: ${(err as Error).message}`;
      ctx.log.warn({ event: 'cleanup.flush-failed', err: { message: (err as Error).message } }, 'FLUSH BINARY LOGS failed; backup completed anyway');
    }
    const recovery = row.endTime ? row.endTime.toISOString() : 'unknown';
    await ctx.metadata.transition(backupUuid, [BackupState.Clearing], BackupState.Completed, {
      info: `completed: ${row.backupSize} in ${row.bucketName}/${row.objectKey}, recovery point ${recovery}${flushNote}`,
    });
    return { state: 'Completed', objectKey: row.objectKey! }; // checked by the precondition
  },
});
