// Stage `upload`: send the archive to object storage and verify the stored object ([backup-conf] verify) before
// `object_key` names it; state → Uploading. Each attempt clears `object_key` and aborts unfinished uploads first;
// an object an earlier attempt stored whole is verified again rather than sent twice.
import { stat } from 'node:fs/promises';
import type { BackupRow } from '../metadata/index.ts';
import { ObjectMismatchError, verifyStoredObject, type Expected } from '../storage/index.ts';
import { containedBackupFiles } from './full-files.ts';
import { defineFullStage } from './stage.ts';
import { PermanentJobError, type FullChainPayload, type JobContext, type JobDefinition } from './types.ts';

export interface UploadResult {
  objectKey: string;
  bytes: number;
  sha256: string;
}

const stage = defineFullStage<UploadResult>({
  name: 'upload',
  info: 'uploading',
  async run(row, { backupUuid, instanceId }, ctx) {
    if (!row.sha256 || row.backupBytes === null) throw new PermanentJobError(`backup ${backupUuid} has no archive checksum; the tar stage must run again`);
    const { archiveFile } = await containedBackupFiles(row, ctx.config);
    const size = (await stat(archiveFile).catch(() => undefined))?.size;
    if (size === undefined) throw new PermanentJobError(`archive ${archiveFile} is missing; the tar stage must run again`);
    if (size !== row.backupBytes) throw new PermanentJobError(`archive ${archiveFile} is ${size} bytes but ${row.backupBytes} were written`);

    await ctx.metadata.update(backupUuid, { objectKey: null });
    const key = row.backupName;
    const expected = { bytes: size, sha256: row.sha256 };
    await ctx.storage.checkBucket();
    const aborted = await ctx.storage.removeIncompleteUploads(key);
    if (aborted) ctx.log.info({ event: 'upload.incomplete-removed', key, uploads: aborted }, `aborted ${aborted} unfinished upload(s) of ${key} left by an earlier attempt`);

    if (await holdsEarlierAttempt(row, key, expected, ctx)) {
      ctx.log.info({ event: 'upload.reuse', key }, `${key} was stored whole by an earlier attempt; verifying it instead of sending it again`);
    } else {
      await sendArchive(row, archiveFile, key, { instanceId, backupUuid, size }, ctx);
    }
    try {
      await verifyStoredObject(ctx.storage, key, expected, ctx.config.backup.verify);
    } catch (err) {
      // A wrong object must not stay where a restore would find it; one that could not be read is kept for the
      // next attempt, which verifies it again.
      if (err instanceof ObjectMismatchError) await ctx.storage.remove(key).catch(() => undefined);
      throw err;
    }
    await ctx.metadata.update(backupUuid, { objectKey: key, bucketName: ctx.storage.bucket, info: `uploaded and verified (${ctx.config.backup.verify})` });
    return { objectKey: key, bytes: size, sha256: row.sha256 };
  },
});

export const uploadStage: JobDefinition<FullChainPayload, UploadResult> = {
  ...stage,
  async onFinalFailure(payload, ctx, error) {
    // The row says what was kept first: removing the object needs the store, which may be the thing that is down.
    await stage.onFinalFailure?.(payload, ctx, error);
    await removeUnverifiedObject(payload.backupUuid, ctx);
  },
};

/**
 * Whether `key` holds this backup's archive, stored whole by an earlier attempt (same owner, size and sha256).
 * Another backup's object is never overwritten; this backup's object with other content is removed.
 */
async function holdsEarlierAttempt(row: BackupRow, key: string, expected: Expected, ctx: JobContext): Promise<boolean> {
  const existing = await ctx.storage.stat(key);
  if (!existing) return false;
  const owner = existing.metadata['mcb-backup-uuid'];
  if (owner !== row.backupUuid) {
    throw new PermanentJobError(`${key} already exists in ${ctx.storage.location} and belongs to ${owner ? `backup ${owner}` : 'no mcb backup'}; it is not overwritten`);
  }
  if (existing.size === expected.bytes && existing.metadata['mcb-sha256'] === expected.sha256) return true;
  await ctx.storage.remove(key);
  return false;
}

async function sendArchive(
  row: BackupRow,
  archiveFile: string,
  key: string,
  ids: { instanceId: number; backupUuid: string; size: number },
  ctx: JobContext,
): Promise<void> {
  let stored = 0;
  const timer = setInterval(() => void ctx.progress({ stage: 'upload', fraction: ids.size ? stored / ids.size : 1 }).catch(() => undefined), 1000);
  let put;
  try {
    // Parts are sent as ranges of the file, none held in memory. A worker shutting down (ctx.signal) hands the
    // stage back instead of waiting for the whole upload.
    put = await ctx.storage.putFile(key, archiveFile, {
      size: ids.size,
      signal: ctx.signal,
      progress: (bytes) => (stored = bytes),
      partChecksums: ctx.config.backup.verify !== 'size',
      metadata: {
        'mcb-sha256': row.sha256!,
        'mcb-instance': String(ids.instanceId),
        'mcb-backup-uuid': ids.backupUuid,
        ...(row.encryptionKeyId ? { 'mcb-key-id': row.encryptionKeyId } : {}),
        // The recovery point, for restores without the metadata center (mcb restore --from-bucket).
        ...(row.endTime ? { 'mcb-recovery-point': row.endTime.toISOString() } : {}),
        // The clone's binlog file, where its point-in-time replay starts (restore plan anchoring).
        ...(row.binlogFile ? { 'mcb-binlog-file': row.binlogFile } : {}),
      },
    });
  } finally {
    clearInterval(timer);
  }
  if (put.sha256 !== row.sha256) {
    await ctx.storage.remove(key).catch(() => undefined);
    throw new Error(`archive ${archiveFile} changed on disk: read back sha256 ${put.sha256}, archived ${row.sha256}`);
  }
}

/**
 * After the last attempt: an object of this backup that was never verified (objectKey unset) must not stay where
 * a restore would find it. The archive stays on disk (see stage.ts), so `mcb jobs retry` sends it again.
 */
async function removeUnverifiedObject(backupUuid: string, ctx: JobContext): Promise<void> {
  const row = await ctx.metadata.getBackup(backupUuid);
  if (!row || row.state !== 'Error' || row.objectKey) return;
  try {
    await ctx.storage.removeIncompleteUploads(row.backupName);
    const existing = await ctx.storage.stat(row.backupName);
    if (existing?.metadata['mcb-backup-uuid'] === backupUuid) await ctx.storage.remove(row.backupName);
  } catch (err) {
    ctx.log.warn({ event: 'upload.leftover', key: row.backupName, err: { message: (err as Error).message } }, `could not remove the unverified upload of ${row.backupName}`);
  }
}
