// Stage `cleanup`, the last: check the stored object once more, remove the local files, FLUSH BINARY LOGS (so the
// binlog holding the recovery point closes and is archived next); Clearing → Completed.
import { BackupState, type BackupRow } from '../metadata/index.ts';
import { containedBackupFiles, removeFullBackupFiles } from './full-files.ts';
import { defineFullStage } from './stage.ts';
import { PermanentJobError, type JobContext } from './types.ts';

export interface CleanupResult {
  state: 'Completed';
  objectKey: string;
}

export const cleanupStage = defineFullStage<CleanupResult>({
  name: 'cleanup',
  info: 'removing local files',
  finished: { state: BackupState.Completed, result: (row) => ({ state: 'Completed', objectKey: row.objectKey ?? '' }) },
  precondition(row) {
    if (!row.objectKey) throw new PermanentJobError(`backup ${row.backupUuid} has no verified object; the upload stage must run again`);
  },
  async run(row, { backupUuid }, ctx) {
    // Before the local archive goes: it is the only copy left if the object is not what the row says.
    await confirmStoredObject(row, ctx);
    await removeFullBackupFiles(await containedBackupFiles(row, ctx.config), ctx.config);
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

/**
 * A row is never Completed on the strength of `object_key` alone: the object must be there, with the row's size
 * and sha256 (the `mcb-sha256` the upload gave it). A store that cannot be reached throws a StorageError, which
 * the stage retries.
 */
async function confirmStoredObject(row: BackupRow, ctx: JobContext): Promise<void> {
  const key = row.objectKey!; // checked by the precondition
  const where = ctx.storage.location;
  if (row.bucketName !== ctx.storage.bucket) {
    throw new PermanentJobError(`backup ${row.backupName} was uploaded to bucket ${row.bucketName}, but this worker stores in ${where}`);
  }
  const info = await ctx.storage.stat(key);
  const retry = 'the backup is not completed (its archive stays in backup_path until the next full backup)';
  if (!info) throw new PermanentJobError(`object ${key} is not in ${where}; ${retry}`);
  if (info.size !== row.backupBytes || info.metadata['mcb-sha256'] !== row.sha256) {
    throw new PermanentJobError(
      `object ${key} in ${where} is not this backup's archive (${info.size} bytes, sha256 ${info.metadata['mcb-sha256'] ?? 'not recorded'}; ` +
        `the row says ${row.backupBytes} bytes, sha256 ${row.sha256}); ${retry}`,
    );
  }
}
