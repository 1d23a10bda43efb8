// Stage 3 `upload`: stream the archive to object storage, then verify the stored object (size, and by
// default its sha256 read back) before anything is called uploaded. State → Uploading.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { verifyStoredObject } from '../storage/index.ts';
import { defineFullStage, fullBackupFiles } from './full-files.ts';
import { PermanentJobError } from './types.ts';

export interface UploadResult {
  objectKey: string;
  bytes: number;
  sha256: string;
}

export const uploadStage = defineFullStage<UploadResult>({
  name: 'upload',
  info: 'uploading',
  async run(row, { backupUuid, instanceId }, ctx) {
    if (!row.sha256 || row.backupBytes === null) throw new PermanentJobError(`backup ${backupUuid} has no archive checksum; the tar stage must run again`);
    const { archiveFile } = fullBackupFiles(row);
    const size = (await stat(archiveFile).catch(() => undefined))?.size;
    if (size === undefined) throw new PermanentJobError(`archive ${archiveFile} is missing; the tar stage must run again`);
    if (size !== row.backupBytes) throw new PermanentJobError(`archive ${archiveFile} is ${size} bytes but ${row.backupBytes} were written`);

    const key = row.backupName;
    await ctx.storage.checkBucket();
    let sent = 0;
    const body = createReadStream(archiveFile);
    // A worker shutting down hands the stage back instead of waiting for the whole upload.
    const abort = () => body.destroy(new Error('upload interrupted: worker shutting down'));
    ctx.signal.addEventListener('abort', abort, { once: true });
    body.on('data', (chunk) => {
      sent += chunk.length;
    });
    const timer = setInterval(() => void ctx.progress({ stage: 'upload', fraction: size ? sent / size : 1 }).catch(() => undefined), 1000);
    let put;
    try {
      put = await ctx.storage.putStream(key, body, {
        size,
        metadata: {
          'mcb-sha256': row.sha256,
          'mcb-instance': String(instanceId),
          'mcb-backup-uuid': backupUuid,
          // The recovery point, for restores without the metadata center (mcb restore --from-bucket).
          ...(row.endTime ? { 'mcb-recovery-point': row.endTime.toISOString() } : {}),
          // The clone's binlog file, where its point-in-time replay starts (restore plan anchoring).
          ...(row.binlogFile ? { 'mcb-binlog-file': row.binlogFile } : {}),
        },
      });
    } finally {
      clearInterval(timer);
      ctx.signal.removeEventListener('abort', abort);
    }
    if (put.sha256 !== row.sha256) {
      await ctx.storage.remove(key).catch(() => undefined);
      throw new Error(`archive ${archiveFile} changed on disk: read back sha256 ${put.sha256}, archived ${row.sha256}`);
    }
    try {
      await verifyStoredObject(ctx.storage, key, { bytes: size, sha256: row.sha256 }, ctx.config.backup.verify);
    } catch (err) {
      // A corrupt object must not stay where a restore would find it.
      await ctx.storage.remove(key).catch(() => undefined);
      throw err;
    }
    await ctx.metadata.update(backupUuid, { objectKey: key, bucketName: ctx.storage.bucket, info: `uploaded and verified (${ctx.config.backup.verify})` });
    return { objectKey: key, bytes: size, sha256: row.sha256 };
  },
});
